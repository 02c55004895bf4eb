//! cargo-fuzz target `xks`: see `kcm_fuzz_targets::xks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::xks::run(data));
