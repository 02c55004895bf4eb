//! The audit export that `kcm audit verify --file` reads (`kcm-core`
//! `audit::export::read_export`, then `audit::verify::verify_chain`).
//!
//! The input is an export file (JSON lines). What it reads is verified as the CLI
//! verifies it, without a public key and with [`PUBLIC_KEY`] (which signed no
//! seed: every checkpoint signature is then checked and found invalid).

use kcm_core::audit::export::read_export;
use kcm_core::audit::verify::verify_chain;

/// Exports are files of any size; 1 MiB is thousands of records.
pub const MAX_LEN: usize = 1 << 20;
/// A public key that signed nothing.
pub const PUBLIC_KEY: [u8; 32] = [0x55; 32];

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let export = match read_export(data) {
        Ok(read) => read,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for key in [None, Some(&PUBLIC_KEY[..])] {
        let report = verify_chain(
            &export.records,
            &export.checkpoints,
            key,
            export.head.as_ref(),
        );
        assert_eq!(report.records, export.records.len() as u64);
        let _ = serde_json::to_string(&report);
    }
}
