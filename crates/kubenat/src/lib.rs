//! The `kubenat` command's pieces, as a library so tests and other tools can reuse them.

pub mod bench;
pub mod memory;
pub mod probe;
pub mod report;
pub mod rules;
pub mod scale;
pub mod story;
