//! cargo-fuzz target `backup_archive`: see `kcm_fuzz_targets::backup_archive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kcm_fuzz_targets::backup_archive::run(data));
