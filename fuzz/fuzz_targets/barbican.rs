//! cargo-fuzz target `barbican`: see `kcm_fuzz_targets::barbican`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::barbican::run(data));
