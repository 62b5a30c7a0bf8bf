//! The `kubenat` command's pieces, as a library so tests and other tools can reuse them.

pub mod bench;
pub mod memory;
pub mod nft;
pub mod probe;
pub mod replay;
pub mod report;
pub mod rules;
pub mod scale;
pub mod story;
