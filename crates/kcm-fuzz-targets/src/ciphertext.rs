//! The ciphertext blob (`kcm-core` `crypto`: [`CiphertextHeader::parse`] and
//! [`decrypt_data`]).
//!
//! The input is a blob, optionally preceded by an encryption context and a `0xff`
//! byte (`context 0xff blob`; without `0xff` the context is empty). It is parsed and
//! decrypted under the fixed version key [`VERSION_KEY`] (the seeds are blobs made
//! with it, so their authentication succeeds). Then a property on the same bytes as
//! plaintext: [`encrypt_data`] gives a blob whose header parses back to what was
//! written and that decrypts to the plaintext with its context, and with no other.

use kcm_core::crypto::{decrypt_data, encrypt_data, CiphertextHeader, CIPHERTEXT_OVERHEAD};
use kcm_core::model::KeyId;
use kcm_core::secret::SecretBytes;

/// A ciphertext reaches the core inside a JSON body (at most 1 MiB, base64) or a
/// Kubernetes request (1 KiB); 64 KiB covers every size class of the format.
pub const MAX_LEN: usize = 64 * 1024;
/// The service key version key the seeds were encrypted under.
pub const VERSION_KEY: [u8; 32] = [0x33; 32];
/// The key id the seeds name.
pub const SEED_KEY_ID: u128 = 0x1234abcd_12ab_34cd_56ef_1234567890ab;

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let (context, blob) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let key = SecretBytes::copy_from(&VERSION_KEY);
    if CiphertextHeader::parse(blob).is_some() {
        assert!(blob.len() >= CIPHERTEXT_OVERHEAD);
    }
    if let Ok(plaintext) = decrypt_data(&key, blob, context) {
        assert!(plaintext.len() + CIPHERTEXT_OVERHEAD == blob.len());
    }

    let header = CiphertextHeader {
        key_id: KeyId(uuid::Uuid::from_u128(SEED_KEY_ID)),
        key_version: u32::try_from(data.len()).unwrap_or(u32::MAX),
    };
    let sealed = encrypt_data(&key, header, blob, context);
    assert_eq!(CiphertextHeader::parse(&sealed), Some(header));
    let opened = decrypt_data(&key, &sealed, context).expect("a fresh blob decrypts");
    assert_eq!(opened.expose_secret(), blob);
    let mut other_context = context.to_vec();
    other_context.push(0);
    assert!(decrypt_data(&key, &sealed, &other_context).is_err());
}
