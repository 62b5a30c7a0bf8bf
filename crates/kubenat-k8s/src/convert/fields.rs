//! Field checks shared by the converters: names, namespaces, ports, protocols, addresses
//! and policies, each reporting the API server's message at its field.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;

use kubenat_core::{IpNet, Protocol, TargetPort, TrafficPolicy};

use super::Ctx;
use crate::validate::{
    DNS_LABEL_RULE, is_dns1123_label, is_dns1123_subdomain, is_iana_svc_name, parse_cidr_sloppy,
    parse_ip_sloppy, valid_port,
};

/// A field's path in its object, such as `spec.ports[2].name`, put into words only when a
/// diagnostic names it: converting a dump builds one per port and per address, and formatting
/// each was a tenth of the import's work.
#[derive(Clone, Copy, Debug)]
pub(super) enum Field<'a> {
    Path(&'a str),
    Item(&'a Field<'a>, usize),
    Member(&'a Field<'a>, &'a str),
}

impl<'a> Field<'a> {
    /// Item `index` of this list.
    pub fn item(&'a self, index: usize) -> Field<'a> {
        Field::Item(self, index)
    }

    /// This object's member `name` (a dotted path such as `port.name` is welcome).
    pub fn member(&'a self, name: &'a str) -> Field<'a> {
        Field::Member(self, name)
    }
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Path(path) => f.write_str(path),
            Field::Item(list, index) => write!(f, "{list}[{index}]"),
            Field::Member(object, name) => write!(f, "{object}.{name}"),
        }
    }
}

pub(super) fn metadata_name(
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

/// `metadata.name` of an object named by a DNS-1123 subdomain (most kinds but Service).
pub(super) fn subdomain_name(ctx: &mut Ctx<'_>, name: &Option<String>) -> String {
    metadata_name(ctx, name, is_dns1123_subdomain, "a DNS-1123 subdomain")
}

pub(super) fn metadata_namespace(ctx: &mut Ctx<'_>, namespace: &Option<String>) -> String {
    let namespace = namespace.clone().unwrap_or_else(|| "default".into());
    if !is_dns1123_label(&namespace) {
        ctx.error(
            "metadata.namespace",
            format!("{namespace:?} is not a valid namespace ({DNS_LABEL_RULE})"),
        );
    }
    namespace
}

pub(super) fn protocol(
    ctx: &mut Ctx<'_>,
    field: impl fmt::Display + Copy,
    value: &Option<String>,
) -> Option<Protocol> {
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

pub(super) fn port_number(
    ctx: &mut Ctx<'_>,
    field: impl fmt::Display + Copy,
    value: i64,
) -> Option<u16> {
    let port = valid_port(value);
    if port.is_none() {
        ctx.error(field, format!("{value} is not a valid port (1-65535)"));
    }
    port
}

/// A port name (DNS label) that must be unique among `seen`.
pub(super) fn port_name(
    ctx: &mut Ctx<'_>,
    field: impl fmt::Display + Copy,
    name: &str,
    seen: &mut HashMap<String, String>,
) {
    if name.is_empty() {
        return;
    }
    if !is_dns1123_label(name) {
        ctx.error(
            field,
            format!("{name:?} is not a valid port name ({DNS_LABEL_RULE})"),
        );
    } else {
        unique(ctx, seen, name.to_string(), field, || {
            format!("port name {name:?}")
        });
    }
}

/// Records `key` as first used at `field`, or reports `duplicate {what} (also {first})`.
pub(super) fn unique<K: Hash + Eq>(
    ctx: &mut Ctx<'_>,
    seen: &mut HashMap<K, String>,
    key: K,
    field: impl fmt::Display + Copy,
    what: impl FnOnce() -> String,
) {
    if let Some(first) = seen.get(&key) {
        ctx.error(field, format!("duplicate {} (also {first})", what()));
    } else {
        seen.insert(key, field.to_string());
    }
}

/// The name, protocol and number of a port as a Service or an Endpoints subset lists it.
/// `multi_port_owner` is `Some("Service")` (or `Some("subset")`) when the owner has more
/// than one port, which makes the name required.
pub(super) fn listed_port(
    ctx: &mut Ctx<'_>,
    base: Field<'_>,
    multi_port_owner: Option<&str>,
    name: &Option<String>,
    protocol_name: &Option<String>,
    number: i32,
    names: &mut HashMap<String, String>,
) -> (String, Option<Protocol>, Option<u16>) {
    let name = name.clone().unwrap_or_default();
    if let Some(owner) = multi_port_owner.filter(|_| name.is_empty()) {
        ctx.error(
            base.member("name"),
            format!("required when the {owner} has more than one port"),
        );
    }
    port_name(ctx, base.member("name"), &name, names);
    let proto = protocol(ctx, base.member("protocol"), protocol_name);
    let port = port_number(ctx, base.member("port"), number.into());
    (name, proto, port)
}

/// A port named rather than numbered (an IANA service name).
pub(super) fn named_port(
    ctx: &mut Ctx<'_>,
    field: impl fmt::Display + Copy,
    name: &str,
) -> Option<TargetPort> {
    if is_iana_svc_name(name) {
        Some(TargetPort::Name(name.to_string()))
    } else {
        ctx.error(
            field,
            format!(
                "{name:?} is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter)"
            ),
        );
        None
    }
}

/// An endpoint's `nodeName`, when set.
pub(super) fn node_name(ctx: &mut Ctx<'_>, field: impl fmt::Display + Copy, node: &Option<String>) {
    if let Some(node) = node {
        if !is_dns1123_subdomain(node) {
            ctx.error(
                field,
                format!("{node:?} is not a valid node name (a DNS-1123 subdomain)"),
            );
        }
    }
}

pub(super) fn ip(ctx: &mut Ctx<'_>, field: impl fmt::Display + Copy, text: &str) -> Option<IpAddr> {
    let ip = parse_ip_sloppy(text);
    if ip.is_none() {
        ctx.error(
            field,
            format!("{text:?} is not a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)"),
        );
    }
    ip
}

pub(super) fn cidr(
    ctx: &mut Ctx<'_>,
    field: impl fmt::Display + Copy,
    text: &str,
) -> Option<IpNet> {
    let net = parse_cidr_sloppy(text.trim());
    if net.is_none() {
        ctx.error(
            field,
            format!("{text:?} is not a valid CIDR (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
        );
    }
    net
}

pub(super) fn traffic_policy(
    ctx: &mut Ctx<'_>,
    field: impl fmt::Display + Copy,
    value: &Option<String>,
) -> TrafficPolicy {
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

pub(super) fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}
