//! Fields the Kubernetes schema does not have are warned about with their file, line, object
//! and path (errors with `strict`); fields kubenat merely ignores stay quiet.

use kubenat_k8s::{LoadOptions, parse_reader, parse_str};

const TYPOS: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  managedFields:
  - manager: kubectl
    fieldsV1:
      f:spec: {}
spec:
  clustreIP: 10.96.0.7
  clusterIP: 10.96.0.8
  ports:
  - port: 80
    tragetPort: 8080
status:
  loadBalancer: {}
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mdoe: iptables
clusterCDIR: 10.0.0.0/8
bindAddress: 0.0.0.0
featureGates:
  AnyGate: true
ipvs:
  scheduler: rr
  schedulr: rr
logging:
  options:
    json:
      infoBufferSize: 0
";

fn messages(diagnostics: &[kubenat_k8s::Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(ToString::to_string).collect()
}

const EXPECTED: [&str; 5] = [
    "f.yaml:11: Service shop/web: unknown field spec.clustreIP",
    "f.yaml:15: Service shop/web: unknown field spec.ports[0].tragetPort",
    "f.yaml:21: KubeProxyConfiguration: unknown field mdoe",
    "f.yaml:22: KubeProxyConfiguration: unknown field clusterCDIR",
    "f.yaml:28: KubeProxyConfiguration: unknown field ipvs.schedulr",
];

#[test]
fn typos_warn_with_file_line_object_and_path() {
    let manifests = parse_str("f.yaml", TYPOS).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(messages(&manifests.warnings), EXPECTED);
    // Import goes on: the Service is there, with the cluster IP it spelled right.
    assert_eq!(manifests.services.len(), 1);
    assert!(manifests.proxy.is_some());
}

#[test]
fn strict_makes_them_errors() {
    let strict = LoadOptions { strict: true };
    let errors = parse_reader("f.yaml", TYPOS.as_bytes(), &strict, &mut |_| {})
        .expect_err("strict refuses unknown fields");
    assert_eq!(messages(&errors), EXPECTED);
}

#[test]
fn json_names_the_same_paths() {
    let json = r#"{"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
       "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 53, "protocl": "UDP"}]}}]}"#;
    let manifests = parse_str("l.json", json).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        messages(&manifests.warnings),
        ["l.json:3: Service default/a: unknown field spec.ports[0].protocl"]
    );
}
