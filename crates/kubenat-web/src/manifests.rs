//! Manifests pasted into the page: imported with the CLI's diagnostics, then one packet
//! traced (`kubenat trace`) or a node's tables listed (`kubenat rules`).

use std::net::SocketAddr;

use kubenat_core::{ClusterState, Protocol};
use kubenat_inspect::{probe, report, rules as tables};
use kubenat_k8s::{Diagnostic, Manifests};
use serde::Serialize;
use wasm_bindgen::prelude::wasm_bindgen;

/// The name pasted text has in diagnostics (`manifests.yaml:12: ...`).
const PASTED: &str = "manifests.yaml";

/// A diagnostic as the page shows it: the CLI's line, and its parts for highlighting.
#[derive(Serialize)]
struct Problem {
    text: String,
    line: Option<usize>,
    object: Option<String>,
    field: Option<String>,
    message: String,
}

impl From<&Diagnostic> for Problem {
    fn from(d: &Diagnostic) -> Problem {
        Problem {
            text: d.to_string(),
            line: d.line,
            object: d.object.clone(),
            field: d.field.clone(),
            message: d.message.clone(),
        }
    }
}

/// What [`check`] returns: the errors (nothing usable when there are any), the warnings,
/// and the Nodes whose rules can be traced.
#[derive(Serialize)]
struct Checked {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    nodes: Vec<String>,
}

/// A result for the page: the JSON document and the CLI's text, or the problems.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome<T> {
    Ok { json: T, text: String },
    Errors(Vec<Problem>),
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("our JSON types always serialize")
}

fn problems(diagnostics: &[Diagnostic]) -> Vec<Problem> {
    diagnostics.iter().map(Problem::from).collect()
}

fn one_problem(message: String) -> Vec<Problem> {
    vec![Problem {
        text: message.clone(),
        line: None,
        object: None,
        field: None,
        message,
    }]
}

/// The notes' manifests and kube-proxy configuration, one YAML stream: what the trace
/// form starts with.
#[wasm_bindgen]
pub fn notes_manifests() -> String {
    format!(
        "{}---\n{}",
        kubenat_sim::scenario::NOTES_CLUSTER_YAML,
        kubenat_sim::scenario::NOTES_KUBE_PROXY_YAML
    )
}

/// Imports `text` as `kubenat trace --cluster` does: every error with its line, object
/// and field. Returns [`Checked`] as JSON.
#[wasm_bindgen]
pub fn check(text: &str) -> String {
    let checked = match kubenat_k8s::parse_str(PASTED, text) {
        Ok(manifests) => Checked {
            errors: Vec::new(),
            warnings: problems(&manifests.warnings),
            nodes: manifests.node_names(),
        },
        Err(errors) => Checked {
            errors: problems(&errors),
            warnings: Vec::new(),
            nodes: Vec::new(),
        },
    };
    to_json(&checked)
}

/// `node`'s view of the pasted cluster, or what is wrong with it.
fn state(text: &str, node: &str) -> Result<ClusterState, Vec<Problem>> {
    let manifests: Manifests = kubenat_k8s::parse_str(PASTED, text).map_err(|e| problems(&e))?;
    manifests
        .into_cluster_state(node)
        .map_err(|e| problems(std::slice::from_ref(&e)))
}

/// `kubenat trace --node NODE --proto PROTO --src SRC --dst DST` on the pasted cluster:
/// `src` is `IP` or `IP:PORT` (port 50000 without one), `dst` is `IP:PORT`, `proto` is
/// `tcp`, `udp` or `sctp`. Returns `{"ok": {"json": <trace JSON>, "text": ...}}` or
/// `{"errors": [...]}`.
#[wasm_bindgen]
pub fn trace(text: &str, node: &str, proto: &str, src: &str, dst: &str) -> String {
    to_json(&traced(text, node, proto, src, dst).unwrap_or_else(Outcome::Errors))
}

fn traced(
    text: &str,
    node: &str,
    proto: &str,
    src: &str,
    dst: &str,
) -> Result<Outcome<report::TraceJson>, Vec<Problem>> {
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => return Err(one_problem(format!("protocol {other:?}: tcp, udp or sctp"))),
    };
    let address = |what: &str, text: &str, default_port: Option<u16>| {
        let (ip, port) =
            probe::parse_address(text.trim()).map_err(|e| one_problem(format!("{what}: {e}")))?;
        match port.or(default_port) {
            Some(port) => Ok(SocketAddr::new(ip, port)),
            None => Err(one_problem(format!(
                "{what}: the port is missing (IP:PORT)"
            ))),
        }
    };
    let src = address("source", src, Some(probe::DEFAULT_SOURCE_PORT))?;
    let dst = address("destination", dst, None)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(one_problem(format!(
            "source {src} and destination {dst} are of different address families"
        )));
    }
    let traced = probe::trace(state(text, node)?, protocol, src, dst);
    Ok(Outcome::Ok {
        json: report::json(&traced),
        text: report::text(&traced, node),
    })
}

/// `kubenat rules --node NODE` on the pasted cluster: `{"ok": {"json": <rules JSON>,
/// "text": ...}}` or `{"errors": [...]}`.
#[wasm_bindgen]
pub fn rules(text: &str, node: &str) -> String {
    let outcome = state(text, node).map(|state| {
        let engine = kubenat_core::Engine::from_state(state);
        Outcome::Ok {
            json: tables::json(engine.tables(), node),
            text: tables::text(engine.tables(), node),
        }
    });
    to_json(&outcome.unwrap_or_else(Outcome::Errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_notes_trace_as_the_readme_shows() {
        let out = parsed(&trace(
            &notes_manifests(),
            "nodoa",
            "tcp",
            "10.10.0.102:42000",
            "10.10.1.101:3307",
        ));
        assert_eq!(out["ok"]["json"]["verdict"], "translated", "{out}");
        assert_eq!(out["ok"]["json"]["endpoint"], "10.10.0.103:3306");
        let rejected = parsed(&trace(
            &notes_manifests(),
            "nodoa",
            "tcp",
            "10.10.0.102",
            "10.10.1.101:3306",
        ));
        assert_eq!(rejected["ok"]["json"]["reason"], "port-not-served");
        assert!(
            rejected["ok"]["text"]
                .as_str()
                .unwrap()
                .contains("10.10.0.102:50000")
        );
    }

    #[test]
    fn bad_input_comes_back_as_problems() {
        for (node, proto, src, dst, says) in [
            (
                "nodoz",
                "tcp",
                "10.10.0.102",
                "10.10.1.101:3307",
                "known nodes",
            ),
            (
                "nodoa",
                "icmp",
                "10.10.0.102",
                "10.10.1.101:3307",
                "tcp, udp or sctp",
            ),
            (
                "nodoa",
                "tcp",
                "10.10.0.102",
                "10.10.1.101",
                "port is missing",
            ),
            (
                "nodoa",
                "tcp",
                "fd00::1",
                "10.10.1.101:3307",
                "address families",
            ),
        ] {
            let out = parsed(&trace(&notes_manifests(), node, proto, src, dst));
            let text = out["errors"][0]["text"].as_str().unwrap_or_default();
            assert!(text.contains(says), "{node} {proto} {src} {dst}: {out}");
        }
    }

    #[test]
    fn a_bad_manifest_names_its_line_and_field() {
        let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  clusterIP: 10.96.0.5\n  ports:\n  - port: 70000\n";
        let out = parsed(&check(bad));
        let error = &out["errors"][0];
        assert_eq!(error["line"], 8, "{out}");
        assert_eq!(error["field"], "spec.ports[0].port", "{out}");
        assert!(
            error["text"]
                .as_str()
                .unwrap()
                .starts_with("manifests.yaml:8: ")
        );
        let good = parsed(&check(&notes_manifests()));
        assert_eq!(good["errors"], Value::Array(Vec::new()));
        assert_eq!(good["nodes"][0], "nodo1");
    }

    #[test]
    fn rules_list_the_nodes_tables() {
        let out = parsed(&rules(&notes_manifests(), "nodob"));
        let ports = out["ok"]["json"]["service_ports"].as_array().unwrap();
        assert!(
            ports
                .iter()
                .any(|p| p["service"] == "default/wp-service:http")
        );
        assert!(
            out["ok"]["text"]
                .as_str()
                .unwrap()
                .starts_with("node nodob")
        );
    }
}
