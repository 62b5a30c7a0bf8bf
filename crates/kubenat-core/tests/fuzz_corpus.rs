//! The committed fuzz corpus of the packet targets (`fuzz/corpus/packet_fixed`,
//! `fuzz/corpus/packet_cluster`) and every crash ever found (`fuzz/artifacts-committed/`),
//! replayed through the same invariants the fuzz targets check (`fuzz/src/packets.rs`,
//! included here), so CI guards them without cargo-fuzz. See docs/reliability.md.

#[path = "../../../fuzz/src/packets.rs"]
mod packets;
#[path = "../../../fuzz/src/seeds.rs"]
#[allow(dead_code)]
mod seeds;

#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;

use corpus::inputs;

fn replay_all(target: &str, run: fn(&[u8]) -> packets::Harness) -> (usize, u64, u64) {
    let files = inputs(target);
    let (mut translated, mut replies) = (0, 0);
    for (path, bytes) in &files {
        let h = std::panic::catch_unwind(|| run(bytes))
            .unwrap_or_else(|_| panic!("{target}: {} breaks an invariant", path.display()));
        translated += h.translated;
        replies += h.replies_checked;
    }
    (files.len(), translated, replies)
}

#[test]
fn packet_fixed_corpus_keeps_every_invariant() {
    let (files, translated, replies) = replay_all("packet_fixed", packets::packet_fixed);
    // The seeds alone are 26 files and translate (and reply to) many packets.
    assert!(files >= 25, "{files} corpus files");
    assert!(
        translated >= 30 && replies >= 20,
        "{translated} translated, {replies} replies"
    );
}

#[test]
fn packet_cluster_corpus_keeps_every_invariant() {
    let (files, _, _) = replay_all("packet_cluster", packets::packet_cluster);
    assert!(files >= 5, "{files} corpus files");
}

/// The committed seeds are what `seed-corpus` writes today (the generator and the
/// corpus cannot drift apart unnoticed).
#[test]
fn packet_seeds_are_committed() {
    for seed in seeds::packet_fixed()
        .into_iter()
        .chain(seeds::packet_cluster())
    {
        corpus::assert_committed(seed.target, &seed.name, &seed.bytes);
    }
}
