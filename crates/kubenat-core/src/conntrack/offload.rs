//! The conntrack table's side of [`crate::offload`]: its slab and its two indexes ask
//! for memory ahead, take it, and hand back what they stop using.

use super::Conntrack;
use super::entry::Entry;
use crate::addr::Addr;
use crate::flow_index::{BUCKET_BYTES, FlowIndex, fresh_table};
use crate::offload::{Memory, MemoryRequest, Part, Target};
use crate::slab::{chunk_bytes, fresh_chunks};

/// Connections an offloaded table makes room for in its indexes at once, before any
/// packet: below this a growth came every few batches, faster than a helper faulted in
/// the next table, so each grew on the packet path (250 us to 4 ms a batch at 10k
/// Services on the benchmarks' VM). The first tables hold 599 KB (the original and reply
/// keys, two a connection) and 300 KB (the masquerade keys), or the caps' tables where a
/// cap is less than twice as large.
const FIRST_CONNECTIONS: usize = 8_192;

impl<A: Addr> Conntrack<A> {
    /// From now on, asks ahead for the memory it will need and keeps what it releases
    /// for [`Conntrack::memory_released`].
    pub(crate) fn offload_memory(&mut self) {
        self.entries.offload();
        self.keys.offload(2 * FIRST_CONNECTIONS);
        self.snat_keys.offload(FIRST_CONNECTIONS);
    }

    /// The next memory to fault in off the packet path, once each (`v6`: this table's
    /// family, to route the answer back); none for a table of no capacity (a family not in
    /// use), which never grows.
    pub(crate) fn memory_wanted(&mut self, v6: bool) -> Option<MemoryRequest> {
        if self.capacity == 0 {
            return None;
        }
        let target = |part| Target { v6, part };
        if let Some(chunks) = self.entries.wanted() {
            return Some(MemoryRequest::new(
                target(Part::Entries),
                chunks,
                chunks * chunk_bytes::<Entry<A>>(),
                fresh_chunks::<Entry<A>>,
            ));
        }
        let index = |buckets: usize, part| {
            MemoryRequest::new(target(part), buckets, buckets * BUCKET_BYTES, fresh_table)
        };
        if let Some(buckets) = self.keys.wanted() {
            return Some(index(buckets, Part::Keys));
        }
        let buckets = self.snat_keys.wanted()?;
        Some(index(buckets, Part::MasqueradeKeys))
    }

    /// Takes memory it asked for; gives back what it cannot use.
    pub(crate) fn provide_memory(&mut self, memory: Memory) -> Result<(), Memory> {
        let Memory { target, block } = memory;
        let back = |block| Memory { target, block };
        let index = match target.part {
            Part::Entries => return self.entries.supply(block).map_err(back),
            Part::Keys => &mut self.keys,
            Part::MasqueradeKeys => &mut self.snat_keys,
        };
        let table = block.downcast::<FlowIndex>().map_err(back)?;
        index.supply(*table).map_err(|table| back(Box::new(table)))
    }

    /// Slab chunks and index tables it allocated itself as connections came in (see
    /// [`Engine::conntrack_grown_on_packet_path`](crate::Engine::conntrack_grown_on_packet_path)).
    pub(crate) fn grown_on_packet_path(&self) -> usize {
        self.entries.own_chunks() + self.keys.own_tables() + self.snat_keys.own_tables()
    }

    /// An index table it stopped using, to free off the packet path.
    pub(crate) fn memory_released(&mut self, v6: bool) -> Option<Memory> {
        let (part, block) = match self.keys.take_retired() {
            Some(block) => (Part::Keys, block),
            None => (Part::MasqueradeKeys, self.snat_keys.take_retired()?),
        };
        Some(Memory::released(Target { v6, part }, block))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::conntrack::{Direction, State, Tuple};
    use crate::model::ConntrackTimeouts;
    use crate::time::Instant;

    fn tuple(n: u32) -> Tuple<Ipv4Addr> {
        Tuple {
            src: Ipv4Addr::from(0x0a00_0000 | n),
            dst: Ipv4Addr::new(10, 96, 0, 10),
            sport: 40000,
            dport: 80,
            protocol: 6,
        }
    }

    fn reply(n: u32) -> Tuple<Ipv4Addr> {
        Tuple {
            src: Ipv4Addr::new(10, 244, 1, 5),
            sport: 8080,
            ..tuple(n).reversed()
        }
    }

    /// Growing from empty while a "helper" fulfils every request between inserts: every
    /// part gets its memory ahead, no index clears a table of its own, emptied indexes
    /// come back to be freed, and every connection stays findable both ways.
    #[test]
    fn offloaded_growth_takes_its_memory_ahead() {
        let mut ct = Conntrack::<Ipv4Addr>::new(1_000_000, ConntrackTimeouts::default());
        ct.offload_memory();
        let (mut supplied, mut released) = (Vec::new(), 0);
        for n in 0..60_000 {
            // Every third connection masqueraded, so that index grows too.
            let masquerade = n % 3 == 0;
            let at = ct
                .insert(
                    tuple(n),
                    reply(n),
                    masquerade,
                    State::TcpSynSent,
                    Instant::ZERO,
                )
                .unwrap();
            assert!(!ct.keys.clearing_its_own() && !ct.snat_keys.clearing_its_own());
            assert_eq!(ct.lookup(&reply(n)), Some((at, Direction::Reply)));
            while let Some(request) = ct.memory_wanted(false) {
                let memory = request.fulfil();
                supplied.push(memory.target.part);
                ct.provide_memory(memory).unwrap();
            }
            while ct.memory_released(false).is_some() {
                released += 1;
            }
        }
        for part in [Part::Entries, Part::Keys, Part::MasqueradeKeys] {
            assert!(supplied.contains(&part), "{part:?} got no memory ahead");
        }
        // Only the very first insert, before anything was asked for, took its own chunk.
        assert_eq!(ct.grown_on_packet_path(), 1);
        assert!(released >= 2, "emptied indexes come back: {released}");
        assert!((0..60_000).all(|n| ct.lookup(&tuple(n)).is_some()));
    }

    /// Memory that comes too late to be of use is given back, never lost or misused.
    #[test]
    fn memory_of_no_use_is_given_back() {
        let mut ct = Conntrack::<Ipv4Addr>::new(1_000_000, ConntrackTimeouts::default());
        ct.offload_memory();
        let mut requests = Vec::new();
        for n in 0..40 {
            ct.insert(tuple(n), reply(n), false, State::TcpSynSent, Instant::ZERO)
                .unwrap();
            requests.extend(std::iter::from_fn(|| ct.memory_wanted(false)));
        }
        let keys = requests
            .into_iter()
            .find(|request| request.target.part == Part::Keys)
            .expect("the next index is asked for ahead");
        // Meanwhile the table was grown past the size asked for.
        ct.reserve(100_000);
        let memory = keys.fulfil();
        let back = ct.provide_memory(memory).unwrap_err();
        assert_eq!(back.target.part, Part::Keys);
        // A block of the wrong kind for its target comes back too.
        let wrong = Memory::released(back.target, Box::new(0u8));
        assert!(ct.provide_memory(wrong).is_err());
        assert!((0..40).all(|n| ct.lookup(&reply(n)).is_some()));
    }

    /// A table of no capacity (its family not in use) never grows, so asks for nothing.
    #[test]
    fn a_table_of_no_capacity_asks_for_nothing() {
        let mut ct = Conntrack::<Ipv4Addr>::new(0, ConntrackTimeouts::default());
        ct.offload_memory();
        assert!(ct.memory_wanted(false).is_none());
    }

    /// A table not offloaded asks for nothing, and takes all its memory as it grows.
    #[test]
    fn a_table_not_offloaded_asks_for_nothing() {
        let mut ct = Conntrack::<Ipv4Addr>::new(1_000_000, ConntrackTimeouts::default());
        for n in 0..10_000 {
            ct.insert(tuple(n), reply(n), true, State::TcpSynSent, Instant::ZERO)
                .unwrap();
            assert!(ct.memory_wanted(false).is_none());
            assert!(ct.memory_released(false).is_none());
        }
        // 10 slab chunks; each index doubled from 16 buckets (112 lanes), growing each
        // time a quarter of its lanes held keys: 20,000 keys ten times, the 10,000
        // masqueraded connections' keys nine times.
        assert_eq!(ct.grown_on_packet_path(), 10 + 10 + 9);
    }

    /// Memory that never comes is taken on the packet path, and counted.
    #[test]
    fn memory_that_never_comes_is_counted() {
        let mut ct = Conntrack::<Ipv4Addr>::new(1_000_000, ConntrackTimeouts::default());
        ct.offload_memory();
        for n in 0..10_000 {
            ct.insert(tuple(n), reply(n), false, State::TcpSynSent, Instant::ZERO)
                .unwrap();
            while ct.memory_wanted(false).is_some() {}
        }
        assert!(
            ct.grown_on_packet_path() >= 10,
            "{}",
            ct.grown_on_packet_path()
        );
    }
}
