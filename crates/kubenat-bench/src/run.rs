//! The measurements behind `kubenat bench`: compile, lookup, new flows, established flows,
//! one-Service updates, memory, and the same traffic over several worker threads.
//!
//! Wall-clock time is read here, in the harness, never in the engine.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant as WallClock};

use kubenat_core::offload::MemoryHelper;
use kubenat_core::{
    ChecksumStatus, ControlPlane, Engine, Hook, Instant, PacketMeta, Protocol, ProxyConfig,
    Publication, ServiceName, Update, Verdict,
};
use serde::Serialize;

use crate::pauses::{self, Pauses};
use crate::synthetic::{self, FlowSpec, Rng};

/// What to measure.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub services: usize,
    pub endpoints: usize,
    /// Distinct connections: the conntrack table holds this many.
    pub flows: usize,
    pub threads: usize,
    /// Share of new connections in the mixed phase (0 to 1).
    pub new_flow_ratio: f64,
    /// Packets handed to the engine at once.
    pub batch: usize,
    /// Packets in each timed phase (at least one pass over the flows).
    pub packets: usize,
    /// One-Service updates to time.
    pub updates: usize,
    pub seed: u64,
    /// Hand the packets over unverified, so the engine verifies their checksums as the
    /// kernel does at PREROUTING; by default they come verified, as from a NIC that checks
    /// them (CHECKSUM_UNNECESSARY).
    pub verify_checksums: bool,
    /// Let a helper thread fault in the memory the connection tables grow into, and free
    /// what they release, between batches (`kubenat_core::offload`), rather than the
    /// batches that grow them.
    pub memory_helper: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            services: 10_000,
            endpoints: 4,
            flows: 100_000,
            threads: 1,
            new_flow_ratio: 0.0,
            batch: 64,
            packets: 2_000_000,
            updates: 1_000,
            seed: 42,
            verify_checksums: false,
            memory_helper: true,
        }
    }
}

/// Packet throughput of one phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Throughput {
    pub packets: u64,
    pub mpps: f64,
    pub ns_per_packet: f64,
    pub batch_p50_ns: u64,
    pub batch_p99_ns: u64,
    /// One batch in a thousand takes longer: where a tail is the machine's (interrupts,
    /// another thread on the core) rather than the engine's, the maximum shows it and
    /// this does not.
    pub batch_p999_ns: u64,
    /// The slowest batch: for new flows, what growing the connection tables costs at worst.
    pub max_batch_ns: u64,
    /// Slab chunks and index tables the connection tables took themselves during the
    /// phase ([`Engine::conntrack_grown_on_packet_path`]): memory the helper had not
    /// brought in time, each a batch that faulted fresh pages in.
    pub conntrack_grown_on_packet_path: u64,
    /// Each batch in the order the batches ran (`kubenat bench --batch-times`): the same
    /// seed gives every run the same batches, so runs compare batch by batch.
    #[serde(skip)]
    pub batches_in_order: Vec<BatchTime>,
}

/// One batch of a phase, timed.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchTime {
    pub ns: u64,
    /// Slab chunks and index tables the connection tables took themselves in this batch
    /// (a fault of fresh memory, where the helper's had not come in time).
    pub conntrack_grown: u32,
}

/// Latency distribution of repeated operations.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    /// Each operation's time in the order they ran (`kubenat bench --batch-times`).
    #[serde(skip)]
    pub in_order_ns: Vec<u64>,
}

/// Bytes the engine holds, measured by the caller's allocator.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    /// The control plane (the objects it keeps for updates and its compiled snapshot)
    /// and one engine following it, its connection tables left out.
    pub tables_bytes: u64,
    pub bytes_per_service_port: f64,
    /// The same per service port: the whole cluster's cost, whatever the engines.
    pub cluster_bytes_per_service_port: f64,
    /// What each further engine (a worker thread, a simulated node) adds beyond its
    /// connection tables: its round-robin turns and settings; the snapshot is shared.
    pub engine_extra_bytes: u64,
    /// Of those, what the packet path reads for new connections
    /// ([`Engine::packet_path_bytes`]): the compact lines, their index and the round-robin
    /// turns, endpoints inline.
    pub packet_path_bytes_per_service_port: f64,
    /// The connection tables ([`Engine::conntrack_bytes`]) after the new-flow phase: they
    /// grow with the connections, so this is what `flows` connections hold.
    pub conntrack_bytes: u64,
    pub bytes_per_connection: f64,
    /// Extra bytes held after one-Service updates, per update (0 when reused).
    pub bytes_per_update: f64,
}

/// Everything `kubenat bench` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub config: Config,
    pub compile_seconds: f64,
    pub lookup_hit_ns: f64,
    pub lookup_miss_ns: f64,
    /// Random lookups per second into a plain 1M-key hash table: the memory system's
    /// ceiling on this machine, measured in the same run.
    pub ceiling_mlookups_per_second: f64,
    /// The machine's own pauses, measured in the same run (a thread spinning for a second):
    /// a batch that meets one is that much slower, so where they are long and frequent a
    /// phase's slowest batch measures them, not the engine.
    pub machine_pauses: Pauses,
    /// Every flow's first packet, into connection tables that start empty and grow.
    pub new_flows: Throughput,
    pub established: Throughput,
    /// The first packets again once every connection has expired: new flows into tables
    /// already grown to `flows` connections.
    pub new_flows_pregrown: Throughput,
    pub mixed: Option<Throughput>,
    /// The established (or mixed) traffic spread over `threads` workers.
    pub threaded: Option<Throughput>,
    pub update: Latency,
    pub memory: Option<Memory>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency(in_order_ns: Vec<u64>) -> Latency {
    let mut samples = in_order_ns.clone();
    samples.sort_unstable();
    Latency {
        in_order_ns,
        count: samples.len(),
        p50_ns: percentile(&samples, 0.50),
        p99_ns: percentile(&samples, 0.99),
        max_ns: samples.last().copied().unwrap_or(0),
    }
}

fn throughput(packets: u64, elapsed: Duration, batches_in_order: Vec<BatchTime>) -> Throughput {
    let mut batches: Vec<u64> = batches_in_order.iter().map(|b| b.ns).collect();
    batches.sort_unstable();
    let seconds = elapsed.as_secs_f64().max(1e-9);
    Throughput {
        packets,
        mpps: packets as f64 / seconds / 1e6,
        ns_per_packet: seconds * 1e9 / packets.max(1) as f64,
        batch_p50_ns: percentile(&batches, 0.50),
        batch_p99_ns: percentile(&batches, 0.99),
        batch_p999_ns: percentile(&batches, 0.999),
        max_batch_ns: batches.last().copied().unwrap_or(0),
        conntrack_grown_on_packet_path: 0,
        batches_in_order,
    }
}

/// Packets laid out in the order they are sent, one fixed-size slot each in one flat
/// buffer: the harness reads them sequentially, as a NIC fills its receive ring, so it adds
/// no cache miss of its own to the engine's (picking random templates would add two per
/// packet at a million flows).
pub struct Stream {
    bytes: Vec<u8>,
    lengths: Vec<u8>,
    slot: usize,
}

impl Stream {
    /// `templates[order[0]]`, `templates[order[1]]`, ... Templates are at most 255 bytes.
    pub fn new(templates: &[Vec<u8>], order: &[u32]) -> Stream {
        let slot = templates
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .next_multiple_of(64);
        let mut bytes = vec![0u8; slot * order.len()];
        let mut lengths = Vec::with_capacity(order.len());
        for (k, &index) in order.iter().enumerate() {
            let template = &templates[index as usize];
            bytes[k * slot..k * slot + template.len()].copy_from_slice(template);
            lengths.push(u8::try_from(template.len()).expect("templates are at most 255 bytes"));
        }
        Stream {
            bytes,
            lengths,
            slot,
        }
    }

    fn len(&self) -> usize {
        self.lengths.len()
    }

    fn packet(&self, k: usize) -> &[u8] {
        &self.bytes[k * self.slot..k * self.slot + usize::from(self.lengths[k])]
    }
}

/// Runs `stream` through `engine` in batches, copying each packet into a work buffer first
/// as a NIC would deliver a fresh packet. An engine that follows a control plane takes its
/// latest snapshot before each batch: its packets see the old or the new state of a
/// Service, never a mix, and never wait on a lock.
///
/// The metadata is set once: each packet's checksum status, as its NIC would report it;
/// PREROUTING rewrites the connection it carries, so nothing per packet is left to reset.
fn pump(
    engine: &mut Engine,
    stream: &Stream,
    config: &Config,
    clock: &mut Instant,
    helper: Option<&MemoryHelper>,
) -> Throughput {
    let batch = config.batch.clamp(1, 256);
    let mut buffers: Vec<[u8; 256]> = vec![[0u8; 256]; batch];
    let checksum = match config.verify_checksums {
        true => ChecksumStatus::Unverified,
        false => ChecksumStatus::Verified,
    };
    let mut metas = vec![PacketMeta::new(checksum); batch];
    let mut verdicts = vec![Verdict::Accept; batch];
    let mut batch_times = Vec::with_capacity(stream.len() / batch + 1);
    let grown_before = engine.conntrack_grown_on_packet_path();
    let mut grown_so_far = grown_before;
    let start = WallClock::now();
    for first in (0..stream.len()).step_by(batch) {
        if let Some(helper) = helper {
            helper.tend(engine);
        }
        let t0 = WallClock::now();
        let n = (stream.len() - first).min(batch);
        let mut packets: [&mut [u8]; 256] = std::array::from_fn(|_| &mut [][..]);
        for (k, (slot, buffer)) in packets
            .iter_mut()
            .zip(buffers.iter_mut())
            .take(n)
            .enumerate()
        {
            let packet = stream.packet(first + k);
            buffer[..packet.len()].copy_from_slice(packet);
            *slot = &mut buffer[..packet.len()];
        }
        engine.process_batch(
            Hook::Prerouting,
            &mut packets[..n],
            &mut metas[..n],
            *clock,
            &mut verdicts[..n],
        );
        *clock = *clock + Duration::from_micros(1);
        let ns = t0.elapsed().as_nanos() as u64;
        let grown = engine.conntrack_grown_on_packet_path();
        batch_times.push(BatchTime {
            ns,
            conntrack_grown: u32::try_from(grown - grown_so_far).unwrap_or(u32::MAX),
        });
        grown_so_far = grown;
    }
    Throughput {
        conntrack_grown_on_packet_path: engine.conntrack_grown_on_packet_path() - grown_before,
        ..throughput(stream.len() as u64, start.elapsed(), batch_times)
    }
}

/// Indices `0..n` repeated to `total`, shuffled: every flow is hit, in random order.
fn shuffled(n: usize, total: usize, rng: &mut Rng) -> Vec<u32> {
    let mut order: Vec<u32> = (0..total).map(|k| (k % n.max(1)) as u32).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// A direction-independent hash of a flow, as RSS with a symmetric key computes it: both
/// directions of a connection land on the same worker.
pub fn symmetric_hash(a: std::net::SocketAddr, b: std::net::SocketAddr) -> u64 {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut hasher = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
    low.hash(&mut hasher);
    high.hash(&mut hasher);
    hasher.finish()
}

/// Random lookups into a plain hash table of `keys` u64 keys: what the memory system allows.
fn ceiling(keys: usize, lookups: usize, seed: u64) -> f64 {
    let state = ahash::RandomState::with_seeds(5, 6, 7, 8);
    let mut table: hashbrown::HashMap<u64, u64, _> =
        hashbrown::HashMap::with_capacity_and_hasher(keys, state);
    let mut rng = Rng::new(seed);
    let key_list: Vec<u64> = (0..keys).map(|_| rng.next_u64()).collect();
    for (i, &k) in key_list.iter().enumerate() {
        table.insert(k, i as u64);
    }
    let probes: Vec<u64> = (0..lookups).map(|_| key_list[rng.below(keys)]).collect();
    let start = WallClock::now();
    let mut sum = 0u64;
    for k in &probes {
        sum = sum.wrapping_add(*table.get(k).unwrap_or(&0));
    }
    let elapsed = start.elapsed();
    std::hint::black_box(sum);
    lookups as f64 / elapsed.as_secs_f64() / 1e6
}

fn lookup_ns(engine: &Engine, addresses: &[Ipv4Addr]) -> f64 {
    let tables = engine.tables();
    let start = WallClock::now();
    let mut found = 0usize;
    for &a in addresses {
        found += usize::from(tables.lookup(IpAddr::V4(a), Protocol::Tcp, 80).is_some());
    }
    std::hint::black_box(found);
    start.elapsed().as_nanos() as f64 / addresses.len().max(1) as f64
}

/// Times `config.updates` one-Service updates (a Service's pods all replaced).
/// One-Service updates applied to the control plane and published, while `engine` (and
/// so every engine of the cluster) still reads an older snapshot: what one change costs,
/// paid once for all engines. The engine takes the last snapshot at the end.
fn time_updates(
    plane: &mut ControlPlane,
    engine: &mut Engine,
    config: &Config,
    rng: &mut Rng,
) -> Latency {
    let mut samples = Vec::with_capacity(config.updates);
    for update in one_service_updates(config, rng) {
        let start = WallClock::now();
        plane.apply(update);
        samples.push(start.elapsed().as_nanos() as u64);
    }
    engine.process_batch(Hook::Prerouting, &mut [], &mut [], Instant::ZERO, &mut []);
    latency(samples)
}

/// `config.updates` EndpointSlice changes, each moving every endpoint of a random Service.
fn one_service_updates(config: &Config, rng: &mut Rng) -> Vec<Update> {
    (1..=config.updates)
        .map(|generation| {
            let i = rng.below(config.services.max(1));
            let name = ServiceName::new("bench", format!("svc-{i}"));
            Update::UpsertEndpointSlice(Box::new(synthetic::slice(
                &name,
                i,
                config.endpoints,
                generation,
            )))
        })
        .collect()
}

/// Runs every measurement. `allocated` reports the bytes the process holds (a counting
/// allocator in the caller), or `None` when not measured; `phase` hears what starts next
/// (for a progress display: at 1M Services a run takes several seconds).
pub fn run(
    config: &Config,
    allocated: &dyn Fn() -> Option<u64>,
    phase: &mut dyn FnMut(&str),
) -> Report {
    phase("building the cluster and its traffic");
    let mut rng = Rng::new(config.seed);
    let services = config.services.max(1);
    let flows = config.flows.max(1);
    let state = synthetic::cluster(services, config.endpoints, flows);
    let specs: Vec<FlowSpec> = synthetic::flows(services, flows, config.seed);
    let syns: Vec<Vec<u8>> = specs.iter().map(|f| synthetic::packet(f, true)).collect();
    let acks: Vec<Vec<u8>> = specs.iter().map(|f| synthetic::packet(f, false)).collect();

    // The control plane keeps the state it compiles: its copy counts in the memory, not
    // the time.
    phase("compiling");
    let before_compile = allocated();
    let owned = state.clone();
    let start = WallClock::now();
    let mut plane = ControlPlane::from_state(owned);
    let publication = plane.publication();
    let compile_seconds = start.elapsed().as_secs_f64();
    let mut engine = Engine::follow(publication.clone(), &state.proxy);
    let helper = config
        .memory_helper
        .then(|| MemoryHelper::start(&mut engine));
    let helper = helper.as_ref();
    let after_compile = allocated();
    let packet_path_bytes = engine.packet_path_bytes();
    let before_extra = allocated();
    let extra = Engine::follow(publication.clone(), &state.proxy);
    let engine_extra_bytes = allocated().zip(before_extra).map(|(after, before)| {
        after
            .saturating_sub(before)
            .saturating_sub(extra.conntrack_bytes() as u64)
    });
    drop(extra);
    let empty_conntrack_bytes = engine.conntrack_bytes() as u64;

    phase("timing lookups");
    let hits: Vec<Ipv4Addr> = (0..1_000_000)
        .map(|_| synthetic::service_ip(rng.below(services)))
        .collect();
    let misses: Vec<Ipv4Addr> = (0..1_000_000)
        .map(|_| Ipv4Addr::from(u32::from_be_bytes([192, 0, 2, 0]) + rng.below(1 << 8) as u32))
        .collect();
    let lookup_hit_ns = lookup_ns(&engine, &hits);
    let lookup_miss_ns = lookup_ns(&engine, &misses);

    phase("new flows");
    let mut clock = Instant::ZERO;
    let new_order: Vec<u32> = (0..flows as u32).collect();
    let syn_stream = Stream::new(&syns, &new_order);
    let new_flows = pump(&mut engine, &syn_stream, config, &mut clock, helper);
    let conntrack_bytes = engine.conntrack_bytes() as u64;
    phase("established flows");
    let established_order = shuffled(flows, config.packets.max(flows), &mut rng);
    let established = pump(
        &mut engine,
        &Stream::new(&acks, &established_order),
        config,
        &mut clock,
        helper,
    );

    phase("new flows into grown tables");
    // Past the longest timeout (established TCP, 5 days): every connection expires and
    // leaves its slot and index room for the next.
    clock = clock + Duration::from_secs(6 * 86_400);
    engine.handle_timeout(clock);
    let new_flows_pregrown = pump(&mut engine, &syn_stream, config, &mut clock, helper);
    drop(syn_stream);

    phase("mixed traffic and threads");
    // Both follow the control plane compiled above: no second copy of the cluster.
    let mixed = (config.new_flow_ratio > 0.0)
        .then(|| mixed(config, &publication, &state.proxy, &specs, &acks, &mut rng));
    let threaded = (config.threads > 1)
        .then(|| threaded(config, &mut plane, &state.proxy, (&syns, &acks), &mut rng));

    phase("updates");
    let before_updates = allocated();
    let update = time_updates(&mut plane, &mut engine, config, &mut rng);
    let after_updates = allocated();

    let memory = match (before_compile, after_compile, before_updates, after_updates) {
        (Some(a), Some(b), Some(c), Some(d)) => {
            // The engine starts with (small, empty) connection tables: not the tables'.
            let tables_bytes = b.saturating_sub(a).saturating_sub(empty_conntrack_bytes);
            Some(Memory {
                tables_bytes,
                bytes_per_service_port: tables_bytes as f64 / services as f64,
                cluster_bytes_per_service_port: tables_bytes as f64 / services as f64,
                engine_extra_bytes: engine_extra_bytes.unwrap_or(0),
                packet_path_bytes_per_service_port: packet_path_bytes as f64 / services as f64,
                conntrack_bytes,
                bytes_per_connection: conntrack_bytes as f64 / flows as f64,
                bytes_per_update: d.saturating_sub(c) as f64 / config.updates.max(1) as f64,
            })
        }
        _ => None,
    };
    Report {
        config: config.clone(),
        compile_seconds,
        lookup_hit_ns,
        lookup_miss_ns,
        ceiling_mlookups_per_second: ceiling(1_000_000, 4_000_000, config.seed),
        machine_pauses: pauses::measure(Duration::from_secs(1)),
        new_flows,
        established,
        new_flows_pregrown,
        mixed,
        threaded,
        update,
        memory,
    }
}

/// Established traffic with a share of new connections (fresh source ports each time).
fn mixed(
    config: &Config,
    publication: &Publication,
    proxy: &ProxyConfig,
    specs: &[FlowSpec],
    acks: &[Vec<u8>],
    rng: &mut Rng,
) -> Throughput {
    let total = config.packets.max(specs.len());
    let new_count = ((total as f64) * config.new_flow_ratio.clamp(0.0, 1.0)) as usize;
    let proxy = ProxyConfig {
        conntrack_capacity: specs.len() + new_count,
        ..proxy.clone()
    };
    let mut engine = Engine::follow(publication.clone(), &proxy);
    let helper = config
        .memory_helper
        .then(|| MemoryHelper::start(&mut engine));
    let helper = helper.as_ref();
    let mut clock = Instant::ZERO;
    let syns: Vec<Vec<u8>> = specs.iter().map(|f| synthetic::packet(f, true)).collect();
    let order: Vec<u32> = (0..specs.len() as u32).collect();
    pump(
        &mut engine,
        &Stream::new(&syns, &order),
        config,
        &mut clock,
        helper,
    );
    let mut templates = acks.to_vec();
    let fresh = synthetic::flows(config.services.max(1), new_count, config.seed ^ 0x5eed);
    templates.extend(fresh.iter().enumerate().map(|(k, f)| {
        let mut f = *f;
        f.client.set_ip(IpAddr::V4(Ipv4Addr::from(
            u32::from_be_bytes([10, 200, 0, 0]) + (k / 50_000) as u32,
        )));
        synthetic::packet(&f, true)
    }));
    let mut order = shuffled(specs.len(), total - new_count, rng);
    order.extend((0..new_count as u32).map(|k| specs.len() as u32 + k));
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    pump(
        &mut engine,
        &Stream::new(&templates, &order),
        config,
        &mut clock,
        helper,
    )
}

/// The established traffic over `config.threads` workers: each worker has its own engine
/// (conntrack shard and round-robin turns) following one control plane's snapshots, and
/// the connections a symmetric 5-tuple hash gives it, as RSS would spread them over
/// per-core rings. One-Service updates are published to all of them while traffic runs.
fn threaded(
    config: &Config,
    plane: &mut ControlPlane,
    proxy: &ProxyConfig,
    (syns, acks): (&[Vec<u8>], &[Vec<u8>]),
    rng: &mut Rng,
) -> Throughput {
    let threads = config.threads;
    let specs = synthetic::flows(config.services.max(1), syns.len(), config.seed);
    let mut shards: Vec<Vec<u32>> = vec![Vec::new(); threads];
    for (k, f) in specs.iter().enumerate() {
        shards[(symmetric_hash(f.client, f.service) % threads as u64) as usize].push(k as u32);
    }
    let per_worker = config.packets.max(syns.len()) / threads;
    let streams: Vec<(Stream, Stream)> = shards
        .iter()
        .map(|flows| {
            let mut order: Vec<u32> = (0..per_worker)
                .map(|k| flows[k % flows.len().max(1)])
                .collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            (Stream::new(syns, flows), Stream::new(acks, &order))
        })
        .collect();
    let proxy = ProxyConfig {
        conntrack_capacity: syns.len() / threads + syns.len() / 8 + 1,
        ..proxy.clone()
    };
    let start_barrier = std::sync::Barrier::new(threads + 1);
    let updates = one_service_updates(config, rng);
    let publication = plane.publication();
    let results: Vec<Throughput> = std::thread::scope(|scope| {
        let workers: Vec<_> = streams
            .iter()
            .map(|(opening, traffic)| {
                let proxy = &proxy;
                let publication = publication.clone();
                let barrier = &start_barrier;
                scope.spawn(move || {
                    let mut engine = Engine::follow(publication, proxy);
                    let mut clock = Instant::ZERO;
                    // Workers grow their tables in line: the helper thread is the single
                    // engine's, and the workers already take every core.
                    pump(&mut engine, opening, config, &mut clock, None);
                    barrier.wait();
                    pump(&mut engine, traffic, config, &mut clock, None)
                })
            })
            .collect();
        start_barrier.wait();
        // One-Service updates are published while the traffic runs.
        for update in updates {
            plane.apply(update);
        }
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let packets: u64 = results.iter().map(|r| r.packets).sum();
    let slowest = results
        .iter()
        .map(|r| r.ns_per_packet * r.packets as f64)
        .fold(0.0, f64::max);
    let mut batch = results.iter().map(|r| r.batch_p50_ns).collect::<Vec<_>>();
    batch.sort_unstable();
    Throughput {
        packets,
        mpps: packets as f64 / (slowest / 1e9).max(1e-9) / 1e6,
        ns_per_packet: slowest / packets.max(1) as f64,
        batch_p50_ns: percentile(&batch, 0.5),
        batch_p99_ns: results.iter().map(|r| r.batch_p99_ns).max().unwrap_or(0),
        batch_p999_ns: results.iter().map(|r| r.batch_p999_ns).max().unwrap_or(0),
        max_batch_ns: results.iter().map(|r| r.max_batch_ns).max().unwrap_or(0),
        conntrack_grown_on_packet_path: results
            .iter()
            .map(|r| r.conntrack_grown_on_packet_path)
            .sum(),
        // The workers' batches interleave in time: no one order to compare runs by.
        batches_in_order: Vec::new(),
    }
}
