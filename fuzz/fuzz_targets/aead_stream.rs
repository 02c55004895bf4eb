//! cargo-fuzz target `aead_stream`: see `kcm_fuzz_targets::aead_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::aead_stream::run(data));
