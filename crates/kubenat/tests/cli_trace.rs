//! `kubenat trace`: the JSON contract, the text that explains each hop, errors that name
//! the place, `--dst IP:PORT`, unknown fields in the manifests.

mod common;

use common::{
    EXAMPLE, args_with, assert_exits_saying, kubenat, kubenat_with_stdin, stderr, stdout,
};
use serde_json::Value;

/// (node, proto, src, dst, dport) -> verdict, endpoints it may pick, masquerade, reason,
/// service.
type TraceRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    Option<&'static str>,
    Option<&'static str>,
);

#[rustfmt::skip]
const TRACE_ROWS: &[TraceRow] = &[
    ("nodoa", "tcp", "192.168.0.10", "192.168.0.101", "30880", "translated", &["10.10.0.105:80"], true, None, Some("default/nginx:http")),
    ("nodoc", "tcp", "192.168.0.10:40000", "192.168.0.103", "30880", "translated", &["10.10.0.105:80"], true, None, Some("default/nginx:http")),
    ("nodoa", "tcp", "192.168.0.10", "192.168.0.102", "30880", "accept", &[], false, None, None),
    ("nodob", "tcp", "10.10.0.105:41000", "10.10.1.102", "8080", "translated", &["10.10.0.102:80", "10.10.0.112:80"], false, None, Some("default/wp-service:http")),
    ("nodoa", "tcp", "10.10.0.102", "10.10.1.101", "3307", "translated", &["10.10.0.103:3306"], false, None, Some("default/mariadb-service:mysql")),
    ("nodoa", "tcp", "192.168.0.200", "10.10.1.101", "3307", "translated", &["10.10.0.103:3306"], true, None, Some("default/mariadb-service:mysql")),
    ("nodoa", "tcp", "192.168.0.101", "10.10.1.101", "3307", "translated", &["10.10.0.103:3306"], true, None, Some("default/mariadb-service:mysql")),
    ("nodoa", "udp", "10.10.0.102", "10.10.1.10", "53", "translated", &["10.10.0.10:53"], false, None, Some("kube-system/kube-dns:dns")),
    ("nodoa", "tcp", "10.10.0.102", "10.10.1.101", "3306", "reject", &[], false, Some("port-not-served"), None),
    ("nodoa", "udp", "10.10.0.102", "10.10.1.101", "3307", "reject", &[], false, Some("port-not-served"), None),
    ("nodoa", "tcp", "10.10.0.102", "10.10.1.200", "80", "drop", &[], false, Some("unallocated-service-ip"), None),
    ("nodoa", "tcp", "10.10.0.102", "10.10.0.101", "3306", "accept", &[], false, None, None),
    ("nodoa", "sctp", "10.10.0.102", "10.10.1.101", "3307", "reject", &[], false, Some("port-not-served"), None),
];

#[test]
fn trace_json_contract_on_the_example() {
    for &(node, proto, src, dst, dport, verdict, endpoints, masquerade, reason, service) in
        TRACE_ROWS
    {
        let mut args = vec!["trace"];
        args.extend(EXAMPLE);
        args.extend([
            "--node", node, "--proto", proto, "--src", src, "--dst", dst, "--dport", dport,
            "--output", "json",
        ]);
        let out = kubenat(&args);
        let row = format!("{node} {proto} {src} -> {dst}:{dport}");
        assert!(out.status.success(), "{row}: {}", stderr(&out));
        let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["verdict"], verdict, "{row}");
        match json["endpoint"].as_str() {
            Some(endpoint) => assert!(endpoints.contains(&endpoint), "{row}: endpoint {endpoint}"),
            None => assert!(endpoints.is_empty(), "{row}: no endpoint"),
        }
        assert_eq!(json["masquerade"], masquerade, "{row}");
        assert_eq!(json["reason"].as_str(), reason, "{row}");
        assert_eq!(json["service"].as_str(), service, "{row}");
        let steps = json["steps"].as_array().unwrap();
        assert!(
            !steps.is_empty() && steps.iter().all(Value::is_string),
            "{row}"
        );
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "endpoint",
                "masquerade",
                "reason",
                "service",
                "steps",
                "verdict"
            ]
        );
    }
}

#[test]
fn trace_text_explains_each_hop() {
    let mut args = vec!["trace"];
    args.extend(EXAMPLE);
    args.extend([
        "--node",
        "nodoa",
        "--src",
        "192.168.0.10",
        "--dst",
        "192.168.0.101",
        "--dport",
        "30880",
    ]);
    let text = stdout(&kubenat(&args));
    assert!(
        text.contains("service default/nginx:http matched by its node port"),
        "{text}"
    );
    assert!(
        text.contains("masquerade: external traffic with externalTrafficPolicy Cluster"),
        "{text}"
    );
    assert!(
        text.contains("=> default/nginx:http: sent to endpoint 10.10.0.105:80, source masqueraded"),
        "{text}"
    );
}

#[test]
fn bad_input_exits_1_naming_the_place() {
    let dir = std::env::temp_dir().join(format!("kubenat-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: wp-service\n  namespace: default\nspec:\n  clusterIP: 10.10.1.102\n  ports:\n  - name: http\n    port: 70000\n    targetPort: 80\n",
    )
    .unwrap();
    let out = kubenat(&[
        "trace",
        "--cluster",
        bad.to_str().unwrap(),
        "--node",
        "nodoa",
        "--src",
        "10.10.0.1",
        "--dst",
        "10.10.1.102",
        "--dport",
        "8080",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("bad.yaml:10: Service default/wp-service: spec.ports[0].port: 70000"),
        "{message}"
    );
    let missing = kubenat(&["rules", "--cluster", "no/such/file.yaml", "--node", "nodoa"]);
    assert_exits_saying(&missing, 1, "no/such/file.yaml");
    let mut args = vec!["trace"];
    args.extend(EXAMPLE);
    args.extend([
        "--node",
        "nodoz",
        "--src",
        "10.10.0.1",
        "--dst",
        "10.10.1.102",
        "--dport",
        "8080",
    ]);
    let unknown = kubenat(&args);
    assert_exits_saying(&unknown, 1, "nodoz");
    std::fs::remove_dir_all(dir).unwrap();
}

/// (--src, --dst, --dport) -> exit code, and the endpoint when traced.
type DestinationRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    i32,
    Option<&'static str>,
);

#[rustfmt::skip]
const DESTINATIONS: &[DestinationRow] = &[
    ("10.10.0.102", "10.10.1.101:3307", None, 0, Some("10.10.0.103:3306")),
    ("10.10.0.102", "10.10.1.101", Some("3307"), 0, Some("10.10.0.103:3306")),
    ("10.10.0.102:42000", "10.10.1.101:3306", None, 0, None),
    // The port given twice, or not at all.
    ("10.10.0.102", "10.10.1.101:3307", Some("3307"), 2, None),
    ("10.10.0.102", "10.10.1.101:3307", Some("80"), 2, None),
    ("10.10.0.102", "10.10.1.101", None, 2, None),
    // Not an address, a port out of range, an IPv6 address and port without brackets.
    ("10.10.0.102", "mariadb-service:3307", None, 2, None),
    ("10.10.0.102", "10.10.1.101:99999", None, 2, None),
    ("fd00::5", "fd00::10:80", None, 2, None),
    // IPv6: [addr]:port, or the address and --dport.
    ("fd00::5", "[fd00::10]:80", None, 0, None),
    ("[fd00::5]:4000", "fd00::10", Some("80"), 0, None),
    // Families must match.
    ("fd00::5", "10.10.1.101:3307", None, 2, None),
    ("10.10.0.102", "[fd00::10]:80", None, 2, None),
    // --src keeps its own contract, and a bad one is an argument error too.
    ("x:99999", "10.10.1.101:3307", None, 2, None),
    ("10.10.0.102:70000", "10.10.1.101:3307", None, 2, None),
];

#[test]
fn dst_takes_ip_or_ip_port_and_the_port_once() {
    for &(src, dst, dport, code, endpoint) in DESTINATIONS {
        let mut args = args_with("trace", &["--src", src, "--dst", dst, "-o", "json"]);
        if let Some(dport) = dport {
            args.extend(["--dport", dport]);
        }
        let out = kubenat(&args);
        let row = format!("--src {src} --dst {dst} --dport {dport:?}");
        assert_eq!(out.status.code(), Some(code), "{row}: {}", stderr(&out));
        if code == 0 {
            let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(json["endpoint"].as_str(), endpoint, "{row}");
        } else {
            assert!(out.stdout.is_empty(), "{row}");
            assert!(
                stderr(&out).starts_with("error: "),
                "{row}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn unknown_fields_warn_and_strict_refuses_them() {
    let cluster =
        std::fs::read_to_string(common::repo_root().join("examples/miempresa/cluster.yaml"))
            .unwrap();
    let proxy =
        std::fs::read_to_string(common::repo_root().join("examples/miempresa/kube-proxy.yaml"))
            .unwrap();
    // A KubeProxyConfiguration typo ahead of the real fields, read from standard input.
    let typo = proxy.replacen(
        "kind: KubeProxyConfiguration\n",
        "kind: KubeProxyConfiguration\nmdoe: iptables\n",
        1,
    );
    assert_ne!(typo, proxy, "the example has a KubeProxyConfiguration");
    let line = typo.lines().position(|l| l == "mdoe: iptables").unwrap() + 1;
    let input = format!("{cluster}\n---\n{typo}");
    let line = cluster.lines().count() + 2 + line;
    let args = [
        "trace",
        "--cluster",
        "-",
        "--node",
        "nodoa",
        "--src",
        "10.10.0.102",
        "--dst",
        "10.10.1.101:3307",
    ];
    let lenient = kubenat_with_stdin(&args, input.as_bytes());
    assert_eq!(lenient.status.code(), Some(0), "{}", stderr(&lenient));
    let warning = format!("warning: <stdin>:{line}: KubeProxyConfiguration: unknown field mdoe");
    assert!(stderr(&lenient).contains(&warning), "{}", stderr(&lenient));

    let mut strict_args = args.to_vec();
    strict_args.push("--strict");
    let strict = kubenat_with_stdin(&strict_args, input.as_bytes());
    assert_exits_saying(&strict, 1, "unknown field mdoe");
    assert!(stdout(&strict).is_empty());
}
