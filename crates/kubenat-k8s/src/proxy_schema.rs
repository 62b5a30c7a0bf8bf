//! The fields of kube-proxy's `KubeProxyConfiguration` (kubeproxy.config.k8s.io/v1alpha1,
//! `staging/src/k8s.io/kube-proxy/config/v1alpha1/types.go`), to tell a typo from a field
//! kubenat merely ignores. k8s-openapi has no component configurations, and kubenat's own
//! type keeps only the fields that change packets, so the schema is written out here.

use crate::node::{Node, Value};

/// What a field holds, as far as unknown-field checks go.
enum Field {
    /// A scalar or a list of scalars.
    Leaf,
    /// Keys chosen by the user (`featureGates`) or free-form options: never unknown.
    Free,
    Object(&'static [(&'static str, Field)]),
}

use Field::{Free, Leaf, Object};

const KUBE_PROXY_CONFIGURATION: Field = Object(&[
    ("apiVersion", Leaf),
    ("kind", Leaf),
    ("featureGates", Free),
    (
        "clientConnection",
        Object(&[
            ("kubeconfig", Leaf),
            ("acceptContentTypes", Leaf),
            ("contentType", Leaf),
            ("qps", Leaf),
            ("burst", Leaf),
        ]),
    ),
    (
        "logging",
        Object(&[
            ("format", Leaf),
            ("flushFrequency", Leaf),
            ("verbosity", Leaf),
            ("vmodule", Free),
            ("options", Free),
        ]),
    ),
    ("hostnameOverride", Leaf),
    ("bindAddress", Leaf),
    ("healthzBindAddress", Leaf),
    ("metricsBindAddress", Leaf),
    ("bindAddressHardFail", Leaf),
    ("enableProfiling", Leaf),
    ("showHiddenMetricsForVersion", Leaf),
    ("mode", Leaf),
    (
        "iptables",
        Object(&[
            ("masqueradeBit", Leaf),
            ("masqueradeAll", Leaf),
            ("localhostNodePorts", Leaf),
            ("snatNodeInternalIP", Leaf),
            ("syncPeriod", Leaf),
            ("minSyncPeriod", Leaf),
        ]),
    ),
    (
        "ipvs",
        Object(&[
            ("syncPeriod", Leaf),
            ("minSyncPeriod", Leaf),
            ("scheduler", Leaf),
            ("excludeCIDRs", Leaf),
            ("strictARP", Leaf),
            ("tcpTimeout", Leaf),
            ("tcpFinTimeout", Leaf),
            ("udpTimeout", Leaf),
        ]),
    ),
    (
        "nftables",
        Object(&[
            ("masqueradeBit", Leaf),
            ("masqueradeAll", Leaf),
            ("syncPeriod", Leaf),
            ("minSyncPeriod", Leaf),
        ]),
    ),
    (
        "winkernel",
        Object(&[
            ("networkName", Leaf),
            ("sourceVip", Leaf),
            ("enableDSR", Leaf),
            ("rootHnsEndpointName", Leaf),
            ("forwardHealthCheckVip", Leaf),
        ]),
    ),
    ("detectLocalMode", Leaf),
    (
        "detectLocal",
        Object(&[("bridgeInterface", Leaf), ("interfaceNamePrefix", Leaf)]),
    ),
    ("clusterCIDR", Leaf),
    ("nodePortAddresses", Leaf),
    ("oomScoreAdj", Leaf),
    (
        "conntrack",
        Object(&[
            ("maxPerCore", Leaf),
            ("min", Leaf),
            ("tcpEstablishedTimeout", Leaf),
            ("tcpCloseWaitTimeout", Leaf),
            ("tcpBeLiberal", Leaf),
            ("udpTimeout", Leaf),
            ("udpStreamTimeout", Leaf),
        ]),
    ),
    ("configSyncPeriod", Leaf),
    ("portRange", Leaf),
    ("windowsRunAsService", Leaf),
]);

/// The path and line of every field of `config` that v1alpha1 does not have.
pub(crate) fn unknown_fields(config: &Node) -> Vec<(String, usize)> {
    let mut unknown = Vec::new();
    walk(config, &KUBE_PROXY_CONFIGURATION, "", &mut unknown);
    unknown
}

fn walk(node: &Node, field: &Field, path: &str, unknown: &mut Vec<(String, usize)>) {
    let (Object(fields), Value::Map(entries)) = (field, &node.value) else {
        return;
    };
    for (key, value) in entries {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match fields.iter().find(|(name, _)| name == key) {
            Some((_, field)) => walk(value, field, &child, unknown),
            None => unknown.push((child, value.line)),
        }
    }
}
