//! Documents into objects: dispatch on apiVersion/kind, typed decoding with k8s-openapi,
//! API-server validation with lines, and conversion into kubenat's model.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubenat_core::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IpNet, Node, Protocol, Service,
    ServiceName, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};

use crate::proxy::{self, KubeProxyConfiguration};
use crate::validate::*;
use crate::yaml::{self, Value};
use crate::{Diagnostic, Ingress, IngressBackend, IngressPath, IngressRule, Manifests};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

pub(crate) fn parse(file: &str, text: &str) -> Result<Manifests, Vec<Diagnostic>> {
    let docs = match yaml::parse_documents(text) {
        Ok(docs) => docs,
        Err(e) => {
            return Err(vec![Diagnostic {
                file: file.into(),
                line: e.line,
                object: None,
                field: None,
                message: format!("not valid YAML or JSON: {}", e.message),
            }]);
        }
    };
    let mut out = Manifests::default();
    let mut errors = Vec::new();
    for doc in &docs {
        object(file, doc, &mut out, &mut errors, 0);
    }
    if errors.is_empty() {
        // Merging into an empty set replaces an object defined twice, with a warning.
        let mut deduplicated = Manifests::default();
        deduplicated.merge(out);
        Ok(deduplicated)
    } else {
        Err(errors)
    }
}

/// Where diagnostics for one object go.
struct Ctx<'a> {
    file: &'a str,
    root: &'a yaml::Node,
    object: Option<String>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    failed: bool,
}

impl Ctx<'_> {
    fn diagnostic(&self, field: &str, message: String) -> Diagnostic {
        Diagnostic {
            file: self.file.to_string(),
            line: Some(self.root.line_of(field)),
            object: self.object.clone(),
            field: (!field.is_empty()).then(|| field.to_string()),
            message,
        }
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        let d = self.diagnostic(field, message.into());
        self.errors.push(d);
        self.failed = true;
    }

    fn warn(&mut self, field: &str, message: impl Into<String>) {
        let d = self.diagnostic(field, message.into());
        self.warnings.push(d);
    }

    /// Typed decoding; a type error becomes a diagnostic at the failing field.
    fn decode<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        match yaml::from_node::<T>(self.root) {
            Ok(value) => Some(value),
            Err(e) => {
                let (field, line) = e.located.unwrap_or_default();
                self.errors.push(Diagnostic {
                    file: self.file.to_string(),
                    line: Some(if line == 0 { self.root.line } else { line }),
                    object: self.object.clone(),
                    field: (!field.is_empty()).then_some(field),
                    message: e.message,
                });
                self.failed = true;
                None
            }
        }
    }
}

fn object(
    file: &str,
    root: &yaml::Node,
    out: &mut Manifests,
    errors: &mut Vec<Diagnostic>,
    depth: usize,
) {
    let mut ctx = Ctx {
        file,
        root,
        object: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        failed: false,
    };
    dispatch(&mut ctx, out, errors, depth);
    errors.append(&mut ctx.errors);
    out.warnings.append(&mut ctx.warnings);
}

fn dispatch(ctx: &mut Ctx<'_>, out: &mut Manifests, errors: &mut Vec<Diagnostic>, depth: usize) {
    let (file, root) = (ctx.file, ctx.root);
    if !matches!(root.value, Value::Map(_)) {
        ctx.error(
            "",
            format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                root.describe()
            ),
        );
        return;
    }
    let api_version = root.str_at(&["apiVersion"]).unwrap_or("").to_string();
    let kind = root.str_at(&["kind"]).unwrap_or("").to_string();
    let name = root.str_at(&["metadata", "name"]).unwrap_or("");
    let namespace = root.str_at(&["metadata", "namespace"]).unwrap_or("default");
    let namespaced = matches!(
        kind.as_str(),
        "Service" | "EndpointSlice" | "Endpoints" | "Ingress"
    );
    if !kind.is_empty() && !kind.ends_with("List") {
        ctx.object = Some(match (namespaced, name.is_empty()) {
            (_, true) => kind.clone(),
            (true, false) => format!("{kind} {namespace}/{name}"),
            (false, false) => format!("{kind} {name}"),
        });
    }
    if api_version.is_empty() {
        ctx.error("apiVersion", "required (e.g. v1)");
    }
    if kind.is_empty() {
        ctx.error("kind", "required (e.g. Service)");
    }
    if ctx.failed {
        return;
    }
    if kind.ends_with("List") && root.get("items").is_some() {
        let Some(Value::Seq(items)) = root.get("items").map(|n| &n.value) else {
            if root.get("items").map(|n| &n.value) != Some(&Value::Null) {
                ctx.error("items", "expected a list of objects");
            }
            return;
        };
        if depth > 8 {
            ctx.error("items", "Lists nested too deeply");
            return;
        }
        for item in items {
            object(file, item, out, errors, depth + 1);
        }
        return;
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Service") => service(ctx, out),
        ("v1", "Endpoints") => endpoints(ctx, out),
        ("v1", "Node") => node(ctx, out),
        ("discovery.k8s.io/v1", "EndpointSlice") => endpoint_slice(ctx, out),
        ("networking.k8s.io/v1", "Ingress") => ingress(ctx, out),
        ("networking.k8s.io/v1" | "networking.k8s.io/v1beta1", "ServiceCIDR") => {
            service_cidr(ctx, out)
        }
        (proxy::API_VERSION, "KubeProxyConfiguration") => proxy_config(ctx, out),
        (_, "Service" | "Endpoints" | "Node" | "EndpointSlice" | "Ingress" | "ServiceCIDR")
        | (_, "KubeProxyConfiguration") => {
            let expected = match kind.as_str() {
                "EndpointSlice" => "discovery.k8s.io/v1",
                "Ingress" | "ServiceCIDR" => "networking.k8s.io/v1",
                "KubeProxyConfiguration" => proxy::API_VERSION,
                _ => "v1",
            };
            ctx.error(
                "apiVersion",
                format!("{api_version:?} is not supported for {kind} (expected {expected})"),
            );
        }
        _ => ctx.warn(
            "kind",
            format!("{kind} ({api_version}) is not used by kube-proxy; skipped"),
        ),
    }
}

fn metadata_name(
    ctx: &mut Ctx<'_>,
    name: &Option<String>,
    rule: fn(&str) -> bool,
    what: &str,
) -> String {
    let name = name.clone().unwrap_or_default();
    if name.is_empty() {
        ctx.error("metadata.name", "required");
    } else if !rule(&name) {
        ctx.error(
            "metadata.name",
            format!("{name:?} is not a valid name ({what})"),
        );
    }
    name
}

fn metadata_namespace(ctx: &mut Ctx<'_>, namespace: &Option<String>) -> String {
    let namespace = namespace.clone().unwrap_or_else(|| "default".into());
    if !is_dns1123_label(&namespace) {
        ctx.error(
            "metadata.namespace",
            format!("{namespace:?} is not a valid namespace ({DNS_LABEL_RULE})"),
        );
    }
    namespace
}

fn protocol(ctx: &mut Ctx<'_>, field: &str, value: &Option<String>) -> Option<Protocol> {
    match value.as_deref() {
        None | Some("TCP") => Some(Protocol::Tcp),
        Some("UDP") => Some(Protocol::Udp),
        Some("SCTP") => Some(Protocol::Sctp),
        Some(other) => {
            ctx.error(
                field,
                format!("{other:?} is not a supported protocol (TCP, UDP or SCTP)"),
            );
            None
        }
    }
}

fn port_number(ctx: &mut Ctx<'_>, field: &str, value: i64) -> Option<u16> {
    let port = valid_port(value);
    if port.is_none() {
        ctx.error(field, format!("{value} is not a valid port (1-65535)"));
    }
    port
}

/// A port name (DNS label) that must be unique among `seen`.
fn port_name(ctx: &mut Ctx<'_>, field: &str, name: &str, seen: &mut HashMap<String, String>) {
    if name.is_empty() {
        return;
    }
    if !is_dns1123_label(name) {
        ctx.error(
            field,
            format!("{name:?} is not a valid port name ({DNS_LABEL_RULE})"),
        );
    } else if let Some(first) = seen.get(name) {
        ctx.error(
            field,
            format!("duplicate port name {name:?} (also {first})"),
        );
    } else {
        seen.insert(name.to_string(), field.to_string());
    }
}

fn ip(ctx: &mut Ctx<'_>, field: &str, text: &str) -> Option<IpAddr> {
    let ip = parse_ip_sloppy(text);
    if ip.is_none() {
        ctx.error(
            field,
            format!("{text:?} is not a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)"),
        );
    }
    ip
}

fn cidr(ctx: &mut Ctx<'_>, field: &str, text: &str) -> Option<IpNet> {
    let net = parse_cidr_sloppy(text.trim());
    if net.is_none() {
        ctx.error(
            field,
            format!("{text:?} is not a valid CIDR (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
        );
    }
    net
}

fn traffic_policy(ctx: &mut Ctx<'_>, field: &str, value: &Option<String>) -> TrafficPolicy {
    match value.as_deref() {
        None | Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(other) => {
            ctx.error(
                field,
                format!("{other:?} is not a supported policy (Cluster or Local)"),
            );
            TrafficPolicy::Cluster
        }
    }
}

// ---------------------------------------------------------------------------------------

fn service(ctx: &mut Ctx<'_>, out: &mut Manifests) {
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
        // ExternalName Services are DNS only: kube-proxy programs nothing for them.
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
    let families = spec.ip_families.clone().unwrap_or_default();
    for (i, family) in families.iter().enumerate() {
        if family != "IPv4" && family != "IPv6" {
            ctx.error(
                &format!("spec.ipFamilies[{i}]"),
                format!("{family:?} is not a supported IP family (IPv4 or IPv6)"),
            );
        } else if families[..i].contains(family) {
            ctx.error(
                &format!("spec.ipFamilies[{i}]"),
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
        for (i, text) in ip_texts.iter().enumerate() {
            let field = if ips_field == "spec.clusterIPs" {
                format!("spec.clusterIPs[{i}]")
            } else {
                ips_field.to_string()
            };
            let Some(addr) = ip(ctx, &field, text) else {
                continue;
            };
            if cluster_ips
                .iter()
                .any(|o: &IpAddr| o.is_ipv4() == addr.is_ipv4())
            {
                ctx.error(
                    &field,
                    format!(
                        "{text:?} is a second {} address; a Service has at most one per family",
                        family(&addr)
                    ),
                );
            } else if let Some(expected) = families.get(i) {
                if (expected == "IPv4" || expected == "IPv6") && expected != family(&addr) {
                    ctx.error(
                        &field,
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
    let ports = spec.ports.clone().unwrap_or_default();
    if ports.is_empty() && !headless {
        ctx.error("spec.ports", "required: at least one port");
    }
    let node_ports_allowed = service_type != ServiceType::ClusterIp;
    let mut names = HashMap::new();
    let mut seen_ports: HashMap<(u16, Protocol), String> = HashMap::new();
    let mut seen_node_ports: HashMap<(u16, Protocol), String> = HashMap::new();
    let mut model_ports = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let base = format!("spec.ports[{i}]");
        let name = p.name.clone().unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            ctx.error(
                &format!("{base}.name"),
                "required when the Service has more than one port",
            );
        }
        port_name(ctx, &format!("{base}.name"), &name, &mut names);
        let proto = protocol(ctx, &format!("{base}.protocol"), &p.protocol);
        let port = port_number(ctx, &format!("{base}.port"), p.port.into());
        let target_port = match &p.target_port {
            None | Some(IntOrString::Int(0)) => port.map(TargetPort::Number),
            Some(IntOrString::Int(n)) => {
                port_number(ctx, &format!("{base}.targetPort"), (*n).into()).map(TargetPort::Number)
            }
            Some(IntOrString::String(s)) => {
                if is_iana_svc_name(s) {
                    Some(TargetPort::Name(s.clone()))
                } else {
                    ctx.error(
                        &format!("{base}.targetPort"),
                        format!(
                            "{s:?} is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter)"
                        ),
                    );
                    None
                }
            }
        };
        let node_port = match p.node_port {
            None | Some(0) => {
                if node_ports_allowed {
                    ctx.warn(
                        &format!("{base}.nodePort"),
                        "no nodePort allocated (the API server assigns one); no NodePort rule for this port",
                    );
                }
                None
            }
            Some(n) if !node_ports_allowed => {
                ctx.error(
                    &format!("{base}.nodePort"),
                    format!("{n}: may not be used when `type` is 'ClusterIP'"),
                );
                None
            }
            Some(n) => {
                let field = format!("{base}.nodePort");
                let np = port_number(ctx, &field, n.into());
                if let Some(np) = np {
                    if !NODE_PORT_RANGE.contains(&np) {
                        ctx.warn(
                            &field,
                            format!(
                                "{np} is outside the default NodePort range 30000-32767 (fine if the API server's --service-node-port-range allows it)"
                            ),
                        );
                    }
                    if let Some(proto) = proto {
                        if let Some(first) = seen_node_ports.get(&(np, proto)) {
                            ctx.error(
                                &field,
                                format!(
                                    "duplicate nodePort {np}/{} (also {first})",
                                    proto_name(proto)
                                ),
                            );
                        } else {
                            seen_node_ports.insert((np, proto), field.clone());
                        }
                    }
                }
                np
            }
        };
        if let (Some(port), Some(proto)) = (port, proto) {
            if let Some(first) = seen_ports.get(&(port, proto)) {
                ctx.error(
                    &base,
                    format!("duplicate port {port}/{} (also {first})", proto_name(proto)),
                );
            } else {
                seen_ports.insert((port, proto), base.clone());
            }
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

    // spec.externalIPs
    let mut external_ips = Vec::new();
    for (i, text) in spec.external_ips.iter().flatten().enumerate() {
        let field = format!("spec.externalIPs[{i}]");
        if let Some(addr) = ip(ctx, &field, text) {
            match special_ip(&addr) {
                Some(why) => ctx.error(&field, format!("{text:?} {why}")),
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
    for (i, text) in ranges.iter().enumerate() {
        if let Some(net) = cidr(ctx, &format!("spec.loadBalancerSourceRanges[{i}]"), text) {
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
    for (i, entry) in ingress.iter().enumerate() {
        let base = format!("status.loadBalancer.ingress[{i}]");
        let mode = entry.ip_mode.as_deref();
        if !matches!(mode, None | Some("VIP") | Some("Proxy")) {
            ctx.error(
                &format!("{base}.ipMode"),
                format!(
                    "{:?} is not a supported value (VIP or Proxy)",
                    mode.unwrap_or("")
                ),
            );
            continue;
        }
        let Some(text) = entry.ip.as_deref().filter(|s| !s.is_empty()) else {
            if mode.is_some() {
                ctx.error(
                    &format!("{base}.ipMode"),
                    "must be set only together with ip",
                );
            }
            // Hostname-only ingress: kube-proxy has no address to program.
            continue;
        };
        let Some(addr) = ip(ctx, &format!("{base}.ip"), text) else {
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

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

// ---------------------------------------------------------------------------------------

fn endpoint_slice(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(slice) = ctx.decode::<discovery::EndpointSlice>() else {
        return;
    };
    let name = metadata_name(
        ctx,
        &slice.metadata.name,
        is_dns1123_subdomain,
        "a DNS-1123 subdomain",
    );
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
    let label = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .cloned();
    let label_field = format!("metadata.labels[{SERVICE_NAME_LABEL}]");
    if let Some(service) = &label {
        if !is_label_value(service) {
            ctx.error(
                &label_field,
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
    for (i, p) in slice_ports.iter().enumerate() {
        let base = format!("ports[{i}]");
        let name = p.name.clone().unwrap_or_default();
        port_name(ctx, &format!("{base}.name"), &name, &mut names);
        let proto = protocol(ctx, &format!("{base}.protocol"), &p.protocol);
        // A port without a number means "all ports": kube-proxy ignores it.
        let port = match p.port {
            None => None,
            Some(n) => port_number(ctx, &format!("{base}.port"), n.into()),
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
    for (i, e) in slice.endpoints.iter().enumerate() {
        let base = format!("endpoints[{i}]");
        if e.addresses.is_empty() {
            ctx.error(
                &format!("{base}.addresses"),
                "required: at least one address",
            );
        } else if e.addresses.len() > 100 {
            ctx.error(&format!("{base}.addresses"), "must have at most 100 items");
        }
        let mut addresses = Vec::new();
        for (j, text) in e.addresses.iter().enumerate() {
            let field = format!("{base}.addresses[{j}]");
            let Some(v6) = is_v6 else { continue };
            match parse_ip_sloppy(text) {
                Some(addr) if addr.is_ipv6() == v6 => addresses.push(addr),
                _ => ctx.error(
                    &field,
                    format!(
                        "{text:?} is not a valid {} address (addressType is {})",
                        slice.address_type, slice.address_type
                    ),
                ),
            }
        }
        if let Some(node) = &e.node_name {
            if !is_dns1123_subdomain(node) {
                ctx.error(
                    &format!("{base}.nodeName"),
                    format!("{node:?} is not a valid node name (a DNS-1123 subdomain)"),
                );
            }
        }
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

// ---------------------------------------------------------------------------------------

/// Legacy v1 Endpoints, converted as the EndpointSlice mirroring controller does: one slice
/// per subset and address family; `addresses` ready, `notReadyAddresses` neither ready nor
/// serving; the subset's ports as the slice's ports.
fn endpoints(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(eps) = ctx.decode::<core::Endpoints>() else {
        return;
    };
    let name = metadata_name(
        ctx,
        &eps.metadata.name,
        is_dns1123_subdomain,
        "a DNS-1123 subdomain",
    );
    let namespace = metadata_namespace(ctx, &eps.metadata.namespace);
    let mut slices = Vec::new();
    for (s, subset) in eps.subsets.iter().flatten().enumerate() {
        let base = format!("subsets[{s}]");
        let mut ports = Vec::new();
        let mut names = HashMap::new();
        let subset_ports = subset.ports.clone().unwrap_or_default();
        for (i, p) in subset_ports.iter().enumerate() {
            let pbase = format!("{base}.ports[{i}]");
            let pname = p.name.clone().unwrap_or_default();
            if subset_ports.len() > 1 && pname.is_empty() {
                ctx.error(
                    &format!("{pbase}.name"),
                    "required when the subset has more than one port",
                );
            }
            port_name(ctx, &format!("{pbase}.name"), &pname, &mut names);
            let proto = protocol(ctx, &format!("{pbase}.protocol"), &p.protocol);
            let port = port_number(ctx, &format!("{pbase}.port"), p.port.into());
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
        for (field, addresses, ready) in groups {
            for (i, a) in addresses.iter().enumerate() {
                let abase = format!("{base}.{field}[{i}]");
                let Some(addr) = ip(ctx, &format!("{abase}.ip"), &a.ip) else {
                    continue;
                };
                if let Some(node) = &a.node_name {
                    if !is_dns1123_subdomain(node) {
                        ctx.error(
                            &format!("{abase}.nodeName"),
                            format!("{node:?} is not a valid node name (a DNS-1123 subdomain)"),
                        );
                    }
                }
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
    let skip = eps
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    if skip {
        ctx.warn(
            &format!("metadata.labels[{SKIP_MIRROR_LABEL}]"),
            "the mirroring controller skips these Endpoints; skipped",
        );
        return;
    }
    out.legacy_endpoints.extend(slices);
}

// ---------------------------------------------------------------------------------------

fn node(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(node) = ctx.decode::<core::Node>() else {
        return;
    };
    let name = metadata_name(
        ctx,
        &node.metadata.name,
        is_dns1123_subdomain,
        "a DNS-1123 subdomain",
    );
    let mut internal = Vec::new();
    let mut external = Vec::new();
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default();
    for (i, a) in addresses.iter().enumerate() {
        let base = format!("status.addresses[{i}]");
        match a.type_.as_str() {
            "InternalIP" | "ExternalIP" => {
                if let Some(addr) = ip(ctx, &format!("{base}.address"), &a.address) {
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
                &format!("{base}.type"),
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

// ---------------------------------------------------------------------------------------

fn ingress(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(ing) = ctx.decode::<networking::Ingress>() else {
        return;
    };
    let name = metadata_name(
        ctx,
        &ing.metadata.name,
        is_dns1123_subdomain,
        "a DNS-1123 subdomain",
    );
    let namespace = metadata_namespace(ctx, &ing.metadata.namespace);
    let spec = ing.spec.unwrap_or_default();
    let default_backend = spec
        .default_backend
        .as_ref()
        .and_then(|b| ingress_backend(ctx, "spec.defaultBackend", b));
    let mut rules = Vec::new();
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        let base = format!("spec.rules[{i}]");
        let host = rule.host.clone().filter(|h| !h.is_empty());
        if let Some(h) = &host {
            let bare = h.strip_prefix("*.").unwrap_or(h);
            if !is_dns1123_subdomain(bare) {
                ctx.error(
                    &format!("{base}.host"),
                    format!("{h:?} is not a valid host name (a DNS-1123 subdomain, optionally with a leading \"*.\")"),
                );
            }
        }
        let mut paths = Vec::new();
        for (j, p) in rule
            .http
            .as_ref()
            .map(|h| h.paths.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let pbase = format!("{base}.http.paths[{j}]");
            let path = p.path.clone().unwrap_or_default();
            match p.path_type.as_str() {
                "Exact" | "Prefix" => {
                    if !path.starts_with('/') {
                        ctx.error(
                            &format!("{pbase}.path"),
                            format!("{path:?} must be an absolute path"),
                        );
                    }
                }
                "ImplementationSpecific" => {}
                other => ctx.error(
                    &format!("{pbase}.pathType"),
                    format!(
                        "{other:?} is not a supported value (Exact, Prefix or ImplementationSpecific)"
                    ),
                ),
            }
            if let Some(backend) = ingress_backend(ctx, &format!("{pbase}.backend"), &p.backend) {
                paths.push(IngressPath {
                    path,
                    path_type: p.path_type.clone(),
                    backend,
                });
            }
        }
        rules.push(IngressRule { host, paths });
    }
    if ctx.failed {
        return;
    }
    out.ingresses.push(Ingress {
        namespace,
        name,
        class: spec.ingress_class_name,
        rules,
        default_backend,
    });
}

fn ingress_backend(
    ctx: &mut Ctx<'_>,
    base: &str,
    backend: &networking::IngressBackend,
) -> Option<IngressBackend> {
    match (&backend.service, &backend.resource) {
        (Some(_), Some(_)) => {
            ctx.error(base, "service and resource may not both be set");
            None
        }
        (None, None) => {
            ctx.error(base, "one of service or resource is required");
            None
        }
        (None, Some(_)) => {
            ctx.warn(
                &format!("{base}.resource"),
                "resource backends are not simulated; skipped",
            );
            None
        }
        (Some(service), None) => {
            let sbase = format!("{base}.service");
            if !is_dns1035_label(&service.name) {
                ctx.error(
                    &format!("{sbase}.name"),
                    format!(
                        "{:?} is not a valid Service name (a DNS-1035 label)",
                        service.name
                    ),
                );
            }
            let port = service.port.clone().unwrap_or_default();
            let port = match (port.name.filter(|n| !n.is_empty()), port.number) {
                (Some(_), Some(_)) => {
                    ctx.error(
                        &format!("{sbase}.port"),
                        "name and number may not both be set",
                    );
                    None
                }
                (None, None) => {
                    ctx.error(
                        &format!("{sbase}.port"),
                        "one of name or number is required",
                    );
                    None
                }
                (Some(name), None) => {
                    if is_iana_svc_name(&name) {
                        Some(TargetPort::Name(name))
                    } else {
                        ctx.error(
                            &format!("{sbase}.port.name"),
                            format!("{name:?} is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter)"),
                        );
                        None
                    }
                }
                (None, Some(n)) => port_number(ctx, &format!("{sbase}.port.number"), n.into())
                    .map(TargetPort::Number),
            }?;
            Some(IngressBackend {
                service: service.name.clone(),
                port,
            })
        }
    }
}

// ---------------------------------------------------------------------------------------

fn service_cidr(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    // v1beta1 has the same schema; k8s-openapi's type checks apiVersion, so decode as v1.
    let mut patched;
    let root = if ctx.root.str_at(&["apiVersion"]) == Some("networking.k8s.io/v1beta1") {
        patched = ctx.root.clone();
        if let Value::Map(entries) = &mut patched.value {
            for (k, v) in entries.iter_mut() {
                if k == "apiVersion" {
                    v.value = Value::Str("networking.k8s.io/v1".into());
                }
            }
        }
        Some(&patched)
    } else {
        None
    };
    let decoded = match root {
        Some(root) => yaml::from_node::<networking::ServiceCIDR>(root).map_err(|e| {
            let (field, _) = e.located.clone().unwrap_or_default();
            (field, e.message)
        }),
        None => yaml::from_node::<networking::ServiceCIDR>(ctx.root).map_err(|e| {
            let (field, _) = e.located.clone().unwrap_or_default();
            (field, e.message)
        }),
    };
    let sc = match decoded {
        Ok(sc) => sc,
        Err((field, message)) => {
            ctx.error(&field, message);
            return;
        }
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

// ---------------------------------------------------------------------------------------

fn proxy_config(ctx: &mut Ctx<'_>, out: &mut Manifests) {
    let Some(config) = ctx.decode::<KubeProxyConfiguration>() else {
        return;
    };
    let (_, problems) = config.settings();
    for (field, message, warning) in problems {
        if warning {
            ctx.warn(&field, message);
        } else {
            ctx.error(&field, message);
        }
    }
    if ctx.failed {
        return;
    }
    if out.proxy.is_some() {
        ctx.error("", "a second KubeProxyConfiguration in the same file");
        return;
    }
    out.proxy = Some(config);
}
