//! The committed fuzz corpus of the packet targets (`fuzz/corpus/packet_fixed`,
//! `fuzz/corpus/packet_cluster`) and every crash ever found (`fuzz/artifacts-committed/`),
//! replayed through the same invariants the fuzz targets check (`fuzz/src/packets.rs`,
//! included here), so CI guards them without cargo-fuzz. See docs/reliability.md.

#[path = "../../../fuzz/src/packets.rs"]
mod packets;
#[path = "../../../fuzz/src/seeds.rs"]
#[allow(dead_code)]
mod seeds;

use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file of the target's corpus and committed artifacts, sorted.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["corpus", "artifacts-committed"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("read corpus file");
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

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
        let path = fuzz_dir().join("corpus").join(seed.target).join(&seed.name);
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run cargo run --manifest-path fuzz/Cargo.toml --example seed-corpus",
                path.display()
            )
        });
        assert!(
            committed == seed.bytes,
            "{} differs from the generator's",
            path.display()
        );
    }
}
