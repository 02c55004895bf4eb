//! cargo-fuzz target `audit_export`: see `kcm_fuzz_targets::audit_export`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::audit_export::run(data));
