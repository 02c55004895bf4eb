//! cargo-fuzz target `ciphertext`: see `kcm_fuzz_targets::ciphertext`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::ciphertext::run(data));
