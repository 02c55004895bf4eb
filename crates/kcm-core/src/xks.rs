//! The encryption of the XKS proxy API, where kcm is the proxy AWS KMS calls (the
//! public "AWS KMS External Key Store Proxy API" specification, v1): AES-256-GCM
//! whose ciphertext, IV, tag and metadata travel as separate fields, and AWS KMS
//! keeps them in its own ciphertext blob.
//!
//! Each encryption uses a key derived (HKDF-SHA-256) from the service key version's
//! material with a fresh 15-byte salt, and a fresh 12-byte IV, so no GCM key ever
//! sees enough messages for random IVs to repeat, and the material of kcm's own
//! Encrypt is never used as is. The spec's `ciphertextMetadata` (at most 20 bytes)
//! carries what decryption needs besides the key: the format, the key version (so
//! ciphertexts from before a rotation still decrypt) and the salt. As the
//! specification asks, GCM authenticates `len16(aad) ‖ aad ‖ len8(metadata) ‖
//! metadata`, so changed metadata, or metadata moved into the AAD, does not decrypt.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::digest;

use crate::crypto::{fill_random, hkdf_sha256, AuthenticationFailed, KEY_LEN};
use crate::model::KeyId;
use crate::secret::SecretBytes;

/// The largest plaintext (and ciphertext) kcm encrypts: the 4300 bytes the
/// specification requires a proxy to support.
pub const MAX_PLAINTEXT: usize = 4300;
/// The largest additional authenticated data: the specification's 8192 bytes.
pub const MAX_AAD: usize = 8192;
/// The IV length kcm makes (the specification also allows 16 bytes on decrypt,
/// which no ciphertext of kcm's has).
pub const IV_LEN: usize = 12;
/// The tag length the specification fixes.
pub const TAG_LEN: usize = 16;
/// The length of kcm's `ciphertextMetadata`: the specification's maximum.
pub const METADATA_LEN: usize = 20;
/// The most `ciphertextMetadata` the specification allows any proxy.
pub const MAX_METADATA: usize = 20;

const FORMAT_V1: u8 = 1;
const SALT_LEN: usize = METADATA_LEN - 1 - 4;
const LABEL: &[u8] = b"kcm xks encryption v1";

/// What kcm's `ciphertextMetadata` says: which version of the key encrypted, and
/// the salt its encryption key was derived with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CiphertextMetadata {
    /// The service key version.
    pub version: u32,
    salt: [u8; SALT_LEN],
}

impl CiphertextMetadata {
    fn fresh(version: u32) -> Self {
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt);
        Self { version, salt }
    }

    /// The 20 bytes: format, version (big-endian), salt.
    pub fn to_bytes(&self) -> [u8; METADATA_LEN] {
        let mut out = [0u8; METADATA_LEN];
        out[0] = FORMAT_V1;
        out[1..5].copy_from_slice(&self.version.to_be_bytes());
        out[5..].copy_from_slice(&self.salt);
        out
    }

    /// Reads metadata kcm wrote; `None` for anything else (another proxy's, or
    /// none), which no key of kcm's decrypts.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; METADATA_LEN] = bytes.try_into().ok()?;
        if bytes[0] != FORMAT_V1 {
            return None;
        }
        let version = u32::from_be_bytes(bytes[1..5].try_into().ok()?);
        let salt = bytes[5..].try_into().ok()?;
        Some(Self { version, salt })
    }
}

/// An encryption's output, in the specification's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// `ciphertextMetadata`.
    pub metadata: [u8; METADATA_LEN],
    /// `initializationVector`.
    pub iv: [u8; IV_LEN],
    /// `ciphertext`, as long as the plaintext.
    pub ciphertext: Vec<u8>,
    /// `authenticationTag`.
    pub tag: [u8; TAG_LEN],
}

/// A ciphertext to decrypt, in the specification's fields (lengths unchecked:
/// [`open`] refuses what kcm cannot have written).
#[derive(Clone, Copy, Debug)]
pub struct Ciphertext<'a> {
    /// `ciphertextMetadata`, empty when the request had none.
    pub metadata: &'a [u8],
    /// `initializationVector`.
    pub iv: &'a [u8],
    /// `ciphertext`.
    pub ciphertext: &'a [u8],
    /// `authenticationTag`.
    pub tag: &'a [u8],
}

/// The encryption key of one message: HKDF-SHA-256 of the version's material with
/// the metadata's salt, bound to the label and the key's id.
fn message_key(version_key: &SecretBytes, key_id: KeyId, salt: &[u8]) -> LessSafeKey {
    let mut info = [0u8; LABEL.len() + 16];
    info[..LABEL.len()].copy_from_slice(LABEL);
    info[LABEL.len()..].copy_from_slice(key_id.0.as_bytes());
    let mut derived = zeroize::Zeroizing::new([0u8; KEY_LEN]);
    hkdf_sha256(version_key.expose_secret(), salt, &info, derived.as_mut())
        .expect("HKDF output of 32 bytes");
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, derived.as_ref()).expect("32-byte key"))
}

/// The associated data GCM authenticates: `len16be(aad) ‖ aad ‖ len8(metadata) ‖
/// metadata` (the specification's Encrypt, `ciphertextMetadata`). `aad` is at most
/// [`MAX_AAD`] and `metadata` [`METADATA_LEN`] bytes, which the lengths hold.
fn gcm_aad(aad: &[u8], metadata: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&(aad.len() as u16).to_be_bytes());
    out.extend_from_slice(aad);
    out.push(metadata.len() as u8);
    out.extend_from_slice(metadata);
    out
}

/// Encrypts `plaintext` (at most [`MAX_PLAINTEXT`] bytes) with `aad` (at most
/// [`MAX_AAD`]) under `version` of key `key_id`, whose material is `version_key`.
pub fn seal(
    version_key: &SecretBytes,
    key_id: KeyId,
    version: u32,
    plaintext: &[u8],
    aad: &[u8],
) -> Sealed {
    assert!(plaintext.len() <= MAX_PLAINTEXT && aad.len() <= MAX_AAD);
    let metadata = CiphertextMetadata::fresh(version);
    let metadata_bytes = metadata.to_bytes();
    let mut iv = [0u8; IV_LEN];
    fill_random(&mut iv);
    let key = message_key(version_key, key_id, &metadata.salt);
    let mut ciphertext = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(gcm_aad(aad, &metadata_bytes)),
            &mut ciphertext,
        )
        .expect("AES-GCM seal of a bounded input");
    Sealed {
        metadata: metadata_bytes,
        iv,
        ciphertext,
        tag: tag.as_ref().try_into().expect("16-byte tag"),
    }
}

/// Decrypts what [`seal`] made with `aad`, with the material of the version its
/// metadata names (`version_key`, which the caller looked up by
/// [`CiphertextMetadata::parse`]). Any difference — field, length, AAD, key — is
/// the one [`AuthenticationFailed`].
pub fn open(
    version_key: &SecretBytes,
    key_id: KeyId,
    sealed: Ciphertext<'_>,
    aad: &[u8],
) -> Result<SecretBytes, AuthenticationFailed> {
    let metadata = CiphertextMetadata::parse(sealed.metadata).ok_or(AuthenticationFailed)?;
    let iv: [u8; IV_LEN] = sealed.iv.try_into().map_err(|_| AuthenticationFailed)?;
    if sealed.tag.len() != TAG_LEN || sealed.ciphertext.len() > MAX_PLAINTEXT || aad.len() > MAX_AAD
    {
        return Err(AuthenticationFailed);
    }
    let key = message_key(version_key, key_id, &metadata.salt);
    let mut buf = Vec::with_capacity(sealed.ciphertext.len() + TAG_LEN);
    buf.extend_from_slice(sealed.ciphertext);
    buf.extend_from_slice(sealed.tag);
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(gcm_aad(aad, sealed.metadata)),
            &mut buf,
        )
        .map_err(|_| AuthenticationFailed)?
        .len();
    buf.truncate(plain_len);
    Ok(SecretBytes::new(buf))
}

/// The specification's ciphertext data integrity value (Appendix C): SHA-256 over
/// `aad ‖ metadata ‖ iv ‖ ciphertext ‖ tag`.
pub fn integrity_value(aad: &[u8], sealed: &Sealed) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [
        aad,
        &sealed.metadata[..],
        &sealed.iv[..],
        &sealed.ciphertext,
        &sealed.tag[..],
    ] {
        ctx.update(part);
    }
    ctx.finish().as_ref().try_into().expect("32-byte digest")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(byte: u8) -> SecretBytes {
        SecretBytes::new(vec![byte; KEY_LEN])
    }

    fn parts(s: &Sealed) -> Ciphertext<'_> {
        Ciphertext {
            metadata: &s.metadata,
            iv: &s.iv,
            ciphertext: &s.ciphertext,
            tag: &s.tag,
        }
    }

    #[test]
    fn what_is_sealed_opens_with_the_same_key_and_aad_only() {
        let key = KeyId(uuid::Uuid::from_u128(7));
        let sealed = seal(&material(1), key, 3, b"data key", b"context");
        assert_eq!(sealed.ciphertext.len(), 8);
        assert_eq!(
            CiphertextMetadata::parse(&sealed.metadata).unwrap().version,
            3
        );
        let opened = open(&material(1), key, parts(&sealed), b"context").unwrap();
        assert_eq!(opened.expose_secret(), b"data key");

        let other_key = KeyId(uuid::Uuid::from_u128(8));
        assert!(open(&material(2), key, parts(&sealed), b"context").is_err());
        assert!(open(&material(1), other_key, parts(&sealed), b"context").is_err());
        assert!(open(&material(1), key, parts(&sealed), b"other").is_err());
        assert!(open(&material(1), key, parts(&sealed), b"").is_err());
        for field in 0..4 {
            let mut t = sealed.clone();
            match field {
                0 => t.metadata[19] ^= 1,
                1 => t.iv[0] ^= 1,
                2 => t.ciphertext[0] ^= 1,
                _ => t.tag[15] ^= 1,
            }
            assert!(
                open(&material(1), key, parts(&t), b"context").is_err(),
                "{field}"
            );
        }
        // Metadata moved into the AAD (the specification's example of why the
        // lengths are bound) does not decrypt.
        let none = Ciphertext {
            metadata: &[],
            ..parts(&sealed)
        };
        assert!(open(&material(1), key, none, b"context").is_err());
    }

    #[test]
    fn every_encryption_is_fresh_and_the_limits_are_the_specifications() {
        let key = KeyId(uuid::Uuid::from_u128(7));
        let a = seal(&material(1), key, 1, &[0; MAX_PLAINTEXT], &[1; MAX_AAD]);
        let b = seal(&material(1), key, 1, &[0; MAX_PLAINTEXT], &[1; MAX_AAD]);
        assert_ne!(a.metadata, b.metadata);
        assert_ne!(a.iv, b.iv);
        assert_ne!(a.ciphertext, b.ciphertext);
        let opened = open(&material(1), key, parts(&a), &[1; MAX_AAD]).unwrap();
        assert_eq!(opened.expose_secret().len(), MAX_PLAINTEXT);
        assert!(CiphertextMetadata::parse(&[0; METADATA_LEN]).is_none());
        assert!(CiphertextMetadata::parse(&a.metadata[..19]).is_none());
        let sixteen_byte_iv = Ciphertext {
            iv: &[0; 16],
            ..parts(&a)
        };
        assert!(open(&material(1), key, sixteen_byte_iv, &[1; MAX_AAD]).is_err());
    }

    /// Appendix C's worked example: 33 bytes of AAD, 13 of metadata, 12 of IV, 12
    /// of ciphertext and a 16-byte tag hash to the value the specification gives.
    #[test]
    fn the_integrity_value_is_the_specifications() {
        let hex = |s: &str| hex::decode(s.replace(' ', "")).unwrap();
        let aad = b"project=nile,department=marketing";
        let metadata = b"key_version=1";
        let iv = hex("1c ca e5 47 0f 39 70 02 54 77 90 31");
        let ciphertext = hex("82 1c 64 2b 5b 71 78 33 67 de af 18");
        let tag = hex("bc 1c 4d da 77 07 d6 81 24 47 c5 95 5e 99 b2 61");
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [&aad[..], &metadata[..], &iv, &ciphertext, &tag] {
            ctx.update(part);
        }
        assert_eq!(
            hex::encode(ctx.finish().as_ref()),
            "a8703f2260bd8791ec2d15ea0b23e65a0631eedcf2a13a65cc82db3f47cf5ec7"
        );
        // And integrity_value hashes the same fields in the same order.
        let sealed = seal(&material(1), KeyId(uuid::Uuid::from_u128(1)), 1, b"x", aad);
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [
            &aad[..],
            &sealed.metadata,
            &sealed.iv,
            &sealed.ciphertext,
            &sealed.tag,
        ] {
            ctx.update(part);
        }
        assert_eq!(&integrity_value(aad, &sealed)[..], ctx.finish().as_ref());
    }
}
