//! Writes the seed corpus (see `kubenat_fuzz::seeds`) to `fuzz/corpus/<target>/<name>`:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seed-corpus
//! ```
//!
//! Files the fuzzer added to a corpus directory are left alone; seeds are overwritten.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut total = 0;
    for seed in kubenat_fuzz::seeds::all() {
        let dir = root.join(seed.target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(&seed.name), &seed.bytes).expect("write seed");
        total += seed.bytes.len();
        println!("{}/{} ({} bytes)", seed.target, seed.name, seed.bytes.len());
    }
    println!("{total} bytes");
}
