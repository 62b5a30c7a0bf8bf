//! `cargo fuzz run -s none packet_cluster` (see fuzz/run.sh); the invariants are in fuzz/src.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kubenat_fuzz::packets::packet_cluster(data);
});
