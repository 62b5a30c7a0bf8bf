//! Scale measurements for kubenat: synthetic clusters of 1k to 1M Services, synthetic
//! traffic, and the runner behind `kubenat bench`. The criterion benches under `benches/`
//! use the same generators.

pub mod dump;
pub mod in_order;
pub mod pauses;
pub mod run;
pub mod synthetic;
