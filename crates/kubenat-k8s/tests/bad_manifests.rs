//! One row per kind of bad manifest: the exact diagnostic, with file, line, object, field
//! path and message. The rules are the API server's (pkg/apis/core/validation,
//! pkg/apis/discovery/validation, pkg/apis/networking/validation) and kube-proxy's own
//! configuration validation.

use kubenat_k8s::parse_str;

/// A valid Service, one field per line so that rows can point at lines:
const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: wp-service
  namespace: default
spec:
  clusterIP: 10.10.1.102
  ports:
  - name: http
    port: 8080
    targetPort: 80
";

const SLICE: &str = "\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: wp-service-abc12
  namespace: default
  labels:
    kubernetes.io/service-name: wp-service
addressType: IPv4
ports:
- name: http
  port: 80
endpoints:
- addresses:
  - 10.10.0.102
  nodeName: nodoa
";

const NODE: &str = "\
apiVersion: v1
kind: Node
metadata:
  name: nodoa
status:
  addresses:
  - type: InternalIP
    address: 192.168.0.101
";

const PROXY: &str = "\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clusterCIDR: 10.10.0.0/16
nodePortAddresses: null
conntrack:
  tcpEstablishedTimeout: 24h0m0s
";

/// (row name, base manifest, text replaced, replacement, the one expected error)
const ROWS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "port out of range",
        SERVICE,
        "port: 8080",
        "port: 70000",
        "bad.yaml:10: Service default/wp-service: spec.ports[0].port: 70000 is not a valid port (1-65535)",
    ),
    (
        "port zero",
        SERVICE,
        "port: 8080",
        "port: 0",
        "bad.yaml:10: Service default/wp-service: spec.ports[0].port: 0 is not a valid port (1-65535)",
    ),
    (
        "port of the wrong type",
        SERVICE,
        "port: 8080",
        "port: \"8080\"",
        "bad.yaml:10: Service default/wp-service: spec.ports[0].port: invalid type: string \"8080\", expected i32",
    ),
    (
        "unsupported protocol",
        SERVICE,
        "    targetPort: 80\n",
        "    targetPort: 80\n    protocol: HTTP\n",
        "bad.yaml:12: Service default/wp-service: spec.ports[0].protocol: \"HTTP\" is not a supported protocol (TCP, UDP or SCTP)",
    ),
    (
        "port name not a DNS label",
        SERVICE,
        "- name: http",
        "- name: Http_1",
        "bad.yaml:9: Service default/wp-service: spec.ports[0].name: \"Http_1\" is not a valid port name (a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)",
    ),
    (
        "duplicate port name",
        SERVICE,
        "    targetPort: 80\n",
        "    targetPort: 80\n  - name: http\n    port: 8443\n",
        "bad.yaml:12: Service default/wp-service: spec.ports[1].name: duplicate port name \"http\" (also spec.ports[0].name)",
    ),
    (
        "unnamed port among several",
        SERVICE,
        "    targetPort: 80\n",
        "    targetPort: 80\n  - port: 8443\n",
        "bad.yaml:12: Service default/wp-service: spec.ports[1].name: required when the Service has more than one port",
    ),
    (
        "duplicate port and protocol",
        SERVICE,
        "    targetPort: 80\n",
        "    targetPort: 80\n  - name: other\n    port: 8080\n",
        "bad.yaml:12: Service default/wp-service: spec.ports[1]: duplicate port 8080/TCP (also spec.ports[0])",
    ),
    (
        "numeric string as targetPort name",
        SERVICE,
        "targetPort: 80",
        "targetPort: \"80\"",
        "bad.yaml:11: Service default/wp-service: spec.ports[0].targetPort: \"80\" is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter)",
    ),
    (
        "targetPort out of range",
        SERVICE,
        "targetPort: 80",
        "targetPort: 65536",
        "bad.yaml:11: Service default/wp-service: spec.ports[0].targetPort: 65536 is not a valid port (1-65535)",
    ),
    (
        "nodePort on a ClusterIP Service",
        SERVICE,
        "    targetPort: 80\n",
        "    targetPort: 80\n    nodePort: 30080\n",
        "bad.yaml:12: Service default/wp-service: spec.ports[0].nodePort: 30080: may not be used when `type` is 'ClusterIP'",
    ),
    (
        "nodePort not a port",
        SERVICE,
        "    targetPort: 80\n",
        "    targetPort: 80\n    nodePort: 70000\n  type: NodePort\n",
        "bad.yaml:12: Service default/wp-service: spec.ports[0].nodePort: 70000 is not a valid port (1-65535)",
    ),
    (
        "unsupported Service type",
        SERVICE,
        "spec:\n",
        "spec:\n  type: Internal\n",
        "bad.yaml:7: Service default/wp-service: spec.type: \"Internal\" is not a supported type (ClusterIP, NodePort, LoadBalancer or ExternalName)",
    ),
    (
        "clusterIP not an address",
        SERVICE,
        "clusterIP: 10.10.1.102",
        "clusterIP: 10.10.1.300",
        "bad.yaml:7: Service default/wp-service: spec.clusterIP: \"10.10.1.300\" is not a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)",
    ),
    (
        "clusterIPs[0] differs from clusterIP",
        SERVICE,
        "  ports:\n",
        "  clusterIPs:\n  - 10.10.1.103\n  ports:\n",
        "bad.yaml:9: Service default/wp-service: spec.clusterIPs[0]: \"10.10.1.103\" must match spec.clusterIP \"10.10.1.102\"",
    ),
    (
        "clusterIP of a family not listed",
        SERVICE,
        "  ports:\n",
        "  ipFamilies:\n  - IPv6\n  ports:\n",
        "bad.yaml:7: Service default/wp-service: spec.clusterIP: \"10.10.1.102\" is an IPv4 address but spec.ipFamilies[0] is IPv6",
    ),
    (
        "two clusterIPs of one family",
        SERVICE,
        "  clusterIP: 10.10.1.102\n",
        "  clusterIP: 10.10.1.102\n  clusterIPs:\n  - 10.10.1.102\n  - 10.10.1.103\n",
        "bad.yaml:10: Service default/wp-service: spec.clusterIPs[1]: \"10.10.1.103\" is a second IPv4 address; a Service has at most one per family",
    ),
    (
        "unknown IP family",
        SERVICE,
        "  ports:\n",
        "  ipFamilies:\n  - IPv5\n  ports:\n",
        "bad.yaml:9: Service default/wp-service: spec.ipFamilies[0]: \"IPv5\" is not a supported IP family (IPv4 or IPv6)",
    ),
    (
        "loopback externalIP",
        SERVICE,
        "  ports:\n",
        "  externalIPs:\n  - 127.0.0.1\n  ports:\n",
        "bad.yaml:9: Service default/wp-service: spec.externalIPs[0]: \"127.0.0.1\" may not be in the loopback range (127.0.0.0/8, ::1/128)",
    ),
    (
        "externalIP not an address",
        SERVICE,
        "  ports:\n",
        "  externalIPs:\n  - lb.example.com\n  ports:\n",
        "bad.yaml:9: Service default/wp-service: spec.externalIPs[0]: \"lb.example.com\" is not a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)",
    ),
    (
        "source range not a CIDR",
        SERVICE,
        "  ports:\n",
        "  type: LoadBalancer\n  loadBalancerSourceRanges:\n  - 10.0.0.0/33\n  ports:\n",
        "bad.yaml:10: Service default/wp-service: spec.loadBalancerSourceRanges[0]: \"10.0.0.0/33\" is not a valid CIDR (e.g. 10.9.8.0/24 or 2001:db8::/64)",
    ),
    (
        "source ranges on a ClusterIP Service",
        SERVICE,
        "  ports:\n",
        "  loadBalancerSourceRanges:\n  - 10.0.0.0/8\n  ports:\n",
        "bad.yaml:8: Service default/wp-service: spec.loadBalancerSourceRanges: may only be used when `type` is 'LoadBalancer'",
    ),
    (
        "unknown externalTrafficPolicy",
        SERVICE,
        "  ports:\n",
        "  type: NodePort\n  externalTrafficPolicy: Locale\n  ports:\n",
        "bad.yaml:9: Service default/wp-service: spec.externalTrafficPolicy: \"Locale\" is not a supported policy (Cluster or Local)",
    ),
    (
        "externalTrafficPolicy Local on an internal Service",
        SERVICE,
        "  ports:\n",
        "  externalTrafficPolicy: Local\n  ports:\n",
        "bad.yaml:8: Service default/wp-service: spec.externalTrafficPolicy: may only be set for externally-accessible Services (NodePort, LoadBalancer or with externalIPs)",
    ),
    (
        "unknown internalTrafficPolicy",
        SERVICE,
        "  ports:\n",
        "  internalTrafficPolicy: Node\n  ports:\n",
        "bad.yaml:8: Service default/wp-service: spec.internalTrafficPolicy: \"Node\" is not a supported policy (Cluster or Local)",
    ),
    (
        "unknown sessionAffinity",
        SERVICE,
        "  ports:\n",
        "  sessionAffinity: Sticky\n  ports:\n",
        "bad.yaml:8: Service default/wp-service: spec.sessionAffinity: \"Sticky\" is not a supported value (None or ClientIP)",
    ),
    (
        "affinity timeout too long",
        SERVICE,
        "  ports:\n",
        "  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 86401\n  ports:\n",
        "bad.yaml:11: Service default/wp-service: spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is not a valid timeout (1-86400 seconds)",
    ),
    (
        "affinity config without affinity",
        SERVICE,
        "  ports:\n",
        "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 60\n  ports:\n",
        "bad.yaml:8: Service default/wp-service: spec.sessionAffinityConfig: must not be set when `sessionAffinity` is None",
    ),
    (
        "Service name not a DNS-1035 label",
        SERVICE,
        "name: wp-service",
        "name: 1wp",
        "bad.yaml:4: Service default/1wp: metadata.name: \"1wp\" is not a valid name (a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, at most 63 characters)",
    ),
    (
        "Service without ports",
        SERVICE,
        "  ports:\n  - name: http\n    port: 8080\n    targetPort: 80\n",
        "",
        "bad.yaml:6: Service default/wp-service: spec.ports: required: at least one port",
    ),
    (
        "load-balancer ingress ipMode",
        SERVICE,
        "    targetPort: 80\n",
        "    targetPort: 80\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 192.168.0.10\n      ipMode: Direct\n",
        "bad.yaml:16: Service default/wp-service: status.loadBalancer.ingress[0].ipMode: \"Direct\" is not a supported value (VIP or Proxy)",
    ),
    (
        "slice address type",
        SLICE,
        "addressType: IPv4",
        "addressType: IPv7",
        "bad.yaml:8: EndpointSlice default/wp-service-abc12: addressType: \"IPv7\" is not a supported address type (IPv4, IPv6 or FQDN)",
    ),
    (
        "slice address of the other family",
        SLICE,
        "  - 10.10.0.102",
        "  - fd00::102",
        "bad.yaml:14: EndpointSlice default/wp-service-abc12: endpoints[0].addresses[0]: \"fd00::102\" is not a valid IPv4 address (addressType is IPv4)",
    ),
    (
        "slice endpoint without addresses",
        SLICE,
        "- addresses:\n  - 10.10.0.102\n",
        "- addresses: []\n",
        "bad.yaml:13: EndpointSlice default/wp-service-abc12: endpoints[0].addresses: required: at least one address",
    ),
    (
        "slice service-name label",
        SLICE,
        "service-name: wp-service",
        "service-name: -wp-",
        "bad.yaml:7: EndpointSlice default/wp-service-abc12: metadata.labels[kubernetes.io/service-name]: \"-wp-\" is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
    ),
    (
        "slice port",
        SLICE,
        "  port: 80",
        "  port: 65536",
        "bad.yaml:11: EndpointSlice default/wp-service-abc12: ports[0].port: 65536 is not a valid port (1-65535)",
    ),
    (
        "slice protocol",
        SLICE,
        "  port: 80\n",
        "  port: 80\n  protocol: tcp\n",
        "bad.yaml:12: EndpointSlice default/wp-service-abc12: ports[0].protocol: \"tcp\" is not a supported protocol (TCP, UDP or SCTP)",
    ),
    (
        "slice nodeName",
        SLICE,
        "nodeName: nodoa",
        "nodeName: Nodo_A",
        "bad.yaml:15: EndpointSlice default/wp-service-abc12: endpoints[0].nodeName: \"Nodo_A\" is not a valid node name (a DNS-1123 subdomain)",
    ),
    (
        "slice of an old API version",
        SLICE,
        "discovery.k8s.io/v1",
        "discovery.k8s.io/v1beta1",
        "bad.yaml:1: EndpointSlice default/wp-service-abc12: apiVersion: \"discovery.k8s.io/v1beta1\" is not supported for EndpointSlice (expected discovery.k8s.io/v1)",
    ),
    (
        "node address",
        NODE,
        "address: 192.168.0.101",
        "address: 192.168.0",
        "bad.yaml:8: Node nodoa: status.addresses[0].address: \"192.168.0\" is not a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)",
    ),
    (
        "node address type",
        NODE,
        "type: InternalIP",
        "type: PrivateIP",
        "bad.yaml:7: Node nodoa: status.addresses[0].type: \"PrivateIP\" is not a supported address type (Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS)",
    ),
    (
        "proxy mode",
        PROXY,
        "mode: nftables",
        "mode: ipvs",
        "bad.yaml:3: KubeProxyConfiguration: mode: \"ipvs\" is not supported by kubenat (iptables or nftables)",
    ),
    (
        "proxy clusterCIDR",
        PROXY,
        "clusterCIDR: 10.10.0.0/16",
        "clusterCIDR: 10.10.0.0/16,10.20.0.0/16",
        "bad.yaml:4: KubeProxyConfiguration: clusterCIDR: \"10.10.0.0/16,10.20.0.0/16\" must be one CIDR, or two of different IP families (dual-stack)",
    ),
    (
        "proxy nodePortAddresses",
        PROXY,
        "nodePortAddresses: null",
        "nodePortAddresses:\n- primary\n- 192.168.0.0/24",
        "bad.yaml:6: KubeProxyConfiguration: nodePortAddresses[0]: \"primary\" must be the only entry",
    ),
    (
        "proxy conntrack duration",
        PROXY,
        "24h0m0s",
        "86400",
        "bad.yaml:7: KubeProxyConfiguration: conntrack.tcpEstablishedTimeout: invalid type: integer `86400`, expected a string",
    ),
    (
        "proxy conntrack maxPerCore past 32-bit",
        PROXY,
        "  tcpEstablishedTimeout: 24h0m0s",
        "  maxPerCore: 1000000000",
        "bad.yaml:7: KubeProxyConfiguration: conntrack.maxPerCore: 1000000000 per core x 8 CPUs = 8000000000 connections is more than a conntrack table can track (2147483646)",
    ),
    (
        "proxy conntrack min past 32-bit",
        PROXY,
        "  tcpEstablishedTimeout: 24h0m0s",
        "  min: 3000000000",
        "bad.yaml:7: KubeProxyConfiguration: conntrack.min: 3000000000 connections is more than a conntrack table can track (2147483646)",
    ),
    (
        "proxy conntrack duration text",
        PROXY,
        "24h0m0s",
        "one day",
        "bad.yaml:7: KubeProxyConfiguration: conntrack.tcpEstablishedTimeout: \"one day\" is not a valid duration (a Go duration such as \"24h0m0s\" or \"90s\")",
    ),
    (
        "NodePort Service headless",
        SERVICE,
        "  clusterIP: 10.10.1.102\n",
        "  clusterIP: None\n  type: NodePort\n",
        "bad.yaml:7: Service default/wp-service: spec.clusterIP: may not be set to 'None' for NodePort services (only a ClusterIP Service can be headless)",
    ),
    (
        "LoadBalancer Service headless, by clusterIPs",
        SERVICE,
        "  clusterIP: 10.10.1.102\n",
        "  clusterIPs: [None]\n  type: LoadBalancer\n",
        "bad.yaml:7: Service default/wp-service: spec.clusterIPs[0]: may not be set to 'None' for LoadBalancer services (only a ClusterIP Service can be headless)",
    ),
    (
        "ExternalName Service port out of range",
        SERVICE,
        "  clusterIP: 10.10.1.102\n  ports:\n  - name: http\n    port: 8080\n",
        "  type: ExternalName\n  externalName: db.example.com\n  ports:\n  - name: http\n    port: 99999999\n",
        "bad.yaml:11: Service default/wp-service: spec.ports[0].port: 99999999 is not a valid port (1-65535)",
    ),
    (
        "ExternalName Service invalid name",
        SERVICE,
        "  clusterIP: 10.10.1.102\n",
        "  type: ExternalName\n  externalName: DB_Server.example.com\n",
        "bad.yaml:8: Service default/wp-service: spec.externalName: \"DB_Server.example.com\" is not a valid DNS name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each label starting and ending with a letter or digit, at most 253 characters)",
    ),
    (
        "ExternalName Service without a name",
        SERVICE,
        "  clusterIP: 10.10.1.102\n",
        "  type: ExternalName\n",
        "bad.yaml:6: Service default/wp-service: spec.externalName: required for ExternalName services",
    ),
    (
        "ExternalName Service with a cluster IP",
        SERVICE,
        "  clusterIP: 10.10.1.102\n",
        "  type: ExternalName\n  externalName: db.example.com.\n  clusterIP: 10.10.1.102\n",
        "bad.yaml:9: Service default/wp-service: spec.clusterIP: may not be set for ExternalName services",
    ),
    (
        "object without apiVersion",
        SERVICE,
        "apiVersion: v1\n",
        "",
        "bad.yaml:1: Service default/wp-service: apiVersion: required (e.g. v1)",
    ),
    (
        "document that is not an object",
        SERVICE,
        SERVICE,
        "- just\n- a list\n",
        "bad.yaml:1: expected a Kubernetes object (a mapping with apiVersion and kind), found a list",
    ),
    (
        "not YAML",
        SERVICE,
        "  ports:\n",
        "  ports: [\n",
        // The parser's own words; the line is where it gave up (the end of the input).
        "",
    ),
];

#[test]
fn each_kind_of_bad_manifest_gets_its_exact_message() {
    let mut failures = Vec::new();
    for &(name, base, from, to, expected) in ROWS {
        assert!(
            base.contains(from),
            "row {name}: the base contains {from:?}"
        );
        let text = base.replacen(from, to, 1);
        let errors = match parse_str("bad.yaml", &text) {
            Ok(_) => {
                failures.push(format!("{name}: accepted"));
                continue;
            }
            Err(errors) => errors,
        };
        let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        if expected.is_empty() {
            // Syntax errors: one diagnostic, with a line, naming no object.
            let ok = errors.len() == 1
                && errors[0].line.is_some()
                && errors[0].object.is_none()
                && messages[0].starts_with("bad.yaml:")
                && messages[0].contains("not valid YAML or JSON");
            if !ok {
                failures.push(format!("{name}: {messages:?}"));
            }
        } else if messages != [expected] {
            failures.push(format!("{name}:\n  want {expected}\n  got  {messages:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_valid_bases_are_accepted() {
    for base in [SERVICE, SLICE, NODE, PROXY] {
        let manifests = parse_str("ok.yaml", base).expect("valid");
        assert!(manifests.warnings.is_empty(), "{:?}", manifests.warnings);
    }
}

#[test]
fn all_errors_of_a_file_come_together() {
    let text = format!(
        "{}---\n{}",
        SERVICE
            .replace("port: 8080", "port: 70000")
            .replace("targetPort: 80", "targetPort: 0x10000"),
        NODE.replace("192.168.0.101", "192.168.0.1011")
    );
    let errors = parse_str("all.yaml", &text).expect_err("three errors");
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        [
            "all.yaml:10: Service default/wp-service: spec.ports[0].port: 70000 is not a valid port (1-65535)",
            "all.yaml:11: Service default/wp-service: spec.ports[0].targetPort: 65536 is not a valid port (1-65535)",
            "all.yaml:20: Node nodoa: status.addresses[0].address: \"192.168.0.1011\" is not a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ]
    );
}

#[test]
fn errors_of_every_file_come_together() {
    let dir = std::env::temp_dir().join(format!("kubenat-k8s-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a = dir.join("a.yaml");
    let b = dir.join("b.yaml");
    std::fs::write(&a, SERVICE.replace("port: 8080", "port: 70000")).expect("write");
    std::fs::write(&b, SLICE.replace("addressType: IPv4", "addressType: IPv7")).expect("write");
    let errors = kubenat_k8s::load(&[&a, &b, &dir.join("missing.yaml")]).expect_err("errors");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0].file, a.display().to_string());
    assert_eq!(errors[0].line, Some(10));
    assert_eq!(errors[1].file, b.display().to_string());
    assert_eq!(errors[1].line, Some(8));
    assert!(
        errors[2].message.starts_with("cannot read"),
        "{}",
        errors[2]
    );
}

#[test]
fn node_ports_outside_the_default_range_warn() {
    let text = SERVICE.replace(
        "    targetPort: 80\n",
        "    targetPort: 80\n    nodePort: 8080\n  type: NodePort\n",
    );
    let manifests = parse_str("np.yaml", &text).expect("accepted");
    let warnings: Vec<String> = manifests.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "np.yaml:12: Service default/wp-service: spec.ports[0].nodePort: 8080 is outside the default NodePort range 30000-32767 (fine if the API server's --service-node-port-range allows it)"
        ]
    );
    assert_eq!(manifests.services[0].ports[0].node_port, Some(8080));
}

/// Legacy v1 Endpoints with more addresses in a subset than the EndpointSlice mirroring
/// controller mirrors (1,000, ready ones first): what it mirrors, and a warning naming the
/// subset, as its `TooManyAddressesToMirror` event does.
#[test]
fn legacy_endpoints_past_1000_addresses_per_subset_are_cut_as_mirroring_does() {
    let ips = |n: usize, third: usize| -> String {
        (0..n)
            .map(|i| format!("  - ip: 10.{}.{}.{}\n", 20 + third, i / 250, i % 250 + 1))
            .collect()
    };
    // (ready, not ready, in the subset) -> (ready mirrored, not ready mirrored, warning)
    let rows: &[(usize, usize, usize, usize, Option<&str>)] = &[
        (1000, 0, 1000, 0, None),
        (5000, 0, 1000, 0, Some("5000 addresses")),
        (400, 700, 400, 600, Some("1100 addresses")),
        (0, 1001, 0, 1000, Some("1001 addresses")),
    ];
    for &(ready, not_ready, want_ready, want_not_ready, warning) in rows {
        let mut text = String::from(
            "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: legacy\n  namespace: default\nsubsets:\n- ports:\n  - port: 80\n",
        );
        if ready > 0 {
            text += &format!("  addresses:\n{}", ips(ready, 0));
        }
        if not_ready > 0 {
            text += &format!("  notReadyAddresses:\n{}", ips(not_ready, 1));
        }
        // A second subset under the cap: mirrored whole.
        text += &format!("- ports:\n  - port: 81\n  addresses:\n{}", ips(3, 2));
        let row = format!("{ready} ready, {not_ready} not ready");
        let manifests = parse_str("eps.yaml", &text).expect(&row);
        let slices = &manifests.legacy_endpoints;
        assert_eq!(slices.len(), 2, "{row}");
        let count = |ready: bool| {
            slices[0]
                .endpoints
                .iter()
                .filter(|e| e.conditions.ready == ready)
                .count()
        };
        assert_eq!(
            (count(true), count(false)),
            (want_ready, want_not_ready),
            "{row}"
        );
        assert_eq!(slices[1].endpoints.len(), 3, "{row}");
        let warnings: Vec<String> = manifests.warnings.iter().map(|w| w.to_string()).collect();
        match warning {
            None => assert!(warnings.is_empty(), "{row}: {warnings:?}"),
            Some(total) => {
                let skipped = ready + not_ready - 1000;
                assert_eq!(
                    warnings,
                    [format!(
                        "eps.yaml:7: Endpoints default/legacy: subsets[0]: {total}: the EndpointSlice mirroring controller mirrors at most 1000 per subset (ready ones first); {skipped} skipped"
                    )],
                    "{row}"
                );
            }
        }
    }
}
