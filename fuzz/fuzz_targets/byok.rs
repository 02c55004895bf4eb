//! cargo-fuzz target `byok`: see `kcm_fuzz_targets::byok`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::byok::run(data));
