//! Shared by the fuzz targets and, through `#[path]` includes, by the workspace's stable
//! tests that replay the committed corpus (`crates/kubenat-core/tests/fuzz_corpus.rs`,
//! `crates/kubenat/tests/fuzz_corpus.rs`): one copy of every invariant.

pub mod inputs;
pub mod packets;
pub mod seeds;
