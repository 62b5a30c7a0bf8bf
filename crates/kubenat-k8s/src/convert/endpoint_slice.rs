//! discovery.k8s.io/v1 EndpointSlice, and legacy v1 Endpoints mirrored into slices.

use std::collections::HashMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubenat_core::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice, ServiceName};

use super::Ctx;
use super::fields::{
    Field, ip, listed_port, metadata_namespace, node_name, port_name, port_number, protocol,
    subdomain_name,
};
use crate::Manifests;
use crate::validate::{is_label_value, parse_ip_sloppy};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The mirroring controller's `--mirroring-max-endpoints-per-subset` (default 1000): the
/// most addresses of one subset it mirrors, ready ones first.
const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

fn label<'m>(metadata: &'m ObjectMeta, key: &str) -> Option<&'m String> {
    metadata.labels.as_ref().and_then(|l| l.get(key))
}

pub(super) fn endpoint_slice(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(slice) = ctx.decode::<discovery::EndpointSlice>() else {
        return;
    };
    let name = subdomain_name(ctx, &slice.metadata.name);
    let namespace = metadata_namespace(ctx, &slice.metadata.namespace);
    let is_v6 = match slice.address_type.as_str() {
        "IPv4" => Some(false),
        "IPv6" => Some(true),
        "FQDN" => None,
        other => {
            ctx.error(
                "addressType",
                format!("{other:?} is not a supported address type (IPv4, IPv6 or FQDN)"),
            );
            return;
        }
    };
    let label = label(&slice.metadata, SERVICE_NAME_LABEL).cloned();
    if let Some(service) = &label {
        if !is_label_value(service) {
            ctx.error(
                format_args!("metadata.labels[{SERVICE_NAME_LABEL}]"),
                format!(
                    "{service:?} is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
                ),
            );
        }
    }

    let mut ports = Vec::new();
    let mut names = HashMap::new();
    let slice_ports = slice.ports.clone().unwrap_or_default();
    if slice_ports.len() > 100 {
        ctx.error("ports", "must have at most 100 items");
    }
    let ports_field = Field::Path("ports");
    for (i, p) in slice_ports.iter().enumerate() {
        let base = ports_field.item(i);
        let name = p.name.clone().unwrap_or_default();
        port_name(ctx, base.member("name"), &name, &mut names);
        let proto = protocol(ctx, base.member("protocol"), &p.protocol);
        // A port without a number means "all ports": kube-proxy ignores it.
        let port = match p.port {
            None => None,
            Some(n) => port_number(ctx, base.member("port"), n.into()),
        };
        if let (Some(port), Some(protocol)) = (port, proto) {
            ports.push(EndpointPort {
                name,
                protocol,
                port,
            });
        }
    }

    let mut endpoints = Vec::new();
    if slice.endpoints.len() > 1000 {
        ctx.error("endpoints", "must have at most 1000 items");
    }
    let endpoints_field = Field::Path("endpoints");
    for (i, e) in slice.endpoints.iter().enumerate() {
        let base = endpoints_field.item(i);
        let addresses_field = base.member("addresses");
        if e.addresses.is_empty() {
            ctx.error(addresses_field, "required: at least one address");
        } else if e.addresses.len() > 100 {
            ctx.error(addresses_field, "must have at most 100 items");
        }
        let mut addresses = Vec::new();
        for (j, text) in e.addresses.iter().enumerate() {
            let Some(v6) = is_v6 else { continue };
            match parse_ip_sloppy(text) {
                Some(addr) if addr.is_ipv6() == v6 => addresses.push(addr),
                _ => ctx.error(
                    addresses_field.item(j),
                    format!(
                        "{text:?} is not a valid {} address (addressType is {})",
                        slice.address_type, slice.address_type
                    ),
                ),
            }
        }
        node_name(ctx, base.member("nodeName"), &e.node_name);
        let c = e.conditions.clone().unwrap_or_default();
        // The API's meaning of absent conditions: ready and serving unless said otherwise,
        // terminating only when said.
        endpoints.push(Endpoint {
            addresses,
            conditions: EndpointConditions {
                ready: c.ready.unwrap_or(true),
                serving: c.serving.unwrap_or(true),
                terminating: c.terminating.unwrap_or(false),
            },
            node_name: e.node_name.clone(),
        });
    }

    if ctx.failed {
        return;
    }
    if is_v6.is_none() {
        ctx.warn(
            "addressType",
            "FQDN EndpointSlices are ignored by kube-proxy; skipped",
        );
        return;
    }
    let Some(service) = label.filter(|s| !s.is_empty()) else {
        ctx.warn(
            "metadata.labels",
            format!("no {SERVICE_NAME_LABEL} label: kube-proxy ignores this EndpointSlice"),
        );
        return;
    };
    out.endpoint_slices.push(EndpointSlice {
        name,
        service: ServiceName::new(namespace, service),
        ports,
        endpoints,
    });
}

/// Legacy v1 Endpoints, converted as the EndpointSlice mirroring controller does: one slice
/// per subset and address family; `addresses` ready, `notReadyAddresses` neither ready nor
/// serving; the subset's ports as the slice's ports; at most 1,000 addresses per subset,
/// ready ones first, the rest skipped with a warning (the controller's
/// `TooManyAddressesToMirror` event).
pub(super) fn endpoints(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(eps) = ctx.decode::<core::Endpoints>() else {
        return;
    };
    let name = subdomain_name(ctx, &eps.metadata.name);
    let namespace = metadata_namespace(ctx, &eps.metadata.namespace);
    let mut slices = Vec::new();
    let subsets_field = Field::Path("subsets");
    for (s, subset) in eps.subsets.iter().flatten().enumerate() {
        let base = subsets_field.item(s);
        let ports_field = base.member("ports");
        let mut ports = Vec::new();
        let mut names = HashMap::new();
        let subset_ports = subset.ports.clone().unwrap_or_default();
        for (i, p) in subset_ports.iter().enumerate() {
            let (pname, proto, port) = listed_port(
                ctx,
                ports_field.item(i),
                (subset_ports.len() > 1).then_some("subset"),
                &p.name,
                &p.protocol,
                p.port,
                &mut names,
            );
            if let (Some(port), Some(protocol)) = (port, proto) {
                ports.push(EndpointPort {
                    name: pname,
                    protocol,
                    port,
                });
            }
        }
        let mut by_family: [Vec<Endpoint>; 2] = [Vec::new(), Vec::new()];
        let groups = [
            (
                "addresses",
                subset.addresses.clone().unwrap_or_default(),
                true,
            ),
            (
                "notReadyAddresses",
                subset.not_ready_addresses.clone().unwrap_or_default(),
                false,
            ),
        ];
        let total = groups.iter().map(|g| g.1.len()).sum::<usize>();
        let mut mirrored = 0;
        for (field, addresses, ready) in groups {
            let group_field = base.member(field);
            for (i, a) in addresses.iter().enumerate() {
                let address_field = group_field.item(i);
                let Some(addr) = ip(ctx, address_field.member("ip"), &a.ip) else {
                    continue;
                };
                node_name(ctx, address_field.member("nodeName"), &a.node_name);
                if mirrored == MAX_ENDPOINTS_PER_SUBSET {
                    continue;
                }
                mirrored += 1;
                by_family[usize::from(addr.is_ipv6())].push(Endpoint {
                    addresses: vec![addr],
                    conditions: EndpointConditions {
                        ready,
                        serving: ready,
                        terminating: false,
                    },
                    node_name: a.node_name.clone(),
                });
            }
        }
        if total > MAX_ENDPOINTS_PER_SUBSET {
            ctx.warn(
                base,
                format!(
                    "{total} addresses: the EndpointSlice mirroring controller mirrors at most \
                     {MAX_ENDPOINTS_PER_SUBSET} per subset (ready ones first); {} skipped",
                    total - MAX_ENDPOINTS_PER_SUBSET
                ),
            );
        }
        for (family, endpoints) in by_family.into_iter().enumerate() {
            if endpoints.is_empty() {
                continue;
            }
            slices.push(EndpointSlice {
                name: format!(
                    "{name}-mirrored-{s}{}",
                    if family == 1 { "-ipv6" } else { "" }
                ),
                service: ServiceName::new(namespace.clone(), name.clone()),
                ports: ports.clone(),
                endpoints,
            });
        }
    }
    if ctx.failed {
        return;
    }
    let skip = label(&eps.metadata, SKIP_MIRROR_LABEL).is_some_and(|v| v == "true");
    if skip {
        ctx.warn(
            format_args!("metadata.labels[{SKIP_MIRROR_LABEL}]"),
            "the mirroring controller skips these Endpoints; skipped",
        );
        return;
    }
    out.legacy_endpoints.extend(slices);
}
