//! cargo-fuzz target `sigv4`: see `kcm_fuzz_targets::sigv4`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::sigv4::run(data));
