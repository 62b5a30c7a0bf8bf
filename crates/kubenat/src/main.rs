//! `kubenat`: kube-proxy's Service data plane in userspace. With no arguments it simulates
//! the course notes' network and prints each request's journey, hop by hop.
//!
//! Each command is a module of [`cli`]; what they compute lives in the `kubenat` library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Counts the bytes held, for `kubenat bench` and `kubenat simulate --generate`.
#[global_allocator]
static ALLOCATOR: kubenat::memory::CountingAllocator = kubenat::memory::CountingAllocator;

fn main() -> ExitCode {
    match cli::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}
