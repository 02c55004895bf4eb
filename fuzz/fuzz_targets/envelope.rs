//! cargo-fuzz target `envelope`: see `kcm_fuzz_targets::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::envelope::run(data));
