//! Scenario files read, and bad ones reported: file, line, field and message, every
//! problem at once.

use std::path::PathBuf;

use super::*;

#[test]
fn durations() {
    for (text, want) in [
        ("200us", Duration::from_micros(200)),
        ("1.5s", Duration::from_millis(1500)),
        ("10ms", Duration::from_millis(10)),
        ("2m", Duration::from_secs(120)),
        ("7ns", Duration::from_nanos(7)),
    ] {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
    for bad in ["10", "ms", "1h", "1..2s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn urls() {
    assert_eq!(
        parse_url("http://web1.miempresa.com/"),
        Ok(("web1.miempresa.com".into(), 80, "/".into()))
    );
    assert_eq!(
        parse_url("http://a.b:8080/x/y"),
        Ok(("a.b".into(), 8080, "/x/y".into()))
    );
    assert_eq!(parse_url("http://a.b"), Ok(("a.b".into(), 80, "/".into())));
    assert!(parse_url("https://a.b/").is_err());
    assert!(parse_url("http://:80/").is_err());
}

#[test]
fn db_hosts() {
    assert_eq!(
        db_host("mariadb-service:3307"),
        Ok(DbHost::Name("mariadb-service".into(), 3307))
    );
    assert_eq!(
        db_host("10.10.0.103:3306"),
        Ok(DbHost::Address("10.10.0.103:3306".parse().unwrap()))
    );
    assert!(db_host("mariadb-service").is_err());
}

/// A small scenario whose line numbers the table below counts on.
const GOOD: &str = "\
name: t
manifests: [cluster.yaml, kube-proxy.yaml]
network: {lan: 192.168.0.0/16, podNetwork: 10.10.0.0/16}
machines:
  - name: PC
    ip: 192.168.0.200
    browser: {dns: 192.168.0.53, url: \"http://web1.miempresa.com/\", requests: 4}
pods:
  - {name: coredns-0, namespace: kube-system, ip: 10.10.0.10, node: nodo1, clusterDns: {}}
  - name: mariadb-0
    ip: 10.10.0.103
    node: nodoc
    mariadb: {port: 3306, blogname: Mi Empresa}
events:
  - {at: 1s, killPod: mariadb-0}
timeLimit: 120s
";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/miempresa")
}

#[test]
fn the_table_scenario_reads() {
    let scenario = from_yaml_str(GOOD, "t.yaml", &examples(), "t").unwrap();
    assert_eq!((scenario.machines.len(), scenario.pods.len()), (1, 2));
    assert_eq!(scenario.events.len(), 1);
    let rollout = GOOD.replace("killPod: mariadb-0", "rollout: default/mariadb");
    let scenario = from_yaml_str(&rollout, "t.yaml", &examples(), "t").unwrap();
    let deployment = ServiceName::new("default", "mariadb");
    assert_eq!(scenario.events[0].action, Action::Rollout { deployment });
    for (replicas, want) in [("3", 3), ("0", 0)] {
        let scale = format!("scale: default/mariadb, replicas: {replicas}");
        let text = GOOD.replace("killPod: mariadb-0", &scale);
        let scenario = from_yaml_str(&text, "t.yaml", &examples(), "t").unwrap();
        let deployment = ServiceName::new("default", "mariadb");
        let action = Action::Scale {
            deployment,
            replicas: want,
        };
        assert_eq!(scenario.events[0].action, action, "{replicas}");
    }
}

/// Each row: what to change in [`GOOD`], and every problem then reported, in order.
#[test]
fn bad_files_name_file_line_and_field() {
    let unknown_top = "unknown field; expected one of name, seed, manifests, network, cluster, \
                       controlPlane, machines, pods, events, timeLimit";
    let pod_fields = "unknown field; expected one of name, namespace, ip, node, clusterDns, \
                      ingressController, wordpress, mariadb";
    let rows: &[(&str, &str, &str, &[&str])] = &[
        (
            "unknown field",
            "timeLimit: 120s",
            "timeLimit: 120s\nspeed: 3",
            &[&format!("t.yaml:17: speed: {unknown_top}")],
        ),
        (
            "unknown nested field",
            "node: nodoc",
            "nod: nodoc",
            &[
                &format!("t.yaml:12: pods[1].nod: {pod_fields}"),
                "t.yaml:10: pods[1].node: missing: expected the name of a node",
            ],
        ),
        (
            "bad address",
            "ip: 10.10.0.103",
            "ip: 10.10.0.300",
            &["t.yaml:11: pods[1].ip: \"10.10.0.300\" is not an IPv4 address"],
        ),
        (
            "bad duration",
            "timeLimit: 120s",
            "timeLimit: 120",
            &["t.yaml:16: timeLimit: duration \"120\" has no unit (ns, us, ms, s, m)"],
        ),
        (
            "bad network",
            "podNetwork: 10.10.0.0/16",
            "podNetwork: 10.10.0.0/33",
            &[
                "t.yaml:3: network.podNetwork: \"10.10.0.0/33\" is not an IPv4 network (such as 10.10.0.0/16)",
            ],
        ),
        (
            "port out of range",
            "port: 3306",
            "port: 70000",
            &["t.yaml:13: pods[1].mariadb.port: expected a port (0-65535), found the number 70000"],
        ),
        (
            "a string for a number",
            "requests: 4",
            "requests: four",
            &["t.yaml:7: machines[0].browser.requests: expected a whole number, found \"four\""],
        ),
        (
            "a string for a list",
            "manifests: [cluster.yaml, kube-proxy.yaml]",
            "manifests: cluster.yaml",
            &["t.yaml:2: manifests: expected a list, found \"cluster.yaml\""],
        ),
        (
            "a list for a string",
            "name: t",
            "name: [t]",
            &["t.yaml:1: name: expected a string, found a list"],
        ),
        (
            "a number for a mapping",
            "network: {lan: 192.168.0.0/16, podNetwork: 10.10.0.0/16}",
            "network: 16",
            &["t.yaml:3: network: expected a mapping, found the number 16"],
        ),
        (
            "missing field",
            "    ip: 10.10.0.103\n",
            "",
            &["t.yaml:10: pods[1].ip: missing: expected an IPv4 address"],
        ),
        (
            "two applications",
            "clusterDns: {}",
            "clusterDns: {}, mariadb: {port: 1, blogname: x}",
            &["t.yaml:9: pods[0]: more than one application given: clusterDns, mariadb"],
        ),
        (
            "no action",
            "killPod: mariadb-0",
            "kill: mariadb-0",
            &[
                "t.yaml:15: events[0].kill: unknown field; expected one of at, killPod, drainNode, \
                 rollout, scale, replicas",
                "t.yaml:15: events[0]: no action given; expected one of killPod, drainNode, rollout, \
                 scale",
            ],
        ),
        (
            "no such Deployment",
            "killPod: mariadb-0",
            "rollout: default/wordpress",
            &[
                "t.yaml:15: events[0].rollout: no pod of Deployment default/wordpress in the scenario",
            ],
        ),
        (
            "a Deployment without its namespace",
            "killPod: mariadb-0",
            "rollout: mariadb",
            &["t.yaml:15: events[0].rollout: \"mariadb\": expected namespace/name"],
        ),
        (
            "a scale of no such Deployment",
            "killPod: mariadb-0",
            "scale: default/wordpress, replicas: 2",
            &["t.yaml:15: events[0].scale: no pod of Deployment default/wordpress in the scenario"],
        ),
        (
            "a scale without its namespace",
            "killPod: mariadb-0",
            "scale: mariadb, replicas: 2",
            &["t.yaml:15: events[0].scale: \"mariadb\": expected namespace/name"],
        ),
        (
            "a scale without replicas",
            "killPod: mariadb-0",
            "scale: default/mariadb",
            &["t.yaml:15: events[0].replicas: missing: expected a number of pods"],
        ),
        (
            "negative replicas",
            "killPod: mariadb-0",
            "scale: default/mariadb, replicas: -1",
            &[
                "t.yaml:15: events[0].replicas: expected a number of pods (0 or more), found the \
                 number -1",
            ],
        ),
        (
            "replicas that are not a number",
            "killPod: mariadb-0",
            "scale: default/mariadb, replicas: four",
            &[
                "t.yaml:15: events[0].replicas: expected a number of pods (0 or more), found \
                 \"four\"",
            ],
        ),
        (
            "a scale and another action",
            "killPod: mariadb-0",
            "killPod: mariadb-0, scale: default/mariadb, replicas: 2",
            &["t.yaml:15: events[0]: more than one action given: killPod, scale"],
        ),
        (
            "replicas for another action",
            "killPod: mariadb-0",
            "killPod: mariadb-0, replicas: 2",
            &["t.yaml:15: events[0].replicas: only a scale takes replicas"],
        ),
        (
            "a bad time and bad replicas, both reported",
            "{at: 1s, killPod: mariadb-0}",
            "{at: 1, scale: default/mariadb, replicas: x}",
            &[
                "t.yaml:15: events[0].at: duration \"1\" has no unit (ns, us, ms, s, m)",
                "t.yaml:15: events[0].replicas: expected a number of pods (0 or more), found \"x\"",
            ],
        ),
        (
            "unknown pod",
            "killPod: mariadb-0",
            "killPod: mariadb-9",
            &["t.yaml:15: events[0].killPod: no pod mariadb-9 in the scenario"],
        ),
        (
            "unknown node",
            "node: nodoc",
            "node: nodoz",
            &["t.yaml:12: pods[1].node: no node nodoz in the manifests"],
        ),
        (
            "a bad record",
            "pods:\n",
            "  - name: dns\n    ip: 192.168.0.53\n    \
             dns: {records: {web1.miempresa.com: 192.168.0.1000}}\npods:\n",
            &[
                "t.yaml:10: machines[1].dns.records[web1.miempresa.com]: \"192.168.0.1000\" is not an IPv4 address",
            ],
        ),
        (
            "fields where none are",
            "clusterDns: {}",
            "clusterDns: {port: 53}",
            &["t.yaml:9: pods[0].clusterDns.port: unknown field; expected none"],
        ),
        (
            "a negative number",
            "requests: 4",
            "requests: -4",
            &[
                "t.yaml:7: machines[0].browser.requests: expected a whole number, found the number -4",
            ],
        ),
    ];
    for (name, from, to, want) in rows {
        assert!(GOOD.contains(from), "{name}: {from:?} is not in the file");
        let text = GOOD.replacen(from, to, 1);
        let error = from_yaml_str(&text, "t.yaml", &examples(), "t")
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        let got: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
        assert_eq!(got, *want, "{name}");
        assert_eq!(error.to_string(), want.join("\n"), "{name}");
    }
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let text = GOOD
        .replace("requests: 4", "requests: four")
        .replace("ip: 10.10.0.103", "ip: 10.10.0.300")
        .replace("node: nodo1", "node: nodo9")
        .replace("timeLimit: 120s", "timeLimit: 2h");
    let error = from_yaml_str(&text, "t.yaml", &examples(), "t").unwrap_err();
    let got: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "t.yaml:7: machines[0].browser.requests: expected a whole number, found \"four\"",
            "t.yaml:11: pods[1].ip: \"10.10.0.300\" is not an IPv4 address",
            "t.yaml:16: timeLimit: duration \"2h\": unknown unit \"h\"",
            "t.yaml:9: pods[0].node: no node nodo9 in the manifests",
        ]
    );
}

#[test]
fn syntax_errors_and_missing_files_say_where() {
    let broken = GOOD.replace("pods:\n", "pods: [\n");
    let error = from_yaml_str(&broken, "t.yaml", &examples(), "t").unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    assert!(error.to_string().starts_with("t.yaml:"), "{error}");
    assert!(error.problems[0].line.is_some(), "{error}");

    let missing = GOOD.replace("kube-proxy.yaml]", "nope.yaml]");
    let error = from_yaml_str(&missing, "t.yaml", &examples(), "t").unwrap_err();
    let nope = examples().join("nope.yaml");
    let want = format!("t.yaml:2: manifests[1]: {}: ", nope.display());
    assert!(error.to_string().starts_with(&want), "{error}");

    let error = from_yaml_file(Path::new("/nonexistent/scenario.yaml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/scenario.yaml: "),
        "{error}"
    );
}

/// A problem in a manifest the scenario names is that manifest's diagnostic.
#[test]
fn manifest_problems_are_the_importers() {
    let dir = std::env::temp_dir().join(format!("kubenat-sim-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\n\
               spec: {clusterIP: 10.96.0.5, ports: [{port: 70000}]}\n";
    std::fs::write(dir.join("bad.yaml"), bad).unwrap();
    let text = GOOD.replace("[cluster.yaml, kube-proxy.yaml]", "[bad.yaml]");
    let error = from_yaml_str(&text, "t.yaml", &dir, "t").unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let first = error.problems[0].to_string();
    assert!(
        first.contains("bad.yaml:4: Service default/s: spec.ports[0].port"),
        "{error}"
    );
}
