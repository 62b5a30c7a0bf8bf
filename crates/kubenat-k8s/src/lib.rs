//! Kubernetes manifests into kubenat cluster state (being written).
