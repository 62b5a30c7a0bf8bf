//! networking.k8s.io/v1 (or v1beta1) ServiceCIDR: the ranges cluster IPs come from.

use k8s_openapi::api::networking::v1 as networking;
use kubenat_core::IpNet;

use super::Ctx;
use super::fields::cidr;
use crate::Manifests;
use crate::node::Value;

pub(super) fn service_cidr(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    // v1beta1 has the same schema; k8s-openapi's type checks apiVersion, so decode as v1.
    let patched;
    let root = if ctx.root.str_at(&["apiVersion"]) == Some("networking.k8s.io/v1beta1") {
        let mut copy = ctx.root.clone();
        if let Value::Map(entries) = &mut copy.value {
            for (k, v) in entries.iter_mut() {
                if k == "apiVersion" {
                    v.value = Value::Str("networking.k8s.io/v1".into());
                }
            }
        }
        patched = copy;
        &patched
    } else {
        ctx.root
    };
    let Some(sc) = ctx.decode_from::<networking::ServiceCIDR>(root, true) else {
        return;
    };
    let cidrs = sc.spec.and_then(|s| s.cidrs).unwrap_or_default();
    if cidrs.is_empty() {
        ctx.error(
            "spec.cidrs",
            "required: one CIDR, or two of different IP families",
        );
    } else if cidrs.len() > 2 {
        ctx.error("spec.cidrs", "at most two CIDRs, one per IP family");
    }
    let mut nets: Vec<IpNet> = Vec::new();
    for (i, text) in cidrs.iter().enumerate() {
        let field = format!("spec.cidrs[{i}]");
        if let Some(net) = cidr(ctx, &field, text) {
            if nets
                .iter()
                .any(|n| n.addr().is_ipv4() == net.addr().is_ipv4())
            {
                ctx.error(&field, format!("{text:?}: at most one CIDR per IP family"));
            }
            nets.push(net);
        }
    }
    if ctx.failed {
        return;
    }
    for net in nets {
        if !out.service_cidrs.contains(&net) {
            out.service_cidrs.push(net);
        }
    }
}
