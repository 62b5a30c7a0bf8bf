//! What the import makes of valid input: the forms kubectl prints, the conversions kube-proxy
//! (or the mirroring controller) applies, and what it skips.

use std::net::IpAddr;
use std::time::Duration;

use kubenat_core::{
    EndpointConditions, EndpointPort, Protocol, ProxyMode, ServiceName, TargetPort,
};
use kubenat_k8s::{Manifests, parse_str};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal")
}

fn ok(text: &str) -> Manifests {
    parse_str("t.yaml", text).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

const NODE_AND_SERVICE_YAML: &str = "\
apiVersion: v1
kind: Node
metadata:
  name: nodoa
status:
  addresses:
  - type: Hostname
    address: nodoa
  - type: ExternalIP
    address: 203.0.113.7
  - type: InternalIP
    address: 192.168.0.101
---
apiVersion: v1
kind: Service
metadata:
  name: wp-service
spec:
  clusterIP: 10.10.1.102
  ports:
  - name: http
    port: 8080
    targetPort: web
";

#[test]
fn multi_document_list_and_json_read_the_same() {
    let multi = ok(NODE_AND_SERVICE_YAML);
    let list = ok("\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: nodoa}
  status:
    addresses:
    - {type: Hostname, address: nodoa}
    - {type: ExternalIP, address: 203.0.113.7}
    - {type: InternalIP, address: 192.168.0.101}
- apiVersion: v1
  kind: Service
  metadata: {name: wp-service}
  spec:
    clusterIP: 10.10.1.102
    ports: [{name: http, port: 8080, targetPort: web}]
");
    // kubectl -o json: a List, 4-space indentation.
    let json = ok(r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "nodoa"},
            "status": {"addresses": [
                {"address": "nodoa", "type": "Hostname"},
                {"address": "203.0.113.7", "type": "ExternalIP"},
                {"address": "192.168.0.101", "type": "InternalIP"}
            ]}
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "wp-service", "namespace": "default"},
            "spec": {
                "clusterIP": "10.10.1.102",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "targetPort": "web"}]
            }
        }
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}"#);
    assert_eq!(multi, list);
    assert_eq!(multi, json);
    // InternalIP first, then ExternalIP; hostnames are not addresses.
    assert_eq!(
        multi.nodes[0].addresses,
        [ip("192.168.0.101"), ip("203.0.113.7")]
    );
    assert_eq!(
        multi.services[0].name,
        ServiceName::new("default", "wp-service")
    );
    assert_eq!(
        multi.services[0].ports[0].target_port,
        TargetPort::Name("web".into())
    );
}

#[test]
fn json_errors_have_lines_too() {
    let errors = parse_str(
        "c.json",
        "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\",\n  \"metadata\": {\"name\": \"s\"},\n  \"spec\": {\n    \"clusterIP\": \"10.0.0.1\",\n    \"ports\": [{\"port\": 0}]\n  }\n}\n",
    )
    .expect_err("port 0");
    assert_eq!(
        errors[0].to_string(),
        "c.json:7: Service default/s: spec.ports[0].port: 0 is not a valid port (1-65535)"
    );
}

#[test]
fn legacy_endpoints_are_mirrored_for_services_without_slices() {
    let manifests = ok("\
apiVersion: v1
kind: Service
metadata: {name: legacy}
spec:
  clusterIP: 10.10.1.50
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: legacy, namespace: default}
subsets:
- addresses:
  - {ip: 10.10.0.50, nodeName: nodoa}
  notReadyAddresses:
  - {ip: 10.10.0.51, nodeName: nodob}
  ports:
  - {name: http, port: 8080}
---
apiVersion: v1
kind: Node
metadata: {name: nodoa}
status: {addresses: [{type: InternalIP, address: 192.168.0.101}]}
");
    let state = manifests.cluster_state("nodoa").expect("node");
    assert_eq!(state.endpoint_slices.len(), 1);
    let slice = &state.endpoint_slices[0];
    assert_eq!(slice.service, ServiceName::new("default", "legacy"));
    assert_eq!(
        slice.ports,
        [EndpointPort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 8080
        }]
    );
    let summary: Vec<_> = slice
        .endpoints
        .iter()
        .map(|e| (e.addresses.clone(), e.conditions, e.node_name.clone()))
        .collect();
    let not_ready = EndpointConditions {
        ready: false,
        serving: false,
        terminating: false,
    };
    assert_eq!(
        summary,
        [
            (
                vec![ip("10.10.0.50")],
                EndpointConditions::default(),
                Some("nodoa".into())
            ),
            (vec![ip("10.10.0.51")], not_ready, Some("nodob".into())),
        ]
    );
}

#[test]
fn legacy_endpoints_give_way_to_endpoint_slices() {
    let manifests = ok("\
apiVersion: v1
kind: Endpoints
metadata: {name: wp-service}
subsets:
- addresses: [{ip: 10.10.0.99}]
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: wp-service-abc12
  labels: {kubernetes.io/service-name: wp-service}
addressType: IPv4
ports: [{name: http, port: 80}]
endpoints: [{addresses: [10.10.0.102]}]
---
apiVersion: v1
kind: Node
metadata: {name: n}
");
    let state = manifests.cluster_state("n").expect("node");
    assert_eq!(state.endpoint_slices.len(), 1);
    assert_eq!(
        state.endpoint_slices[0].endpoints[0].addresses,
        [ip("10.10.0.102")]
    );
}

#[test]
fn leading_zeros_are_read_as_decimal_like_parse_ip_sloppy() {
    let manifests = ok("\
apiVersion: v1
kind: Service
metadata: {name: old}
spec:
  clusterIP: 010.010.001.101
  externalIPs: [192.168.000.010]
  type: LoadBalancer
  loadBalancerSourceRanges: [010.000.000.000/8]
  ports: [{port: 80, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: old-1
  labels: {kubernetes.io/service-name: old}
addressType: IPv4
endpoints: [{addresses: [010.010.000.103]}]
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 010.010.000.000/16
");
    let service = &manifests.services[0];
    assert_eq!(service.cluster_ips, [ip("10.10.1.101")]);
    assert_eq!(service.external_ips, [ip("192.168.0.10")]);
    assert_eq!(
        service.load_balancer_source_ranges,
        ["10.0.0.0/8".parse().unwrap()]
    );
    assert_eq!(
        manifests.endpoint_slices[0].endpoints[0].addresses,
        [ip("10.10.0.103")]
    );
    assert_eq!(
        manifests
            .proxy
            .as_ref()
            .and_then(|p| p.cluster_cidr.as_deref()),
        Some("010.010.000.000/16")
    );
}

#[test]
fn load_balancer_ingress_in_proxy_mode_or_by_hostname_is_not_programmed() {
    let manifests = ok("\
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  clusterIP: 10.10.1.20
  ports: [{port: 443, nodePort: 31443}]
status:
  loadBalancer:
    ingress:
    - ip: 203.0.113.10
    - ip: 203.0.113.11
      ipMode: VIP
    - ip: 203.0.113.12
      ipMode: Proxy
    - hostname: lb.example.com
");
    assert_eq!(
        manifests.services[0].load_balancer_ips,
        [ip("203.0.113.10"), ip("203.0.113.11")]
    );
}

#[test]
fn absent_conditions_mean_what_the_api_says() {
    let manifests = ok("\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s-1
  labels: {kubernetes.io/service-name: s}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
  conditions: {}
- addresses: [10.0.0.3]
  conditions: {ready: false}
- addresses: [10.0.0.4]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.0.0.5]
  conditions: {ready: null, serving: null, terminating: null}
");
    let conditions: Vec<_> = manifests.endpoint_slices[0]
        .endpoints
        .iter()
        .map(|e| {
            (
                e.conditions.ready,
                e.conditions.serving,
                e.conditions.terminating,
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            (true, true, false),
            (true, true, false),
            (false, true, false),
            (false, true, true),
            (true, true, false),
        ]
    );
}

#[test]
fn what_kube_proxy_ignores_is_skipped() {
    let manifests = ok("\
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: external}
spec: {type: ExternalName, externalName: db.example.com}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: wordpress}
spec: {}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orphan}
addressType: IPv4
endpoints: []
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: names
  labels: {kubernetes.io/service-name: external}
addressType: FQDN
endpoints: [{addresses: [db.example.com]}]
");
    assert!(manifests.services.is_empty());
    assert!(manifests.endpoint_slices.is_empty());
    let warnings: Vec<String> = manifests.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "t.yaml:12: Deployment wordpress: kind: Deployment (apps/v1) is not used by kube-proxy; skipped",
            "t.yaml:18: EndpointSlice default/orphan: metadata.labels: no kubernetes.io/service-name label: kube-proxy ignores this EndpointSlice",
            "t.yaml:27: EndpointSlice default/names: addressType: FQDN EndpointSlices are ignored by kube-proxy; skipped",
        ]
    );
}

#[test]
fn proxy_configuration_becomes_the_node_settings() {
    let base = "\
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDRs: [10.244.1.0/24, fd00:1::/64]}
status:
  addresses:
  - {type: InternalIP, address: 192.168.0.101}
  - {type: InternalIP, address: 192.168.0.201}
  - {type: InternalIP, address: fd00::101}
";
    // No configuration: kube-proxy's defaults, nftables mode, NodePorts on primary IPs only.
    let state = ok(base).cluster_state("n1").expect("node");
    assert_eq!(state.proxy.mode, ProxyMode::Nftables);
    assert_eq!(
        state.proxy.node_port_addresses,
        [
            "192.168.0.101/32".parse().unwrap(),
            "fd00::101/128".parse().unwrap()
        ]
    );
    assert!(state.proxy.cluster_cidrs.is_empty());
    assert_eq!(state.proxy.conntrack_capacity, 262_144);
    assert_eq!(
        state.proxy.timeouts,
        kubenat_core::ConntrackTimeouts::default()
    );

    let configured = format!(
        "{base}---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
detectLocalMode: NodeCIDR
clusterCIDR: 10.244.0.0/16
iptables: {{masqueradeAll: true, localhostNodePorts: false}}
nftables: {{masqueradeAll: false}}
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 2h
  tcpCloseWaitTimeout: 0s
  udpTimeout: 1m
  udpStreamTimeout: 3m0s
"
    );
    let state = ok(&configured).cluster_state("n1").expect("node");
    let p = &state.proxy;
    assert_eq!(p.mode, ProxyMode::Iptables);
    assert!(p.masquerade_all, "iptables.masqueradeAll in iptables mode");
    assert!(!p.localhost_node_ports);
    // iptables mode: NodePorts on every local address.
    assert!(p.node_port_addresses.is_empty());
    // NodeCIDR: the node's own pod ranges, not clusterCIDR.
    assert_eq!(
        p.cluster_cidrs,
        [
            "10.244.1.0/24".parse().unwrap(),
            "fd00:1::/64".parse().unwrap()
        ]
    );
    assert_eq!(p.timeouts.tcp_established, Duration::from_secs(7_200));
    // Zero leaves the kernel's value (Linux: 60 s close_wait).
    assert_eq!(p.timeouts.tcp_close_wait, Duration::from_secs(60));
    assert_eq!(p.timeouts.udp, Duration::from_secs(60));
    assert_eq!(p.timeouts.udp_stream, Duration::from_secs(180));
    // maxPerCore 0 leaves the table size alone.
    assert_eq!(p.conntrack_capacity, 262_144);

    let sized = format!(
        "{base}---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
nodePortAddresses: [192.168.0.0/24]
detectLocalMode: BridgeInterface
conntrack: {{maxPerCore: 1000, min: 20000}}
"
    );
    let manifests = ok(&sized);
    let warnings: Vec<String> = manifests.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "t.yaml:14: KubeProxyConfiguration: detectLocalMode: BridgeInterface is not modelled by kubenat: no traffic is told apart as pod traffic"
        ]
    );
    let p = manifests.cluster_state("n1").expect("node").proxy;
    assert_eq!(p.node_port_addresses, ["192.168.0.0/24".parse().unwrap()]);
    assert!(p.cluster_cidrs.is_empty());
    // max(1000 × 8 CPUs, 20000)
    assert_eq!(p.conntrack_capacity, 20_000);
}

#[test]
fn a_large_conntrack_maximum_is_a_ceiling_not_a_reservation() {
    // Issue 12: `min: 20000000` took 2.2 GB to trace one packet, and `maxPerCore:
    // 1000000000` aborted on a 137 GB allocation (now an error naming the field).
    for (conntrack, capacity) in [
        ("{min: 20000000}", 20_000_000),
        ("{maxPerCore: 100000000}", 800_000_000),
    ] {
        let text = format!(
            "apiVersion: v1
kind: Node
metadata: {{name: n1}}
status:
  addresses:
  - {{type: InternalIP, address: 192.168.0.101}}
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
conntrack: {conntrack}
"
        );
        let state = ok(&text).cluster_state("n1").expect("node");
        assert_eq!(state.proxy.conntrack_capacity, capacity);
        let engine = kubenat_core::Engine::new(&state);
        assert!(
            engine.conntrack_bytes() < 64 * 1024,
            "{conntrack}: {} bytes",
            engine.conntrack_bytes()
        );
    }
}

#[test]
fn merge_later_definitions_win_with_a_warning() {
    let mut a = ok(NODE_AND_SERVICE_YAML);
    let b = ok(&NODE_AND_SERVICE_YAML.replace("8080", "9090"));
    a.merge(b);
    assert_eq!(a.services.len(), 1);
    assert_eq!(a.services[0].ports[0].port, 9090);
    assert_eq!(a.nodes.len(), 1);
    let warnings: Vec<String> = a.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "Service default/wp-service: defined more than once; the later definition wins",
            "Node nodoa: defined more than once; the later definition wins",
        ]
    );
}

/// Loaded from files, an object defined twice (within one file or across two) also keeps its
/// later definition, with the same warning.
#[test]
fn files_later_definitions_win_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("kubenat-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let (first, later, twice) = (
        dir.join("first.yaml"),
        dir.join("later.yaml"),
        dir.join("twice.yaml"),
    );
    let later_text = NODE_AND_SERVICE_YAML.replace("8080", "9090");
    let written = std::fs::write(&first, NODE_AND_SERVICE_YAML)
        .and_then(|()| std::fs::write(&later, &later_text))
        .and_then(|()| {
            std::fs::write(
                &twice,
                format!("{NODE_AND_SERVICE_YAML}\n---\n{later_text}"),
            )
        });
    assert!(written.is_ok(), "{written:?}");
    for paths in [vec![first.clone(), later.clone()], vec![twice.clone()]] {
        let loaded = kubenat_k8s::load(&paths);
        let Ok(manifests) = loaded else {
            panic!("{paths:?}: {loaded:?}");
        };
        assert_eq!(manifests.services.len(), 1, "{paths:?}");
        assert_eq!(manifests.services[0].ports[0].port, 9090, "{paths:?}");
        let warnings: Vec<String> = manifests.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [
                "Service default/wp-service: defined more than once; the later definition wins",
                "Node nodoa: defined more than once; the later definition wins",
            ],
            "{paths:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dual_stack_service() {
    let manifests = ok("\
apiVersion: v1
kind: Service
metadata: {name: ds}
spec:
  clusterIP: 10.10.1.7
  clusterIPs: [10.10.1.7, 'fd00:10::7']
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports: [{port: 80, protocol: UDP}]
  sessionAffinity: ClientIP
");
    let s = &manifests.services[0];
    assert_eq!(s.cluster_ips, [ip("10.10.1.7"), ip("fd00:10::7")]);
    assert_eq!(s.ports[0].protocol, Protocol::Udp);
    assert_eq!(s.ports[0].target_port, TargetPort::Number(80));
    assert_eq!(
        s.session_affinity,
        kubenat_core::SessionAffinity::ClientIp {
            timeout: Duration::from_secs(10_800)
        }
    );
}

/// Cut, duplicate or corrupt any part of the example: the import answers, never panics.
#[test]
fn mutated_example_never_panics() {
    let text = include_str!("../../../examples/miempresa/cluster.yaml");
    let lines: Vec<&str> = text.lines().collect();
    for i in 0..lines.len() {
        let mut dropped = lines.clone();
        dropped.remove(i);
        let _ = parse_str("m.yaml", &dropped.join("\n"));
        let mut shifted = lines.clone();
        let moved = format!(" {}", shifted[i]);
        shifted[i] = &moved;
        let _ = parse_str("m.yaml", &shifted.join("\n"));
    }
    for cut in (0..text.len()).step_by(7) {
        if text.is_char_boundary(cut) {
            let _ = parse_str("m.yaml", &text[..cut]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_str("p.yaml", &text);
    }

    #[test]
    fn arbitrary_values_in_a_service_never_panic(
        value in prop_oneof![
            "[-+0-9.:a-fA-FxoN/]{0,20}",
            Just("~".to_string()),
            Just("[]".to_string()),
            Just("{}".to_string()),
            Just("99999999999999999999999".to_string()),
            Just("*a".to_string()),
            Just(".nan".to_string()),
        ],
        line in 0usize..14,
    ) {
        let lines = [
            "apiVersion: v1", "kind: Service", "metadata:", "  name: s", "spec:",
            "  clusterIP: V", "  type: V", "  externalIPs: [V]", "  ports:",
            "  - port: V", "    nodePort: V", "    targetPort: V", "    protocol: V",
            "  sessionAffinity: V",
        ];
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(i, l)| *i == line || !l.contains('V'))
            .map(|(_, l)| l.replace('V', &value))
            .collect();
        let text = text.join("\n");
        if let Ok(m) = parse_str("p.yaml", &text) {
            let _ = m.cluster_state("n");
        }
    }
}

#[test]
fn an_object_twice_in_one_file_is_kept_once() {
    let text = format!("{NODE_AND_SERVICE_YAML}---\n{NODE_AND_SERVICE_YAML}");
    let manifests = ok(&text);
    assert_eq!(manifests.services.len(), 1);
    assert_eq!(manifests.nodes.len(), 1);
    assert_eq!(manifests.warnings.len(), 2);
}

#[test]
fn into_cluster_state_moves_what_cluster_state_copies() {
    let text = "\
apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  addresses: [{type: InternalIP, address: 192.168.0.1}]
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec:
  clusterIP: 10.96.0.1
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  clusterIP: 10.96.0.2
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: a, namespace: default}
subsets: [{addresses: [{ip: 10.244.0.1}], ports: [{port: 80}]}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: b, namespace: default}
subsets: [{addresses: [{ip: 10.244.0.9}], ports: [{port: 80}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: b-1
  namespace: default
  labels: {kubernetes.io/service-name: b}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.244.0.2]}]
";
    let manifests = kubenat_k8s::parse_str("m.yaml", text).unwrap_or_else(|e| panic!("{e:?}"));
    let copied = manifests
        .cluster_state("n1")
        .unwrap_or_else(|e| panic!("{e}"));
    // a's Endpoints mirrored, b's ignored for its slice.
    assert_eq!(copied.endpoint_slices.len(), 2);
    let moved = manifests
        .into_cluster_state("n1")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moved, copied);
}

#[test]
fn managed_fields_go_unread_by_every_reader() {
    // kube-proxy never reads managedFields: a value no schema allows there is no error,
    // whether the JSON reader, the YAML fast path or serde-saphyr (flow style) reads it.
    let texts = [
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "managedFields": 7}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}"#,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  managedFields: 7\nspec:\n  clusterIP: 10.96.0.1\n  ports:\n  - port: 80\n",
        "{apiVersion: v1, kind: Service, metadata: {name: a, managedFields: 7}, spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}}\n",
    ];
    for text in texts {
        let manifests =
            kubenat_k8s::parse_str("m", text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(manifests.services.len(), 1, "{text}");
        assert!(
            manifests.warnings.is_empty(),
            "{text}: {:?}",
            manifests.warnings
        );
    }
}
