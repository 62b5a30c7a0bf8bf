//! `cargo fuzz run -s none replay` (see fuzz/run.sh); the invariants are in fuzz/src.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kubenat_fuzz::inputs::replay(data);
});
