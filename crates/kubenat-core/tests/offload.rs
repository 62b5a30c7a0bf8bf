//! Memory offloaded (`kubenat_core::offload`): an engine whose connection tables get their
//! memory from another thread, late or on time, treats every packet exactly as one that
//! grows its tables itself, and hands back the tables it stops using.

mod common;

use std::net::SocketAddr;

use common::clusters::nodoa_dual_stack;
use common::packets::{tcp, udp};
use common::runner::secs;
use common::{ip, sa};
use kubenat_core::offload::Memory;
use kubenat_core::{Engine, Hook, PacketMeta, Verdict};

/// New connections of both families to Services, in batches of 64: enough to grow every
/// table a few times over.
fn opening_packets() -> Vec<Vec<u8>> {
    (0..24_000u32)
        .map(|n| {
            let port = 1024 + (n % 60_000) as u16;
            let host = (n / 60_000) as u8;
            match n % 4 {
                0 => udp(
                    SocketAddr::new(ip(&format!("10.10.0.{}", 50 + host)), port),
                    sa("10.10.1.10:53"),
                    b"q",
                ),
                1 => tcp(
                    SocketAddr::new(ip(&format!("fd00:10::{:x}", 0x50 + u32::from(host))), port),
                    sa("[fd00:10::60]:80"),
                    "syn",
                    b"",
                ),
                _ => tcp(
                    SocketAddr::new(ip(&format!("10.10.0.{}", 60 + host)), port),
                    sa("10.10.1.101:3307"),
                    "syn",
                    b"",
                ),
            }
        })
        .collect()
}

fn run_batch(engine: &mut Engine, packets: &mut [Vec<u8>]) -> Vec<Verdict> {
    let mut refs: Vec<&mut [u8]> = packets.iter_mut().map(|p| p.as_mut_slice()).collect();
    let mut metas = vec![PacketMeta::default(); refs.len()];
    let mut verdicts = vec![Verdict::Accept; refs.len()];
    engine.process_batch(
        Hook::Prerouting,
        &mut refs,
        &mut metas,
        secs(0),
        &mut verdicts,
    );
    verdicts
}

/// Fulfilling each request `lag` batches after it was made (0: at once), on another
/// thread: what the tables do with memory that comes on time, late, or not at all, must
/// never show in a packet.
#[test]
fn offloaded_tables_treat_packets_as_tables_that_grow_themselves() {
    let state = nodoa_dual_stack();
    for lag in [0usize, 3, 40, usize::MAX] {
        let mut plain = Engine::new(&state);
        let mut offloaded = Engine::new(&state);
        offloaded.offload_memory();
        let (mut waiting, mut provided, mut given_back, mut released) =
            (Vec::new(), 0, 0, Vec::<Memory>::new());
        for (round, chunk) in opening_packets().chunks(64).enumerate() {
            let mut a = chunk.to_vec();
            let mut b = chunk.to_vec();
            assert_eq!(
                run_batch(&mut plain, &mut a),
                run_batch(&mut offloaded, &mut b)
            );
            assert_eq!(a, b, "lag {lag}, round {round}: the same bytes");
            // Between batches, as an embedder's loop does it.
            waiting.extend(std::iter::from_fn(|| offloaded.memory_wanted()).map(|r| (round, r)));
            let due: Vec<_> = waiting
                .extract_if(.., |(asked, _)| round.saturating_sub(*asked) >= lag)
                .map(|(_, request)| request)
                .collect();
            let fulfilled =
                std::thread::spawn(move || due.into_iter().map(|r| r.fulfil()).collect::<Vec<_>>());
            for memory in fulfilled.join().unwrap() {
                match offloaded.provide_memory(memory) {
                    Ok(()) => provided += 1,
                    Err(_) => given_back += 1,
                }
            }
            released.extend(std::iter::from_fn(|| offloaded.memory_released()));
        }
        assert_eq!(plain.counters(), offloaded.counters());
        assert_eq!(plain.connections(), offloaded.connections());
        assert_eq!(plain.connections(), 24_000, "every connection tracked");
        if lag == usize::MAX {
            assert_eq!(provided + given_back, 0);
        } else {
            assert!(provided > 10, "lag {lag}: memory taken ({provided})");
            assert!(!released.is_empty(), "lag {lag}: emptied indexes come back");
        }
    }
}
