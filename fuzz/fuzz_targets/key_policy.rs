//! cargo-fuzz target `key_policy`: see `kcm_fuzz_targets::key_policy`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::key_policy::run(data));
