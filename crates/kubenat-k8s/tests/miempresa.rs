//! The course notes' cluster written as real manifests (`examples/miempresa/`) must be the
//! cluster `kubenat_core::reference` builds by hand, from every node's point of view.

use std::path::PathBuf;

use kubenat_core::{ClusterState, EndpointSlice, reference};

fn example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/miempresa")
        .join(file)
}

/// Slices compared without their generated names, in a fixed order.
fn normalised(state: &ClusterState) -> ClusterState {
    let mut state = state.clone();
    for slice in &mut state.endpoint_slices {
        slice.name = String::new();
    }
    let key = |s: &EndpointSlice| format!("{:?}", (&s.service, &s.ports, &s.endpoints));
    state.endpoint_slices.sort_by_key(key);
    state.services.sort_by(|a, b| a.name.cmp(&b.name));
    state.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    state
}

#[test]
fn example_manifests_are_the_reference_cluster_on_every_node() {
    let manifests = kubenat_k8s::load(&[example("cluster.yaml"), example("kube-proxy.yaml")])
        .unwrap_or_else(|errors| {
            panic!(
                "the example loads: {}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    assert!(
        manifests.warnings.is_empty(),
        "no warnings on the example: {:?}",
        manifests.warnings
    );
    assert_eq!(manifests.node_names(), ["nodo1", "nodoa", "nodob", "nodoc"]);
    for (node, _) in reference::NODES {
        let got = manifests.cluster_state(node).expect("known node");
        let want = reference::cluster(node);
        let (got, want) = (normalised(&got), normalised(&want));
        assert_eq!(got.services, want.services, "services seen from {node}");
        assert_eq!(
            got.endpoint_slices, want.endpoint_slices,
            "slices seen from {node}"
        );
        assert_eq!(got.nodes, want.nodes, "nodes seen from {node}");
        assert_eq!(got.proxy, want.proxy, "proxy settings of {node}");
    }
}

#[test]
fn example_ingress_and_service_cidr() {
    let manifests = kubenat_k8s::load(&[example("cluster.yaml")]).expect("loads");
    assert_eq!(manifests.service_cidrs, ["10.10.1.0/24".parse().unwrap()]);
    assert_eq!(manifests.ingresses.len(), 1);
    let ingress = &manifests.ingresses[0];
    assert_eq!(ingress.rules[0].host.as_deref(), Some("web1.miempresa.com"));
    assert_eq!(ingress.rules[0].paths[0].backend.service, "wp-service");
    assert_eq!(
        ingress.rules[0].paths[0].backend.port,
        kubenat_core::TargetPort::Number(8080)
    );
}

#[test]
fn unknown_node_names_the_known_ones() {
    let manifests = kubenat_k8s::load(&[example("cluster.yaml")]).expect("loads");
    let error = manifests.cluster_state("nodoz").expect_err("no such node");
    assert_eq!(
        error.to_string(),
        "node \"nodoz\" not found; known nodes: nodo1, nodoa, nodob, nodoc"
    );
}
