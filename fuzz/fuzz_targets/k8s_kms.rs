//! cargo-fuzz target `k8s_kms`: see `kcm_fuzz_targets::k8s_kms`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::k8s_kms::run(data));
