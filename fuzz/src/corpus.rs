//! The committed corpus and regression files of a fuzz target, for the stable tests in the
//! workspace that replay them (included there with `#[path]`).

use std::path::PathBuf;

/// The `fuzz/` directory, from a workspace crate's manifest directory.
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file of the target's corpus and committed artifacts, sorted.
pub fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
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

/// Panics unless the committed corpus file `target/name` holds `bytes`: the seed generator
/// (`cargo run --manifest-path fuzz/Cargo.toml --example seed-corpus`) and the committed
/// corpus cannot drift apart unnoticed.
pub fn assert_committed(target: &str, name: &str, bytes: &[u8]) {
    let path = fuzz_dir().join("corpus").join(target).join(name);
    let committed = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run cargo run --manifest-path fuzz/Cargo.toml --example seed-corpus",
            path.display()
        )
    });
    assert!(
        committed == bytes,
        "{} differs from the generator's",
        path.display()
    );
}
