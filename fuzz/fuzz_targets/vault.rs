//! cargo-fuzz target `vault`: see `kcm_fuzz_targets::vault`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::vault::run(data));
