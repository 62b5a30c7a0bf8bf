//! The cluster IPs in use, with how many service ports use each: the wrong-port check asks
//! whether an address is one. IPv4 addresses are keyed as 4-byte integers, so an entry
//! takes 8 bytes where an `IpAddr` key took 24.

use std::net::IpAddr;

use super::{FixedMap, fixed_state};

#[derive(Clone, Debug)]
pub(crate) struct ClusterIps {
    v4: FixedMap<u32, u32>,
    v6: FixedMap<u128, u32>,
}

impl ClusterIps {
    /// Room for about `ipv4` IPv4 addresses.
    pub(crate) fn with_capacity(ipv4: usize) -> ClusterIps {
        ClusterIps {
            v4: FixedMap::with_capacity_and_hasher(ipv4, fixed_state()),
            v6: FixedMap::with_hasher(fixed_state()),
        }
    }

    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(a) => self.v4.contains_key(&a.to_bits()),
            IpAddr::V6(a) => self.v6.contains_key(&a.to_bits()),
        }
    }

    /// Counts one more service port on `address`.
    pub(crate) fn add(&mut self, address: IpAddr) {
        let users = match address {
            IpAddr::V4(a) => self.v4.entry(a.to_bits()).or_insert(0),
            IpAddr::V6(a) => self.v6.entry(a.to_bits()).or_insert(0),
        };
        *users += 1;
    }

    /// Counts one service port fewer on `address`, forgetting it at none.
    pub(crate) fn remove(&mut self, address: IpAddr) {
        match address {
            IpAddr::V4(a) => release(&mut self.v4, a.to_bits()),
            IpAddr::V6(a) => release(&mut self.v6, a.to_bits()),
        }
    }
}

fn release<K: std::hash::Hash + Eq>(users: &mut FixedMap<K, u32>, key: K) {
    if let Some(n) = users.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            users.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_stays_until_its_last_port_goes() {
        let mut ips = ClusterIps::with_capacity(4);
        for address in ["10.96.0.10", "fd00::10"] {
            let address: IpAddr = address.parse().expect("literal");
            ips.add(address);
            ips.add(address);
            ips.remove(address);
            assert!(ips.contains(address));
            ips.remove(address);
            assert!(!ips.contains(address));
            // Removing what is not there changes nothing.
            ips.remove(address);
            assert!(!ips.contains(address));
        }
    }
}
