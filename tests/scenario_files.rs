//! Scenario files: `examples/miempresa/scenario.yaml` is `Scenario::notes` written out,
//! the failover files are the notes plus a failure; same seed, byte-identical report and
//! captures.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kubenat_sim::apps::wordpress::DbHost;
use kubenat_sim::scenario::{LanApp, PodApp};
use kubenat_sim::{Action, Scenario, TimedEvent, run, simulate};

#[test]
fn scenario_yaml_is_the_notes() {
    let file = kubenat_e2e::scenario("scenario.yaml");
    let notes = Scenario::notes(4);
    let (a, b) = (run(&file), run(&notes));
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.summary.succeeded, 4);
    // Also with the CLI's overrides.
    let (a, b) = (
        run(&file.with_requests(3).with_seed(42)),
        run(&notes.with_requests(3).with_seed(42)),
    );
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.summary.requests, 3);
}

/// failover.yaml is the notes with 60 requests 100 ms apart and MariaDB killed at 1 s.
fn notes_with_failure() -> Scenario {
    let mut s = Scenario::notes(60);
    for m in &mut s.machines {
        if let LanApp::Browser { browse, .. } = &mut m.app {
            browse.gap = Duration::from_millis(100);
        }
    }
    s.name = "notes: MariaDB rescheduled".into();
    s.with_event(
        Duration::from_secs(1),
        Action::KillPod {
            pod: "mariadb-0".into(),
        },
    )
}

#[test]
fn the_failover_files_are_the_notes_with_a_failure() {
    let file = kubenat_e2e::scenario("failover.yaml");
    assert_eq!(
        file.events,
        vec![TimedEvent {
            at: Duration::from_secs(1),
            action: Action::KillPod {
                pod: "mariadb-0".into()
            }
        }]
    );
    assert_eq!(run(&file).to_json(), run(&notes_with_failure()).to_json());

    let pod_ip = kubenat_e2e::scenario("failover-pod-ip.yaml");
    let dbs: Vec<(&str, &DbHost)> = pod_ip
        .pods
        .iter()
        .filter_map(|p| match &p.app {
            PodApp::WordPress { db } => Some((p.name.as_str(), db)),
            _ => None,
        })
        .collect();
    let address: SocketAddr = "10.10.0.103:3306".parse().unwrap();
    assert_eq!(
        dbs,
        vec![
            ("wordpress-5d8f7c9b6-abcde", &DbHost::Address(address)),
            (
                "wordpress-5d8f7c9b6-fghij",
                &DbHost::Name("mariadb-service".into(), 3307)
            ),
        ]
    );
    assert_eq!(pod_ip.events, file.events);
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let scenario = notes_with_failure().with_requests(15);
    let run = |seed: u64, dir: &str| {
        let dir = kubenat_e2e::scratch_dir!(dir);
        simulate(&scenario.clone().with_seed(seed), Some(&dir)).unwrap()
    };
    let a = run(1, "same-seed-a");
    let b = run(1, "same-seed-b");
    assert_eq!(a.report.to_string(), b.report.to_string());
    assert_eq!(a.report.to_json(), b.report.to_json());
    assert_eq!(a.captures.len(), b.captures.len());
    for (x, y) in a.captures.iter().zip(&b.captures) {
        assert_eq!(x.name, y.name);
        assert_ne!(x.path, y.path);
        assert!(
            kubenat_e2e::capture_bytes(x) == kubenat_e2e::capture_bytes(y),
            "{} differs",
            x.name
        );
    }
    // The seed matters: another one picks other ports, so other bytes.
    let c = run(2, "same-seed-c");
    assert_ne!(a.report.to_json(), c.report.to_json());
    assert_ne!(
        kubenat_e2e::capture_bytes(&a.captures[0]),
        kubenat_e2e::capture_bytes(&c.captures[0])
    );
}

#[test]
fn bad_files_say_what_is_wrong() {
    let base = kubenat_e2e::example("scenario.yaml");
    let base = base.parent().unwrap();
    let good = std::fs::read_to_string(kubenat_e2e::example("scenario.yaml")).unwrap();
    let rows: [(&str, String, &str); 7] = [
        (
            "unknown field",
            good.replace("timeLimit: 120s", "timeLimit: 120s\nspeed: 3"),
            "speed",
        ),
        (
            "bad duration",
            good.replace("timeLimit: 120s", "timeLimit: 120"),
            "timeLimit",
        ),
        (
            "two applications",
            good.replace(
                "    clusterDns: {}",
                "    clusterDns: {}\n    mariadb: {port: 1, blogname: x}",
            ),
            "more than one application",
        ),
        (
            "no application",
            good.replace("    clusterDns: {}", ""),
            "no application",
        ),
        (
            "missing manifest",
            good.replace("  - kube-proxy.yaml", "  - nope.yaml"),
            "nope.yaml",
        ),
        (
            "https url",
            good.replace("http://web1", "https://web1"),
            "http://",
        ),
        (
            "bad event",
            good.replace(
                "timeLimit: 120s",
                "events: [{at: 1s, killPod: a, drainNode: b}]",
            ),
            "more than one action",
        ),
    ];
    for (name, text, want) in rows {
        assert_ne!(text, good, "{name}: the replacement applies");
        let err = kubenat_sim::yaml::from_yaml_str(&text, "t.yaml", base, "t")
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"))
            .to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
    let missing = Scenario::from_yaml_file(Path::new("/nonexistent/scenario.yaml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/nonexistent/scenario.yaml"), "{missing}");
}
