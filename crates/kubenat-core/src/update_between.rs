//! The updates that turn one cluster state into another: what a watch would have
//! delivered between two dumps (`kubenat run` re-reading its files on SIGHUP).

use std::collections::HashMap;

use crate::control_plane::Update;
use crate::model::{ClusterState, EndpointSlice, Service, ServiceName};

impl Update {
    /// The changes from `old` to `new`, one per Service or EndpointSlice added, changed or
    /// removed, in an order that never leaves a slice without its Service: removals of
    /// slices, then Services removed, then Services added or changed, then their slices.
    /// A change to the nodes or to the node's kube-proxy settings is one
    /// [`Update::Replace`]: they shape every compiled port. Equal states give no update.
    pub fn between(old: &ClusterState, new: &ClusterState) -> Vec<Update> {
        if old.proxy != new.proxy || old.nodes != new.nodes {
            return vec![Update::Replace(Box::new(new.clone()))];
        }
        let services = |state: &ClusterState| -> HashMap<ServiceName, Service> {
            // The last of two Services with one name wins, as when compiling.
            state
                .services
                .iter()
                .map(|s| (s.name.clone(), s.clone()))
                .collect()
        };
        let slices = |state: &ClusterState| -> HashMap<(ServiceName, String), EndpointSlice> {
            state
                .endpoint_slices
                .iter()
                .map(|s| ((s.service.clone(), s.name.clone()), s.clone()))
                .collect()
        };
        let (old_services, new_services) = (services(old), services(new));
        let (old_slices, new_slices) = (slices(old), slices(new));
        let mut updates = Vec::new();
        let mut removed_slices: Vec<_> = old_slices
            .keys()
            .filter(|key| !new_slices.contains_key(*key))
            .cloned()
            .collect();
        removed_slices.sort();
        updates.extend(
            removed_slices
                .into_iter()
                .map(|(service, name)| Update::RemoveEndpointSlice { service, name }),
        );
        let mut removed_services: Vec<_> = old_services
            .keys()
            .filter(|name| !new_services.contains_key(*name))
            .cloned()
            .collect();
        removed_services.sort();
        updates.extend(removed_services.into_iter().map(Update::RemoveService));
        let mut upserted_services: Vec<_> = new_services
            .into_iter()
            .filter(|(name, service)| old_services.get(name) != Some(service))
            .collect();
        upserted_services.sort_by(|a, b| a.0.cmp(&b.0));
        updates.extend(
            upserted_services
                .into_iter()
                .map(|(_, service)| Update::UpsertService(Box::new(service))),
        );
        let mut upserted_slices: Vec<_> = new_slices
            .into_iter()
            .filter(|(key, slice)| old_slices.get(key) != Some(slice))
            .collect();
        upserted_slices.sort_by(|a, b| a.0.cmp(&b.0));
        updates.extend(
            upserted_slices
                .into_iter()
                .map(|(_, slice)| Update::UpsertEndpointSlice(Box::new(slice))),
        );
        updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    #[test]
    fn the_updates_between_two_states_lead_from_one_to_the_other() {
        let old = reference::cluster("nodoa");
        assert!(
            Update::between(&old, &old).is_empty(),
            "equal states: nothing"
        );

        let mut new = old.clone();
        let wp = ServiceName::new("default", "wp-service");
        let slice = new
            .endpoint_slices
            .iter_mut()
            .find(|s| s.service == wp)
            .unwrap();
        slice.endpoints.pop();
        let mariadb = ServiceName::new("default", "mariadb-service");
        new.services.retain(|s| s.name != mariadb);
        new.endpoint_slices.retain(|s| s.service != mariadb);
        let updates = Update::between(&old, &new);
        let kinds: Vec<&str> = updates
            .iter()
            .map(|u| match u {
                Update::RemoveEndpointSlice { .. } => "remove slice",
                Update::RemoveService(_) => "remove service",
                Update::UpsertService(_) => "upsert service",
                Update::UpsertEndpointSlice(_) => "upsert slice",
                Update::Replace(_) => "replace",
            })
            .collect();
        assert_eq!(kinds, ["remove slice", "remove service", "upsert slice"]);

        // Applied to a control plane holding `old`, they compile what `new` compiles.
        let mut plane = crate::ControlPlane::new(&old);
        for update in updates {
            plane.apply(update);
        }
        let fresh = crate::ControlPlane::new(&new);
        let ports = |plane: &crate::ControlPlane| {
            let mut ports: Vec<String> = plane
                .tables()
                .ports()
                .map(|(_, p)| {
                    let endpoints = p.endpoints_of(crate::tables::EndpointClass::Cluster, "nodoa");
                    format!("{:?} {endpoints:?}", p.name)
                })
                .collect();
            ports.sort();
            ports
        };
        assert_eq!(ports(&plane), ports(&fresh));

        let mut other_proxy = old.clone();
        other_proxy.proxy.masquerade_all = !other_proxy.proxy.masquerade_all;
        assert!(matches!(
            Update::between(&old, &other_proxy)[..],
            [Update::Replace(_)]
        ));
    }
}
