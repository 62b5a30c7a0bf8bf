//! v1 Service: type, cluster IPs and families, ports and node ports, external IPs,
//! load-balancer ranges and ingress, traffic policies and session affinity.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubenat_core::{
    Protocol, Service, ServiceName, ServicePort, ServiceType, SessionAffinity, TargetPort,
};

use super::Ctx;
use super::fields::{
    Field, cidr, ip, listed_port, metadata_name, metadata_namespace, named_port, port_number,
    proto_name, traffic_policy, unique,
};
use crate::Manifests;
use crate::validate::{family, is_dns1035_label, is_dns1123_subdomain, special_ip};

const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

pub(super) fn service(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(svc) = ctx.decode::<core::Service>() else {
        return;
    };
    let name = metadata_name(
        ctx,
        &svc.metadata.name,
        is_dns1035_label,
        "a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, at most 63 characters",
    );
    let namespace = metadata_namespace(ctx, &svc.metadata.namespace);
    let spec = svc.spec.unwrap_or_default();

    let service_type = match spec.type_.as_deref() {
        None | Some("ClusterIP") => Some(ServiceType::ClusterIp),
        Some("NodePort") => Some(ServiceType::NodePort),
        Some("LoadBalancer") => Some(ServiceType::LoadBalancer),
        Some("ExternalName") => None,
        Some(other) => {
            ctx.error(
                "spec.type",
                format!(
                    "{other:?} is not a supported type (ClusterIP, NodePort, LoadBalancer or ExternalName)"
                ),
            );
            return;
        }
    };
    let Some(service_type) = service_type else {
        // ExternalName Services are DNS only: kube-proxy programs nothing for them, but the
        // API server validates them all the same.
        external_name(ctx, &spec);
        return;
    };

    // spec.clusterIP / spec.clusterIPs / spec.ipFamilies
    let cluster_ip = spec.cluster_ip.clone().unwrap_or_default();
    let listed = spec.cluster_ips.clone().unwrap_or_default();
    if !cluster_ip.is_empty() && !listed.is_empty() && listed[0] != cluster_ip {
        ctx.error(
            "spec.clusterIPs[0]",
            format!("{:?} must match spec.clusterIP {cluster_ip:?}", listed[0]),
        );
    }
    let (ips_field, ip_texts): (&str, Vec<String>) = if !listed.is_empty() {
        ("spec.clusterIPs", listed)
    } else if !cluster_ip.is_empty() {
        ("spec.clusterIP", vec![cluster_ip])
    } else {
        ("spec.clusterIP", Vec::new())
    };
    let headless = ip_texts.first().is_some_and(|s| s == "None");
    if headless && service_type != ServiceType::ClusterIp {
        let field = if ips_field == "spec.clusterIPs" {
            "spec.clusterIPs[0]"
        } else {
            ips_field
        };
        ctx.error(
            field,
            format!(
                "may not be set to 'None' for {} services (only a ClusterIP Service can be headless)",
                spec.type_.as_deref().unwrap_or_default()
            ),
        );
    }
    let families = spec.ip_families.clone().unwrap_or_default();
    for (i, family) in families.iter().enumerate() {
        if family != "IPv4" && family != "IPv6" {
            ctx.error(
                format_args!("spec.ipFamilies[{i}]"),
                format!("{family:?} is not a supported IP family (IPv4 or IPv6)"),
            );
        } else if families[..i].contains(family) {
            ctx.error(
                format_args!("spec.ipFamilies[{i}]"),
                format!("duplicate IP family {family:?}"),
            );
        }
    }
    if families.len() > 2 {
        ctx.error("spec.ipFamilies", "at most two families (dual-stack)");
    }
    let mut cluster_ips = Vec::new();
    if headless {
        if ip_texts.len() > 1 {
            ctx.error(
                "spec.clusterIPs[1]",
                "must be empty when spec.clusterIPs[0] is \"None\"",
            );
        }
    } else {
        if ip_texts.len() > 2 {
            ctx.error(ips_field, "at most two addresses, one per IP family");
        }
        let listed_field = Field::Path("spec.clusterIPs");
        for (i, text) in ip_texts.iter().enumerate() {
            let item = listed_field.item(i);
            let field = if ips_field == "spec.clusterIPs" {
                item
            } else {
                Field::Path(ips_field)
            };
            let Some(addr) = ip(ctx, field, text) else {
                continue;
            };
            if cluster_ips
                .iter()
                .any(|o: &IpAddr| o.is_ipv4() == addr.is_ipv4())
            {
                ctx.error(
                    field,
                    format!(
                        "{text:?} is a second {} address; a Service has at most one per family",
                        family(&addr)
                    ),
                );
            } else if let Some(expected) = families.get(i) {
                if (expected == "IPv4" || expected == "IPv6") && expected != family(&addr) {
                    ctx.error(
                        field,
                        format!(
                            "{text:?} is an {} address but spec.ipFamilies[{i}] is {expected}",
                            family(&addr)
                        ),
                    );
                }
            }
            cluster_ips.push(addr);
        }
    }

    // spec.ports
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && !headless {
        ctx.error("spec.ports", "required: at least one port");
    }
    let model_ports = service_ports(ctx, ports, Some(service_type));

    // spec.externalIPs
    let mut external_ips = Vec::new();
    let external_ips_field = Field::Path("spec.externalIPs");
    for (i, text) in spec.external_ips.iter().flatten().enumerate() {
        let field = external_ips_field.item(i);
        if let Some(addr) = ip(ctx, field, text) {
            match special_ip(&addr) {
                Some(why) => ctx.error(field, format!("{text:?} {why}")),
                None => external_ips.push(addr),
            }
        }
    }

    // spec.loadBalancerSourceRanges
    let mut source_ranges = Vec::new();
    let ranges = spec.load_balancer_source_ranges.clone().unwrap_or_default();
    if !ranges.is_empty() && service_type != ServiceType::LoadBalancer {
        ctx.error(
            "spec.loadBalancerSourceRanges",
            "may only be used when `type` is 'LoadBalancer'",
        );
    }
    let ranges_field = Field::Path("spec.loadBalancerSourceRanges");
    for (i, text) in ranges.iter().enumerate() {
        if let Some(net) = cidr(ctx, ranges_field.item(i), text) {
            source_ranges.push(net);
        }
    }

    // Traffic policies and affinity.
    let externally_accessible = service_type != ServiceType::ClusterIp || !external_ips.is_empty();
    let external_traffic_policy = traffic_policy(
        ctx,
        "spec.externalTrafficPolicy",
        &spec.external_traffic_policy,
    );
    if !externally_accessible && spec.external_traffic_policy.as_deref() == Some("Local") {
        ctx.error(
            "spec.externalTrafficPolicy",
            "may only be set for externally-accessible Services (NodePort, LoadBalancer or with externalIPs)",
        );
    }
    let internal_traffic_policy = traffic_policy(
        ctx,
        "spec.internalTrafficPolicy",
        &spec.internal_traffic_policy,
    );
    let timeout = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds);
    let session_affinity = match spec.session_affinity.as_deref() {
        None | Some("None") => {
            if spec.session_affinity_config.is_some() {
                ctx.error(
                    "spec.sessionAffinityConfig",
                    "must not be set when `sessionAffinity` is None",
                );
            }
            SessionAffinity::None
        }
        Some("ClientIP") => match timeout {
            None => SessionAffinity::ClientIp {
                timeout: SessionAffinity::DEFAULT_TIMEOUT,
            },
            Some(t) if (1..=86_400).contains(&t) => SessionAffinity::ClientIp {
                timeout: Duration::from_secs(t as u64),
            },
            Some(t) => {
                ctx.error(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    format!("{t} is not a valid timeout (1-86400 seconds)"),
                );
                SessionAffinity::None
            }
        },
        Some(other) => {
            ctx.error(
                "spec.sessionAffinity",
                format!("{other:?} is not a supported value (None or ClientIP)"),
            );
            SessionAffinity::None
        }
    };

    // status.loadBalancer.ingress
    let mut load_balancer_ips = Vec::new();
    let ingress = svc
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .unwrap_or_default();
    let ingress_field = Field::Path("status.loadBalancer.ingress");
    for (i, entry) in ingress.iter().enumerate() {
        let base = ingress_field.item(i);
        let mode = entry.ip_mode.as_deref();
        if !matches!(mode, None | Some("VIP") | Some("Proxy")) {
            ctx.error(
                base.member("ipMode"),
                format!(
                    "{:?} is not a supported value (VIP or Proxy)",
                    mode.unwrap_or("")
                ),
            );
            continue;
        }
        let Some(text) = entry.ip.as_deref().filter(|s| !s.is_empty()) else {
            if mode.is_some() {
                ctx.error(base.member("ipMode"), "must be set only together with ip");
            }
            // Hostname-only ingress: kube-proxy has no address to program.
            continue;
        };
        let Some(addr) = ip(ctx, base.member("ip"), text) else {
            continue;
        };
        if mode == Some("Proxy") {
            // The load balancer proxies to the nodes itself: kube-proxy programs nothing.
            continue;
        }
        load_balancer_ips.push(addr);
    }

    if ctx.failed || headless {
        return;
    }
    if cluster_ips.is_empty() {
        ctx.warn(
            "spec.clusterIP",
            "no cluster IP allocated (the API server assigns one); kube-proxy skips this Service",
        );
        return;
    }
    out.services.push(Service {
        name: ServiceName::new(namespace, name),
        service_type,
        cluster_ips,
        ports: model_ports,
        external_ips,
        load_balancer_ips,
        load_balancer_source_ranges: source_ranges,
        external_traffic_policy,
        internal_traffic_policy,
        session_affinity,
    });
}

/// `spec.ports`, validated for every type of Service as the API server does; the ports of
/// a `service_type` (None: ExternalName, whose node ports mean nothing).
fn service_ports(
    ctx: &mut Ctx<'_>,
    ports: &[core::ServicePort],
    service_type: Option<ServiceType>,
) -> Vec<ServicePort> {
    let node_ports_allowed = matches!(
        service_type,
        Some(ServiceType::NodePort | ServiceType::LoadBalancer)
    );
    let mut names = HashMap::new();
    let mut seen_ports: HashMap<(u16, Protocol), String> = HashMap::new();
    let mut seen_node_ports: HashMap<(u16, Protocol), String> = HashMap::new();
    let mut model_ports = Vec::new();
    let ports_field = Field::Path("spec.ports");
    for (i, p) in ports.iter().enumerate() {
        let base = ports_field.item(i);
        let (name, proto, port) = listed_port(
            ctx,
            base,
            (ports.len() > 1).then_some("Service"),
            &p.name,
            &p.protocol,
            p.port,
            &mut names,
        );
        let target_port = match &p.target_port {
            None | Some(IntOrString::Int(0)) => port.map(TargetPort::Number),
            Some(IntOrString::Int(n)) => {
                port_number(ctx, base.member("targetPort"), (*n).into()).map(TargetPort::Number)
            }
            Some(IntOrString::String(s)) => named_port(ctx, base.member("targetPort"), s),
        };
        let node_port = match p.node_port {
            None | Some(0) => {
                if node_ports_allowed {
                    ctx.warn(
                        base.member("nodePort"),
                        "no nodePort allocated (the API server assigns one); no NodePort rule for this port",
                    );
                }
                None
            }
            // The API server drops an ExternalName Service's node ports.
            Some(_) if service_type.is_none() => None,
            Some(n) if !node_ports_allowed => {
                ctx.error(
                    base.member("nodePort"),
                    format!("{n}: may not be used when `type` is 'ClusterIP'"),
                );
                None
            }
            Some(n) => {
                let field = base.member("nodePort");
                let np = port_number(ctx, field, n.into());
                if let Some(np) = np {
                    if !NODE_PORT_RANGE.contains(&np) {
                        ctx.warn(
                            field,
                            format!(
                                "{np} is outside the default NodePort range 30000-32767 (fine if the API server's --service-node-port-range allows it)"
                            ),
                        );
                    }
                    if let Some(proto) = proto {
                        unique(ctx, &mut seen_node_ports, (np, proto), field, || {
                            format!("nodePort {np}/{}", proto_name(proto))
                        });
                    }
                }
                np
            }
        };
        if let (Some(port), Some(proto)) = (port, proto) {
            unique(ctx, &mut seen_ports, (port, proto), base, || {
                format!("port {port}/{}", proto_name(proto))
            });
        }
        if let (Some(port), Some(protocol), Some(target_port)) = (port, proto, target_port) {
            model_ports.push(ServicePort {
                name,
                protocol,
                port,
                target_port,
                node_port,
            });
        }
    }
    model_ports
}

/// An ExternalName Service: a DNS name, no cluster IP; its ports are checked like any
/// Service's.
fn external_name(ctx: &mut Ctx<'_>, spec: &core::ServiceSpec) {
    let has_cluster_ip = spec.cluster_ip.as_deref().is_some_and(|s| !s.is_empty())
        || spec
            .cluster_ips
            .as_deref()
            .is_some_and(|ips| !ips.is_empty());
    if has_cluster_ip {
        ctx.error("spec.clusterIP", "may not be set for ExternalName services");
    }
    // The name (a CNAME) may end in a dot, fully qualified.
    let name = spec.external_name.as_deref().unwrap_or_default();
    let cname = name.strip_suffix('.').unwrap_or(name);
    if cname.is_empty() {
        ctx.error("spec.externalName", "required for ExternalName services");
    } else if !is_dns1123_subdomain(cname) {
        ctx.error(
            "spec.externalName",
            format!(
                "{name:?} is not a valid DNS name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each label starting and ending with a letter or digit, at most 253 characters)"
            ),
        );
    }
    service_ports(ctx, spec.ports.as_deref().unwrap_or_default(), None);
}
