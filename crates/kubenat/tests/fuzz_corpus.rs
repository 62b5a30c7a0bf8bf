//! The committed fuzz corpus of the `manifest` and `replay` targets (`fuzz/corpus/…`) and
//! every crash ever found (`fuzz/artifacts-committed/…`), replayed through the same
//! invariants the fuzz targets check (`fuzz/src/inputs.rs` and `fuzz/src/packets.rs`,
//! included here), so CI guards them without cargo-fuzz. See docs/reliability.md.

#[path = "../../../fuzz/src/inputs.rs"]
mod inputs;
#[path = "../../../fuzz/src/packets.rs"]
mod packets;
#[path = "../../../fuzz/src/seeds.rs"]
#[allow(dead_code)]
mod seeds;

#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;

use corpus::inputs;

fn replay_all(target: &str, run: fn(&[u8])) -> usize {
    let files = inputs(target);
    for (path, bytes) in &files {
        std::panic::catch_unwind(|| run(bytes))
            .unwrap_or_else(|_| panic!("{target}: {} breaks an invariant", path.display()));
    }
    files.len()
}

#[test]
fn manifest_corpus_keeps_every_invariant() {
    let files = replay_all("manifest", inputs::manifest);
    assert!(files >= 11, "{files} corpus files");
}

#[test]
fn replay_corpus_keeps_every_invariant() {
    let files = replay_all("replay", inputs::replay);
    assert!(files >= 8, "{files} corpus files");
}

/// The committed seeds are what `seed-corpus` writes today.
#[test]
fn input_seeds_are_committed() {
    for seed in seeds::manifest().into_iter().chain(seeds::replay()) {
        corpus::assert_committed(seed.target, &seed.name, &seed.bytes);
    }
}

/// The seed replays are not vacuous: the raw-IP capture translates, rejects and drops,
/// and the replay comparison sees every packet.
#[test]
fn replay_seed_exercises_every_verdict() {
    let seed = seeds::replay()
        .into_iter()
        .find(|s| s.name == "raw-ip.pcap")
        .expect("raw-ip.pcap seed");
    let dir = std::env::temp_dir().join(format!("kubenat-corpus-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.pcap"), dir.join("out.pcap"));
    std::fs::write(&input, &seed.bytes).unwrap();
    let mut engine = kubenat_core::Engine::new(&packets::fixed_cluster(1 | 32));
    let summary = kubenat_replay::replay(
        &mut engine,
        &input,
        &output,
        kubenat_core::Path::Forward,
        &mut |_, _| {},
    )
    .expect("replay");
    let _ = std::fs::remove_dir_all(&dir);
    for verdict in ["translated", "accept", "reject", "drop"] {
        assert!(summary.by_verdict[verdict] > 0, "{verdict}: {summary:?}");
    }
}
