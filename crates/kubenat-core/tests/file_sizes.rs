//! The packet-path issue's structural target: every source file of the engine stays
//! at 400 lines or fewer, so each keeps one job. A file that grows past it is split.

use std::path::Path;

const MOST_LINES: usize = 400;

fn oversized(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            oversized(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let lines = std::fs::read_to_string(&path)
                .expect("readable source file")
                .lines()
                .count();
            if lines > MOST_LINES {
                found.push(format!("{}: {lines} lines", path.display()));
            }
        }
    }
}

#[test]
fn every_source_file_is_at_most_400_lines() {
    let mut found = Vec::new();
    oversized(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.is_empty(), "over {MOST_LINES} lines: {found:?}");
}
