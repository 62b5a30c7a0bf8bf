//! v1 Node: addresses to answer on and pod CIDRs.

use k8s_openapi::api::core::v1 as core;
use kubenat_core::Node;

use super::Ctx;
use super::fields::{Field, cidr, ip, subdomain_name};
use crate::Manifests;

pub(super) fn node(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(node) = ctx.decode::<core::Node>() else {
        return;
    };
    let name = subdomain_name(ctx, &node.metadata.name);
    let mut internal = Vec::new();
    let mut external = Vec::new();
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default();
    let addresses_field = Field::Path("status.addresses");
    for (i, a) in addresses.iter().enumerate() {
        let base = addresses_field.item(i);
        match a.type_.as_str() {
            "InternalIP" | "ExternalIP" => {
                if let Some(addr) = ip(ctx, base.member("address"), &a.address) {
                    let list = if a.type_ == "InternalIP" {
                        &mut internal
                    } else {
                        &mut external
                    };
                    if !list.contains(&addr) {
                        list.push(addr);
                    }
                }
            }
            "Hostname" | "InternalDNS" | "ExternalDNS" => {}
            other => ctx.error(
                base.member("type"),
                format!(
                    "{other:?} is not a supported address type (Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS)"
                ),
            ),
        }
    }
    let spec = node.spec.unwrap_or_default();
    let mut pod_cidrs = Vec::new();
    match spec.pod_cidrs.as_deref() {
        Some(list) if !list.is_empty() => {
            for (i, text) in list.iter().enumerate() {
                if let Some(net) = cidr(ctx, &format!("spec.podCIDRs[{i}]"), text) {
                    pod_cidrs.push(net);
                }
            }
        }
        _ => {
            if let Some(text) = spec.pod_cidr.as_deref().filter(|s| !s.is_empty()) {
                if let Some(net) = cidr(ctx, "spec.podCIDR", text) {
                    pod_cidrs.push(net);
                }
            }
        }
    }
    if ctx.failed {
        return;
    }
    let mut addresses = internal;
    for addr in external {
        if !addresses.contains(&addr) {
            addresses.push(addr);
        }
    }
    if addresses.is_empty() {
        ctx.warn(
            "status.addresses",
            "no InternalIP or ExternalIP address: this node has no address to answer on",
        );
    }
    if !pod_cidrs.is_empty() {
        out.pod_cidrs.insert(name.clone(), pod_cidrs);
    }
    out.nodes.push(Node { name, addresses });
}
