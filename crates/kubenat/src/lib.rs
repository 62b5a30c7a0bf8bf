//! The `kubenat` command's pieces, as a library so tests and other tools can reuse them.

pub mod bench;
pub mod memory;
pub mod scale;
pub mod story;

// The trace and the tables live where the browser playground reaches them too.
pub use kubenat_inspect::{probe, report, rules};
