//! Criterion benches of kubenat's packet path and control plane at 1k to 1M Services
//! (`KUBENAT_BENCH_SIZES`, comma-separated, overrides the list):
//!
//! - `lookup_hit`, `lookup_miss`: the service table (`Tables::lookup`) for cluster IPs that
//!   exist and for addresses that do not;
//! - `new_flow`: SYNs of connections never seen (conntrack miss, service lookup, endpoint
//!   choice, both tuples inserted);
//! - `established`: packets of N live connections, client to service (conntrack hit,
//!   DNAT rewrite, checksum update);
//! - `reverse_nat`: the reply direction of the same connections (endpoint to client,
//!   source rewritten back to the cluster IP);
//! - `checksum_update`: `kubenat_core::checksum::update` for a DNAT (address and port) on
//!   packets of N flows;
//! - `compile`: `kubenat_core::compile` of N Services x 4 endpoints;
//! - `update`: `Engine::update` with one Service's EndpointSlice replaced.
//!
//! Packet benches run batches of 256 packets through `Engine::process_batch` (PREROUTING)
//! and report elements (packets) per second. CI runs them once each with
//! `KUBENAT_BENCH_SIZES=1000 cargo bench -p kubenat-benches -- --test`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant as WallClock};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use kubenat_bench::synthetic::{self, FlowSpec, Rng};
use kubenat_core::{
    ChecksumStatus, ClusterState, Engine, Flow, Hook, Instant, PacketMeta, Protocol, ServiceName,
    Update, Verdict, checksum,
};

/// The allocator `kubenat bench` runs on, so `compile` and `update` compare with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 256;
const ENDPOINTS: usize = 4;
/// Distinct new connections available to `new_flow` before the table is emptied again.
const NEW_FLOW_POOL: usize = 1 << 18;
/// Random addresses (or flows) each lookup bench cycles through.
const PROBES: usize = 1 << 20;

/// Everything built once per size, outside any timing.
struct Fixture {
    services: usize,
    state: ClusterState,
    /// Engine with `services` established connections (one per service on average).
    engine: Engine,
    /// Client-to-service packets of the established connections (ACK with payload).
    forward: Vec<Vec<u8>>,
    /// Endpoint-to-client packets of the same connections.
    reply: Vec<Vec<u8>>,
    /// Random indices into `forward` / `reply`.
    order: Vec<u32>,
    hits: Vec<Ipv4Addr>,
    misses: Vec<Ipv4Addr>,
}

fn fixture(services: usize) -> Fixture {
    let flows = services;
    let state = synthetic::cluster(services, ENDPOINTS, flows);
    let specs = synthetic::flows(services, flows, 42);
    let mut engine = Engine::new(&state);
    let now = Instant::ZERO;
    let mut forward = Vec::with_capacity(flows);
    let mut reply = Vec::with_capacity(flows);
    for spec in &specs {
        // Three-way handshake through the engine, so the connection is established.
        let mut syn = synthetic::packet(spec, true);
        let Verdict::Translated(_) = engine.process(Hook::Prerouting, &mut syn, now) else {
            panic!("SYN to {} was not translated", spec.service);
        };
        let endpoint = Flow::of_packet(&syn).expect("a SYN parses").destination;
        let mut syn_ack = kubenat_benches::tcp_packet(endpoint, spec.client, "syn,ack", 1);
        let Verdict::Translated(_) = engine.process(Hook::Prerouting, &mut syn_ack, now) else {
            panic!("SYN-ACK from {endpoint} was not reverse-translated");
        };
        assert_eq!(
            Flow::of_packet(&syn_ack).expect("a SYN-ACK parses").source,
            spec.service,
            "reverse NAT restores the cluster IP"
        );
        let ack = synthetic::packet(spec, false);
        let mut first = ack.clone();
        engine.process(Hook::Prerouting, &mut first, now);
        forward.push(ack);
        reply.push(kubenat_benches::tcp_packet(endpoint, spec.client, "ack", 2));
    }
    let mut rng = Rng::new(7);
    let order: Vec<u32> = (0..PROBES.max(flows))
        .map(|_| rng.below(flows) as u32)
        .collect();
    let hits = (0..PROBES)
        .map(|_| synthetic::service_ip(rng.below(services)))
        .collect();
    // TEST-NET-1 and -3: never a cluster IP.
    let misses = (0..PROBES)
        .map(|_| Ipv4Addr::from(u32::from_be_bytes([192, 0, 2, 0]) + rng.below(1 << 8) as u32))
        .collect();
    Fixture {
        services,
        state,
        engine,
        forward,
        reply,
        order,
        hits,
        misses,
    }
}

/// Copies `BATCH` templates (picked by `order` from `*cursor` on) into work buffers, as a
/// NIC delivers fresh packets, and runs them through PREROUTING at `now`.
fn run_batch(
    engine: &mut Engine,
    templates: &[Vec<u8>],
    order: &[u32],
    cursor: &mut usize,
    buffers: &mut [[u8; 128]; BATCH],
    verdicts: &mut [Verdict; BATCH],
    now: Instant,
) {
    let mut packets: [&mut [u8]; BATCH] = std::array::from_fn(|_| &mut [][..]);
    for (slot, buffer) in packets.iter_mut().zip(buffers.iter_mut()) {
        let template = &templates[order[*cursor] as usize];
        *cursor += 1;
        if *cursor == order.len() {
            *cursor = 0;
        }
        buffer[..template.len()].copy_from_slice(template);
        *slot = &mut buffer[..template.len()];
    }
    // Verified, as from a NIC that checks checksums.
    let mut metas = [PacketMeta::new(ChecksumStatus::Verified); BATCH];
    engine.process_batch(Hook::Prerouting, &mut packets, &mut metas, now, verdicts);
}

/// Short runs for big sizes: a full run takes minutes, not hours.
fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
) {
    if n >= 100_000 {
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
    } else {
        group.sample_size(20);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(1));
    }
}

fn lookups(c: &mut Criterion, f: &Fixture) {
    for (name, addresses) in [("lookup_hit", &f.hits), ("lookup_miss", &f.misses)] {
        let mut group = c.benchmark_group(name);
        configure(&mut group, f.services);
        group.throughput(Throughput::Elements(BATCH as u64));
        let tables = f.engine.tables();
        let mut cursor = 0usize;
        group.bench_function(BenchmarkId::from_parameter(f.services), |b| {
            b.iter(|| {
                let mut found = 0usize;
                for _ in 0..BATCH {
                    let address = IpAddr::V4(addresses[cursor]);
                    cursor = (cursor + 1) % addresses.len();
                    found += usize::from(tables.lookup(address, Protocol::Tcp, 80).is_some());
                }
                black_box(found)
            })
        });
        group.finish();
    }
}

fn packets(c: &mut Criterion, f: &mut Fixture) {
    let mut buffers = [[0u8; 128]; BATCH];
    let mut verdicts = [Verdict::Accept; BATCH];
    let now = Instant::ZERO;
    for (name, reply) in [("established", false), ("reverse_nat", true)] {
        let mut group = c.benchmark_group(name);
        configure(&mut group, f.services);
        group.throughput(Throughput::Elements(BATCH as u64));
        let templates = if reply { &f.reply } else { &f.forward };
        let mut cursor = 0usize;
        let engine = &mut f.engine;
        group.bench_function(BenchmarkId::from_parameter(f.services), |b| {
            b.iter(|| {
                run_batch(
                    engine,
                    templates,
                    &f.order,
                    &mut cursor,
                    &mut buffers,
                    &mut verdicts,
                    now,
                );
                black_box(&verdicts);
            })
        });
        group.finish();
        debug_assert!(verdicts.iter().all(|v| matches!(v, Verdict::Translated(_))));
    }
}

fn new_flows(c: &mut Criterion, f: &Fixture) {
    // Connections never seen: fresh clients (10.200.0.0/16 and up) to random services.
    let specs: Vec<FlowSpec> = synthetic::flows(f.services, NEW_FLOW_POOL, 99)
        .into_iter()
        .enumerate()
        .map(|(k, mut spec)| {
            let client = Ipv4Addr::from(u32::from_be_bytes([10, 200, 0, 0]) + (k / 50_000) as u32);
            spec.client = SocketAddr::new(IpAddr::V4(client), spec.client.port());
            spec
        })
        .collect();
    let syns: Vec<Vec<u8>> = specs.iter().map(|s| synthetic::packet(s, true)).collect();
    let order: Vec<u32> = (0..syns.len() as u32).collect();
    let mut state = f.state.clone();
    state.proxy.conntrack_capacity = NEW_FLOW_POOL;
    let mut engine = Engine::new(&state);
    let mut buffers = [[0u8; 128]; BATCH];
    let mut verdicts = [Verdict::Accept; BATCH];
    let mut now = Instant::ZERO;
    let mut cursor = 0usize;

    let mut group = c.benchmark_group("new_flow");
    configure(&mut group, f.services);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::from_parameter(f.services), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                if cursor == 0 {
                    // The pool is used up: let every connection expire (untimed), so the
                    // next pass misses conntrack again.
                    now = now + Duration::from_secs(24 * 3600);
                    engine.handle_timeout(now);
                }
                let start = WallClock::now();
                run_batch(
                    &mut engine,
                    &syns,
                    &order,
                    &mut cursor,
                    &mut buffers,
                    &mut verdicts,
                    now,
                );
                timed += start.elapsed();
                black_box(&verdicts);
            }
            timed
        })
    });
    group.finish();
    assert!(
        verdicts.iter().all(|v| matches!(v, Verdict::Translated(_))),
        "new flows were not all translated: {:?}",
        verdicts
            .iter()
            .find(|v| !matches!(v, Verdict::Translated(_)))
    );
}

fn checksums(c: &mut Criterion, f: &Fixture) {
    // The DNAT of each flow's packet: destination address and port become an endpoint's.
    struct Rewrite {
        checksum: u16,
        old: [u8; 6],
        new: [u8; 6],
    }
    let rewrites: Vec<Rewrite> = f
        .forward
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let mut old = [0u8; 6];
            old[..4].copy_from_slice(&p[16..20]);
            old[4..].copy_from_slice(&p[22..24]);
            let mut new = [10, 0, (k >> 8) as u8, k as u8, 0x1f, 0x90];
            new[1] = (k >> 16) as u8;
            Rewrite {
                checksum: u16::from_be_bytes([p[36], p[37]]),
                old,
                new,
            }
        })
        .collect();
    let mut group = c.benchmark_group("checksum_update");
    configure(&mut group, f.services);
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut cursor = 0usize;
    group.bench_function(BenchmarkId::from_parameter(f.services), |b| {
        b.iter(|| {
            let mut acc = 0u16;
            for _ in 0..BATCH {
                let r = &rewrites[f.order[cursor] as usize];
                cursor = (cursor + 1) % f.order.len();
                acc ^= checksum::update(black_box(r.checksum), &r.old, &r.new);
            }
            black_box(acc)
        })
    });
    group.finish();
}

fn control_plane(c: &mut Criterion, f: &mut Fixture) {
    let mut group = c.benchmark_group("compile");
    configure(&mut group, f.services);
    group.throughput(Throughput::Elements(f.services as u64));
    let state = &f.state;
    group.bench_function(BenchmarkId::from_parameter(f.services), |b| {
        b.iter_with_large_drop(|| kubenat_core::compile(black_box(state)))
    });
    group.finish();

    let mut group = c.benchmark_group("update");
    configure(&mut group, f.services);
    group.throughput(Throughput::Elements(1));
    let mut rng = Rng::new(11);
    let mut generation = 0usize;
    let services = f.services;
    let engine = &mut f.engine;
    group.bench_function(BenchmarkId::from_parameter(f.services), |b| {
        b.iter_batched(
            || {
                // One Service's pods all replaced (built untimed).
                generation += 1;
                let i = rng.below(services);
                let name = ServiceName::new("bench", format!("svc-{i}"));
                Update::UpsertEndpointSlice(Box::new(synthetic::slice(
                    &name, i, ENDPOINTS, generation,
                )))
            },
            |update| {
                engine
                    .update(update)
                    .expect("the engine owns its control plane")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    for n in kubenat_benches::sizes() {
        let mut f = fixture(n);
        lookups(&mut c, &f);
        packets(&mut c, &mut f);
        new_flows(&mut c, &f);
        checksums(&mut c, &f);
        // Last: updates change the Services the packet benches rely on.
        control_plane(&mut c, &mut f);
    }
    c.final_summary();
}
