//! Every frontend to its service port. IPv4 cluster IPs, nearly all of a cluster's
//! frontends, are keyed by their 32 bits with the port and protocol: a 12-byte entry where
//! a [`FrontendKey`] entry takes 28, so a million of them take 27 MB instead of 61.

use std::net::IpAddr;

use hashbrown::hash_map::Entry;

use super::{FixedMap, Frontend, FrontendKey, ServicePortId, fixed_state};

#[derive(Clone, Debug)]
pub(crate) struct Frontends {
    /// IPv4 cluster IPs: (address, port << 8 | protocol number) → port id.
    cluster_v4: FixedMap<(u32, u32), u32>,
    /// Every other frontend: IPv6 cluster IPs, external and load-balancer IPs.
    others: FixedMap<FrontendKey, (ServicePortId, Frontend)>,
}

/// The compact key of an IPv4 cluster IP, or `None` for a frontend kept whole.
fn compact(key: &FrontendKey, frontend: Frontend) -> Option<(u32, u32)> {
    match (key.address, frontend) {
        (IpAddr::V4(address), Frontend::ClusterIp) => Some((
            address.to_bits(),
            u32::from(key.port) << 8 | u32::from(key.protocol.ip_number()),
        )),
        _ => None,
    }
}

impl Frontends {
    /// Room for about `cluster_ips` IPv4 cluster-IP frontends.
    pub(crate) fn with_capacity(cluster_ips: usize) -> Frontends {
        Frontends {
            cluster_v4: FixedMap::with_capacity_and_hasher(cluster_ips, fixed_state()),
            others: FixedMap::with_hasher(fixed_state()),
        }
    }

    /// The port behind `key`, and how it is reached.
    #[inline]
    pub(crate) fn get(&self, key: &FrontendKey) -> Option<(ServicePortId, Frontend)> {
        if let Some(compact) = compact(key, Frontend::ClusterIp)
            && let Some(&id) = self.cluster_v4.get(&compact)
        {
            return Some((ServicePortId(id), Frontend::ClusterIp));
        }
        if self.others.is_empty() {
            return None;
        }
        self.others.get(key).copied()
    }

    /// Makes `key` lead to `id` unless it already leads somewhere (the first definition
    /// wins a clash, as an API server would refuse the second); returns whether it does now.
    pub(crate) fn claim(
        &mut self,
        key: FrontendKey,
        id: ServicePortId,
        frontend: Frontend,
    ) -> bool {
        match compact(&key, frontend) {
            // Looked up and inserted with one hash ([`Frontends::get`] reads `others` too).
            Some(compact) => {
                if !self.others.is_empty() && self.others.contains_key(&key) {
                    return false;
                }
                match self.cluster_v4.entry(compact) {
                    Entry::Occupied(_) => false,
                    Entry::Vacant(vacant) => {
                        vacant.insert(id.0);
                        true
                    }
                }
            }
            None => {
                if self.get(&key).is_some() {
                    return false;
                }
                self.others.insert(key, (id, frontend));
                true
            }
        }
    }

    /// Forgets `key` if it leads to `id`.
    pub(crate) fn release(&mut self, key: &FrontendKey, id: ServicePortId, frontend: Frontend) {
        match compact(key, frontend) {
            Some(compact) => {
                if self.cluster_v4.get(&compact) == Some(&id.0) {
                    self.cluster_v4.remove(&compact);
                }
            }
            None => {
                if self.others.get(key).is_some_and(|(owner, _)| *owner == id) {
                    self.others.remove(key);
                }
            }
        }
    }

    /// Every frontend, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (FrontendKey, ServicePortId, Frontend)> + '_ {
        let cluster = self
            .cluster_v4
            .iter()
            .map(|(&(address, port_protocol), &id)| {
                let key = FrontendKey {
                    address: IpAddr::V4(address.into()),
                    protocol: crate::model::Protocol::from_ip_number(port_protocol as u8)
                        .expect("compact keys hold a Service protocol"),
                    port: (port_protocol >> 8) as u16,
                };
                (key, ServicePortId(id), Frontend::ClusterIp)
            });
        let others = self
            .others
            .iter()
            .map(|(key, &(id, frontend))| (*key, id, frontend));
        cluster.chain(others)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn each_kind_of_frontend_is_claimed_once_and_released_by_its_owner() {
        let key = |address: &str, protocol| FrontendKey {
            address: address.parse().expect("literal"),
            protocol,
            port: 53,
        };
        let cases = [
            (key("10.96.0.10", Protocol::Udp), Frontend::ClusterIp),
            (key("10.96.0.10", Protocol::Tcp), Frontend::ClusterIp),
            (key("fd00::10", Protocol::Sctp), Frontend::ClusterIp),
            (key("192.0.2.10", Protocol::Tcp), Frontend::ExternalIp),
            (key("203.0.113.7", Protocol::Udp), Frontend::LoadBalancerIp),
        ];
        let mut frontends = Frontends::with_capacity(4);
        for (i, &(key, frontend)) in cases.iter().enumerate() {
            let owner = ServicePortId(i as u32);
            assert!(frontends.claim(key, owner, frontend));
            assert!(
                !frontends.claim(key, ServicePortId(99), frontend),
                "{key:?}"
            );
            assert_eq!(frontends.get(&key), Some((owner, frontend)));
        }
        let mut listed: Vec<_> = frontends.iter().collect();
        listed.sort();
        let mut expected: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(i, &(key, frontend))| (key, ServicePortId(i as u32), frontend))
            .collect();
        expected.sort();
        assert_eq!(listed, expected);
        for (i, &(key, frontend)) in cases.iter().enumerate() {
            frontends.release(&key, ServicePortId(99), frontend);
            assert!(frontends.get(&key).is_some(), "only its owner releases it");
            frontends.release(&key, ServicePortId(i as u32), frontend);
            assert_eq!(frontends.get(&key), None);
        }
    }
}
