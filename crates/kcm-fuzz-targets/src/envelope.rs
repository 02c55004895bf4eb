//! The envelope file of `kcm encrypt` / `kcm decrypt` (`kcm-client` `envelope`:
//! [`read_header`], then [`decrypt_body`], the stream of `kcm-aead-stream` of
//! unknown length).
//!
//! The input is an envelope file, decrypted with the data key of the envelopes in
//! `crates/kcm-client/src/envelope/testdata` (`0x07…`), so those files and their
//! byte edits are read as far as they authenticate.

use kcm_client::envelope::{decrypt_body, read_header, DataKey};

/// Envelopes have no size limit; 64 KiB is many chunks of the small chunk sizes
/// the test envelopes use.
pub const MAX_LEN: usize = 64 * 1024;
/// The data key of the test envelopes.
pub const DATA_KEY: [u8; 32] = [0x07; 32];

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let mut reader = data;
    let header = match read_header(&mut reader) {
        Ok(header) => header,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let key = DataKey::from_slice(&DATA_KEY).expect("a 32-byte key");
    let mut out = Vec::new();
    match decrypt_body(&mut reader, &mut out, &key, &header, |_| {}) {
        Ok(n) => {
            assert_eq!(n, out.len() as u64);
            assert!(out.len() <= data.len());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
