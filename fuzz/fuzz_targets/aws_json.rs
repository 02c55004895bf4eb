//! cargo-fuzz target `aws_json`: see `kcm_fuzz_targets::aws_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::aws_json::run(data));
