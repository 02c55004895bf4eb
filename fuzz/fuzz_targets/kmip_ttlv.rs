//! cargo-fuzz target `kmip_ttlv`: see `kcm_fuzz_targets::kmip_ttlv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::kmip_ttlv::run(data));
