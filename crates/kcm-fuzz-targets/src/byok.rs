//! BYOK wrapped key material (`kcm-core` `byok`: [`unwrap_material`], and the
//! names [`WrappingAlgorithm::parse`] and [`WrappingKeySpec::parse`]), as
//! `ImportKeyMaterial` takes it.
//!
//! The input is a wrapping algorithm's name on the first line and the wrapped
//! material after it (as the AWS door passes it once its base64 is decoded),
//! unwrapped with [`WRAPPING_KEY`], a fixed RSA-2048 key made for these tests only
//! (the seeds are wrapped to it). Whatever unwraps must be exactly 32 bytes.

use std::sync::OnceLock;

use aws_lc_rs::rsa::PrivateDecryptingKey;
use kcm_core::byok::{unwrap_material, WrappingAlgorithm, WrappingKeySpec, MATERIAL_LEN};

/// A 4096-bit RSA-OAEP block and an AES key wrap of 32 bytes, with room: wrapped
/// material is small.
pub const MAX_LEN: usize = 8 * 1024;
/// The wrapping key (PKCS#8 DER, RSA-2048), made for these tests and used nowhere
/// else.
pub const WRAPPING_KEY: &[u8] = include_bytes!("byok_wrapping_key.p8");

/// The wrapping key, parsed once.
pub fn wrapping_key() -> &'static PrivateDecryptingKey {
    static KEY: OnceLock<PrivateDecryptingKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateDecryptingKey::from_pkcs8(WRAPPING_KEY).expect("the test key"))
}

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let (name, wrapped) = crate::first_line(data);
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    if let Err(e) = WrappingKeySpec::parse(name) {
        let _ = e.to_string();
    }
    let algorithm = match WrappingAlgorithm::parse(name) {
        Ok(algorithm) => algorithm,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    match unwrap_material(algorithm, wrapping_key(), wrapped) {
        Ok(material) => assert_eq!(material.len(), MATERIAL_LEN),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
