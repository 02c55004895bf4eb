//! Bring your own key (BYOK): the wrapping a customer applies to their own key
//! material before handing it to kcm, and undoing it.
//!
//! kcm issues an RSA key pair per import; the customer encrypts 32 bytes of AES-256
//! key material to its public key with one of AWS KMS's two schemes (so the same
//! `openssl` recipes and AWS tooling work):
//!
//! - `RSAES_OAEP_SHA_256`: RSA-OAEP with SHA-256 and MGF1-SHA-256 over the material.
//! - `RSA_AES_KEY_WRAP_SHA_256`: a fresh AES-256 key encrypted with RSA-OAEP-SHA-256,
//!   followed by the material wrapped with that key by AES key wrap with padding
//!   (RFC 5649, `openssl enc -id-aes256-wrap-pad`).

use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256,
};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

/// Length of the key material a customer imports (AES-256).
pub const MATERIAL_LEN: usize = 32;

/// How the customer wraps their key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrappingAlgorithm {
    /// RSA-OAEP (SHA-256, MGF1 SHA-256) of the material itself.
    RsaesOaepSha256,
    /// RSA-OAEP-SHA-256 of an ephemeral AES-256 key, then AES-KWP of the material.
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    /// Parses the AWS name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "RSAES_OAEP_SHA_256" => Ok(Self::RsaesOaepSha256),
            "RSA_AES_KEY_WRAP_SHA_256" => Ok(Self::RsaAesKeyWrapSha256),
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "wrapping algorithm {other:?} is not supported: use RSAES_OAEP_SHA_256 \
                     or RSA_AES_KEY_WRAP_SHA_256"
                ),
            )),
        }
    }

    /// The AWS name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            Self::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
        }
    }
}

/// Size of the RSA wrapping key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrappingKeySpec {
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
}

impl WrappingKeySpec {
    /// Parses the AWS name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "RSA_3072" => Ok(Self::Rsa3072),
            "RSA_4096" => Ok(Self::Rsa4096),
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!("wrapping key spec {other:?} is not supported: use RSA_3072 or RSA_4096"),
            )),
        }
    }

    /// The AWS name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
        }
    }
}

/// A fresh RSA key pair for one import (CPU-heavy: call it off the async workers).
pub fn generate_wrapping_key(spec: WrappingKeySpec) -> Result<PrivateDecryptingKey> {
    let size = match spec {
        WrappingKeySpec::Rsa3072 => KeySize::Rsa3072,
        WrappingKeySpec::Rsa4096 => KeySize::Rsa4096,
    };
    PrivateDecryptingKey::generate(size)
        .map_err(|_| Error::internal("RSA wrapping key generation failed"))
}

/// The public half of `key` as DER (SubjectPublicKeyInfo), as the customer needs it.
pub fn public_key_der(key: &PrivateDecryptingKey) -> Result<Vec<u8>> {
    use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
    let der: PublicKeyX509Der<'static> = key
        .public_key()
        .as_der()
        .map_err(|_| Error::internal("cannot encode the wrapping public key"))?;
    Ok(der.as_ref().to_vec())
}

/// Undoes the customer's wrapping. Anything but exactly [`MATERIAL_LEN`] bytes of
/// material, correctly wrapped to `key` with `algorithm`, is refused with the same
/// message (the caller learns nothing about which step failed).
pub fn unwrap_material(
    algorithm: WrappingAlgorithm,
    key: &PrivateDecryptingKey,
    wrapped: &[u8],
) -> Result<SecretBytes> {
    let refused = || {
        Error::new(
            ErrorKind::InvalidCiphertext,
            format!(
                "the wrapped key material does not unwrap: it must be {MATERIAL_LEN} bytes of \
                 AES-256 key material wrapped with {} to this import's public key",
                algorithm.as_str()
            ),
        )
    };
    let rsa = OaepPrivateDecryptingKey::new(key.clone()).map_err(|_| refused())?;
    let rsa_len = rsa.key_size_bytes();
    let mut buffer = SecretBytes::new(vec![0; rsa.min_output_size()]);
    let oaep = |ciphertext: &[u8], out: &mut SecretBytes| -> Result<usize> {
        let out = out.expose_secret_mut();
        rsa.decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, out, None)
            .map(|plain| plain.len())
            .map_err(|_| refused())
    };
    let material = match algorithm {
        WrappingAlgorithm::RsaesOaepSha256 => {
            let n = oaep(wrapped, &mut buffer)?;
            SecretBytes::copy_from(&buffer.expose_secret()[..n])
        }
        WrappingAlgorithm::RsaAesKeyWrapSha256 => {
            if wrapped.len() <= rsa_len {
                return Err(refused());
            }
            let (wrapped_kek, wrapped_material) = wrapped.split_at(rsa_len);
            let n = oaep(wrapped_kek, &mut buffer)?;
            if n != 32 {
                return Err(refused());
            }
            let kek = AesKek::new(&AES_256, &buffer.expose_secret()[..n]).map_err(|_| refused())?;
            let mut out = SecretBytes::new(vec![0; wrapped_material.len()]);
            let len = kek
                .unwrap_with_padding(wrapped_material, out.expose_secret_mut())
                .map_err(|_| refused())?
                .len();
            SecretBytes::copy_from(&out.expose_secret()[..len])
        }
    };
    if material.len() != MATERIAL_LEN {
        return Err(refused());
    }
    Ok(material)
}

/// A check value of imported material: HMAC-SHA-256 keyed by the material over a
/// fixed label, hex. It tells whether two imports bring the same material and
/// reveals nothing about it.
pub fn material_check(material: &SecretBytes) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, material.expose_secret());
    hex::encode(hmac::sign(&key, b"kcm imported key material check v1").as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::OaepPublicEncryptingKey;

    fn oaep_to(key: &PrivateDecryptingKey, plaintext: &[u8]) -> Vec<u8> {
        let public = OaepPublicEncryptingKey::new(key.public_key()).unwrap();
        let mut out = vec![0; public.ciphertext_size()];
        public
            .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn both_schemes_unwrap_and_anything_else_is_refused() {
        let key = generate_wrapping_key(WrappingKeySpec::Rsa3072).unwrap();
        let material = [7u8; MATERIAL_LEN];

        let wrapped = oaep_to(&key, &material);
        let got = unwrap_material(WrappingAlgorithm::RsaesOaepSha256, &key, &wrapped).unwrap();
        assert_eq!(got.expose_secret(), &material);

        let kek = [9u8; 32];
        let mut kwp = vec![0; MATERIAL_LEN + 16];
        let kwp = AesKek::new(&AES_256, &kek)
            .unwrap()
            .wrap_with_padding(&material, &mut kwp)
            .unwrap()
            .to_vec();
        let combined = [oaep_to(&key, &kek), kwp.clone()].concat();
        let got = unwrap_material(WrappingAlgorithm::RsaAesKeyWrapSha256, &key, &combined).unwrap();
        assert_eq!(got.expose_secret(), &material);

        // The wrong scheme, a flipped byte, the wrong size, another key: refused alike.
        let other = generate_wrapping_key(WrappingKeySpec::Rsa3072).unwrap();
        let mut tampered = combined.clone();
        *tampered.last_mut().unwrap() ^= 1;
        for (algorithm, key, blob) in [
            (
                WrappingAlgorithm::RsaAesKeyWrapSha256,
                &key,
                wrapped.clone(),
            ),
            (WrappingAlgorithm::RsaesOaepSha256, &key, combined.clone()),
            (WrappingAlgorithm::RsaAesKeyWrapSha256, &key, tampered),
            (
                WrappingAlgorithm::RsaesOaepSha256,
                &key,
                oaep_to(&key, &[7u8; 16]),
            ),
            (WrappingAlgorithm::RsaesOaepSha256, &other, wrapped.clone()),
            (WrappingAlgorithm::RsaesOaepSha256, &key, Vec::new()),
        ] {
            let err = unwrap_material(algorithm, key, &blob).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidCiphertext);
        }
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for a in [
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingAlgorithm::RsaAesKeyWrapSha256,
        ] {
            assert_eq!(WrappingAlgorithm::parse(a.as_str()).unwrap(), a);
        }
        for s in [WrappingKeySpec::Rsa3072, WrappingKeySpec::Rsa4096] {
            assert_eq!(WrappingKeySpec::parse(s.as_str()).unwrap(), s);
        }
        assert!(WrappingAlgorithm::parse("RSAES_PKCS1_V1_5").is_err());
        assert!(WrappingKeySpec::parse("RSA_2048").is_err());
    }
}
