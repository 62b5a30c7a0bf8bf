//! The packet path allocates nothing once the connection tables have room: every packet
//! kind goes through an engine that reserved room for its connections while a counting
//! allocator watches. (Without the reservation, a new connection past the tables'
//! high-water mark allocates: memory follows use.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::packets::{echo_request, reply_to, split, tcp, udp};
use common::sa;
use kubenat_core::{Engine, Hook, Instant, PacketMeta, Path, Verdict, reference};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_packet_kind_allocates() {
    let mut state = reference::cluster("nodoa");
    state.proxy.conntrack_capacity = 4096;
    let mut engine = Engine::new(&state);
    engine.reserve_connections(state.proxy.conntrack_capacity);
    // Every kind of packet, built before counting starts.
    let mut packets: Vec<(Path, Vec<u8>)> = Vec::new();
    for i in 0..2000u16 {
        let client = sa(&format!("192.168.0.{}:{}", 200 + i % 50, 20_000 + i));
        packets.push((
            Path::Forward,
            tcp(client, sa("192.168.0.101:30880"), "syn", b""),
        ));
        let pod = sa(&format!("10.10.0.102:{}", 30_000 + i));
        packets.push((Path::Forward, udp(pod, sa("10.10.1.10:53"), b"query")));
    }
    let first = packets.clone();
    // Replies to the first packets after translation, once translated.
    let mut warm = Engine::new(&state);
    for (path, packet) in &first {
        let mut p = packet.clone();
        if let Verdict::Translated(_) = warm.process_path(*path, &mut p, Instant::ZERO) {
            packets.push((Path::Forward, reply_to(&p, "syn,ack", b"")));
        }
    }
    let fragments = split(
        &udp(sa("10.10.0.112:4000"), sa("10.10.1.10:53"), &[7; 64]),
        24,
        99,
    );
    for f in fragments {
        packets.push((Path::Forward, f));
    }
    packets.push((
        Path::Forward,
        tcp(sa("10.10.0.102:1"), sa("10.10.1.101:3306"), "syn", b""),
    ));
    packets.push((
        Path::Forward,
        tcp(sa("10.10.0.102:2"), sa("10.10.1.250:80"), "syn", b""),
    ));
    packets.push((Path::Forward, echo_request("10.10.0.102", "10.10.0.103")));
    packets.push((Path::Forward, vec![0x45, 0, 0]));
    let mut reply = vec![0u8; kubenat_core::reject::MAX_REPLY_LEN];
    let mut verdicts = vec![Verdict::Accept; 64];
    let mut metas = vec![PacketMeta::default(); 64];

    COUNTING.store(true, Ordering::SeqCst);
    for (i, (path, packet)) in packets.iter_mut().enumerate() {
        let now = Instant::from_millis(i as u64);
        if let Verdict::Reject(_) = engine.process_path(*path, packet, now) {
            engine.write_reject_reply(packet, &mut reply).unwrap();
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    let mut batch: Vec<&mut [u8]> = packets
        .iter_mut()
        .take(64)
        .map(|(_, p)| p.as_mut_slice())
        .collect();
    COUNTING.store(true, Ordering::SeqCst);
    engine.process_batch(
        Hook::Prerouting,
        &mut batch,
        &mut metas,
        Instant::from_secs(10),
        &mut verdicts,
    );
    engine.handle_timeout(Instant::from_secs(100_000));
    COUNTING.store(false, Ordering::SeqCst);

    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "allocations on the packet path"
    );
    assert!(
        engine.counters().translated > 4000,
        "{:?}",
        engine.counters()
    );
    assert!(engine.counters().rejected >= 1 && engine.counters().dropped >= 2);
}
