//! A service port's endpoints, stored by family: an IPv4 endpoint takes 6 bytes where a
//! `SocketAddr` takes 32. A port's endpoints are all of its cluster IP's family, so one
//! list never mixes them. The public paths are in [`categorize`](crate::categorize).

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

/// Endpoints (address and target port) of one family, in the order they were given
/// (compiled lists are sorted). Read them through [`EndpointList::view`], or the shortcuts
/// beside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointList(Owned);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Owned {
    V4(Box<[SocketAddrV4]>),
    V6(Box<[SocketAddrV6]>),
}

impl Default for EndpointList {
    fn default() -> Self {
        EndpointList(Owned::V4(Box::default()))
    }
}

/// A borrowed list of endpoints of one family ([`EndpointList::view`]); what
/// [`CompiledServicePort::endpoints_of`](crate::tables::CompiledServicePort::endpoints_of)
/// hands out.
#[derive(Clone, Copy, Debug)]
pub enum Endpoints<'a> {
    /// IPv4 endpoints.
    V4(&'a [SocketAddrV4]),
    /// IPv6 endpoints.
    V6(&'a [SocketAddrV6]),
}

impl Default for Endpoints<'_> {
    fn default() -> Self {
        Endpoints::V4(&[])
    }
}

impl PartialEq for Endpoints<'_> {
    /// Equal when they list the same endpoints (two empty lists are equal whatever their
    /// family).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Endpoints<'_> {}

impl<'a> Endpoints<'a> {
    /// How many endpoints.
    pub fn len(self) -> usize {
        match self {
            Endpoints::V4(list) => list.len(),
            Endpoints::V6(list) => list.len(),
        }
    }

    /// Whether there is none.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Endpoint `index`, if there are that many.
    #[inline]
    pub fn get(self, index: usize) -> Option<SocketAddr> {
        match self {
            Endpoints::V4(list) => list.get(index).copied().map(SocketAddr::V4),
            Endpoints::V6(list) => list.get(index).copied().map(SocketAddr::V6),
        }
    }

    /// Every endpoint, in order.
    pub fn iter(self) -> impl ExactSizeIterator<Item = SocketAddr> + Clone + 'a {
        (0..self.len()).map(move |i| self.get(i).expect("index below the length"))
    }

    /// Whether `endpoint` is one of them.
    pub fn contains(self, endpoint: SocketAddr) -> bool {
        match (self, endpoint) {
            (Endpoints::V4(list), SocketAddr::V4(e)) => list.contains(&e),
            (Endpoints::V6(list), SocketAddr::V6(e)) => list.contains(&e),
            _ => false,
        }
    }

    /// The endpoints as `SocketAddr`s.
    pub fn to_vec(self) -> Vec<SocketAddr> {
        self.iter().collect()
    }
}

impl EndpointList {
    /// The endpoints of `endpoints` in the family of the first (an empty list for none);
    /// any of the other family are left out, since a service port's endpoints share its
    /// cluster IP's family.
    pub fn new(endpoints: impl IntoIterator<Item = SocketAddr>) -> EndpointList {
        let mut endpoints = endpoints.into_iter().peekable();
        EndpointList(match endpoints.peek() {
            Some(SocketAddr::V6(_)) => Owned::V6(
                endpoints
                    .filter_map(|e| match e {
                        SocketAddr::V6(e) => Some(e),
                        SocketAddr::V4(_) => None,
                    })
                    .collect(),
            ),
            _ => Owned::V4(
                endpoints
                    .filter_map(|e| match e {
                        SocketAddr::V4(e) => Some(e),
                        SocketAddr::V6(_) => None,
                    })
                    .collect(),
            ),
        })
    }

    /// The endpoints, borrowed.
    #[inline]
    pub fn view(&self) -> Endpoints<'_> {
        match &self.0 {
            Owned::V4(list) => Endpoints::V4(list),
            Owned::V6(list) => Endpoints::V6(list),
        }
    }

    /// How many endpoints.
    pub fn len(&self) -> usize {
        self.view().len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    /// Every endpoint, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SocketAddr> + Clone + '_ {
        self.view().iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().expect("literal")).collect()
    }

    #[test]
    fn a_list_reads_back_what_it_was_given_in_its_family() {
        for (given, kept) in [
            (addrs(&["10.0.0.1:80", "10.0.0.2:8080"]), 2),
            (addrs(&["[fd00::1]:80", "[fd00::2]:80", "[fd00::3]:443"]), 3),
            // The first decides the family; the other family is left out.
            (addrs(&["10.0.0.1:80", "[fd00::1]:80", "10.0.0.2:80"]), 2),
            (Vec::new(), 0),
        ] {
            let list = EndpointList::new(given.iter().copied());
            let same_family: Vec<SocketAddr> = given
                .iter()
                .copied()
                .filter(|e| e.is_ipv4() == given[0].is_ipv4())
                .collect();
            assert_eq!(list.len(), kept);
            assert_eq!(list.view().to_vec(), same_family);
            assert_eq!(list.view().get(kept), None);
            assert!(same_family.iter().all(|&e| list.view().contains(e)));
            assert!(
                !list
                    .view()
                    .contains("10.9.9.9:80".parse().expect("literal"))
            );
        }
    }

    #[test]
    fn an_ipv4_endpoint_takes_six_bytes() {
        assert_eq!(std::mem::size_of::<SocketAddrV4>(), 6);
        assert_eq!(
            EndpointList::new(Vec::new()).view(),
            Endpoints::V6(&[]),
            "empty lists are equal whatever their family"
        );
    }
}
