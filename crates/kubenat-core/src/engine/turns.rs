//! The round-robin turns an engine keeps: one per service port and endpoint class, its
//! own, never in the shared snapshot, so engines that read one snapshot take turns apart,
//! as each kube-proxy node does.

use crate::tables::{EndpointClass, ServicePortId};

/// One turn per (service port, endpoint class), a port's two side by side: the turn a
/// new connection's look-ahead prefetches is the one it takes.
#[derive(Clone, Debug, Default)]
pub(super) struct Turns(Vec<u32>);

impl Turns {
    /// Turns at zero for ports `0..port_slots`.
    pub fn new(port_slots: usize) -> Turns {
        Turns(vec![0; port_slots * 2])
    }

    #[inline(always)]
    fn slot(port: ServicePortId, class: EndpointClass) -> usize {
        port.0 as usize * 2 + class as usize
    }

    /// The next turn of `port` in `class`; `None` for a port past the slots.
    #[inline(always)]
    pub fn get(&self, port: ServicePortId, class: EndpointClass) -> Option<&u32> {
        self.0.get(Turns::slot(port, class))
    }

    /// [`Turns::get`], to take the turn.
    #[inline(always)]
    pub fn get_mut(&mut self, port: ServicePortId, class: EndpointClass) -> Option<&mut u32> {
        self.0.get_mut(Turns::slot(port, class))
    }

    /// Room for ports `0..port_slots`: new ports start at zero.
    pub fn resize(&mut self, port_slots: usize) {
        self.0.resize(port_slots * 2, 0);
    }

    /// Every turn back to zero (the endpoints of every port may have changed).
    pub fn reset_all(&mut self) {
        self.0.fill(0);
    }

    /// Both turns of `port` back to zero (its endpoints changed).
    pub fn reset(&mut self, port: ServicePortId) {
        let at = Turns::slot(port, EndpointClass::Cluster);
        if let Some(turns) = self.0.get_mut(at..at + 2) {
            turns.fill(0);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&self.0[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_port_and_class_has_a_turn_of_its_own() {
        let mut turns = Turns::new(3);
        let (first, last) = (ServicePortId(0), ServicePortId(2));
        *turns.get_mut(last, EndpointClass::Local).unwrap() = 7;
        *turns.get_mut(first, EndpointClass::Cluster).unwrap() = 5;
        assert_eq!(turns.get(last, EndpointClass::Local), Some(&7));
        assert_eq!(turns.get(last, EndpointClass::Cluster), Some(&0));
        assert_eq!(turns.get(ServicePortId(3), EndpointClass::Cluster), None);
        turns.reset(last);
        assert_eq!(turns.get(last, EndpointClass::Local), Some(&0));
        assert_eq!(turns.get(first, EndpointClass::Cluster), Some(&5));
        turns.resize(4);
        assert_eq!(turns.get(ServicePortId(3), EndpointClass::Local), Some(&0));
        assert_eq!(turns.bytes(), 4 * 2 * 4);
        turns.reset_all();
        assert_eq!(turns.get(first, EndpointClass::Cluster), Some(&0));
    }
}
