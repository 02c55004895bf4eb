//! The wrapped-blob format: `0x01 ‖ IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`,
//! what `C_Encrypt` with AES-GCM gave, behind a format byte and the IV.

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use kcm_core::keystore::{KeystoreError, KeystoreResult};

/// Format byte of version-1 wrapped blobs: `[1][IV][ciphertext ‖ tag]`.
const BLOB_FORMAT_V1: u8 = 1;
/// AES-GCM IV length.
pub(crate) const IV_LEN: usize = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// The mechanism of one wrap or unwrap: AES-GCM with `iv`, `aad` as the additional
/// authenticated data, and a [`TAG_LEN`]-byte tag.
pub(crate) fn aes_gcm<'a>(
    iv: &'a mut [u8; IV_LEN],
    aad: &'a [u8],
) -> cryptoki::error::Result<Mechanism<'a>> {
    let params = GcmParams::new(iv, aad, (TAG_LEN as u64 * 8).into())?;
    Ok(Mechanism::AesGcm(params))
}

/// The stored blob of `sealed` (ciphertext ‖ tag, from `C_Encrypt`) made with `iv`.
pub(crate) fn encode(iv: &[u8; IV_LEN], sealed: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(1 + IV_LEN + sealed.len());
    blob.push(BLOB_FORMAT_V1);
    blob.extend_from_slice(iv);
    blob.extend_from_slice(sealed);
    blob
}

/// The IV and the ciphertext ‖ tag of a stored blob. A malformed blob cannot
/// authenticate: the same answer as a wrong key or aad, `UnwrapFailed`.
pub(crate) fn decode(blob: &[u8]) -> KeystoreResult<([u8; IV_LEN], &[u8])> {
    let (&format, rest) = blob.split_first().ok_or(KeystoreError::UnwrapFailed)?;
    if format != BLOB_FORMAT_V1 || rest.len() < IV_LEN + TAG_LEN {
        return Err(KeystoreError::UnwrapFailed);
    }
    let (iv, sealed) = rest.split_at(IV_LEN);
    Ok((iv.try_into().expect("split at IV_LEN"), sealed))
}
