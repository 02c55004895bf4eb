//! RSA Encrypt and Decrypt: RSAES-OAEP with SHA-1 or SHA-256.

use aws_lc_rs::rsa;

use super::{internal, VersionKey};
use crate::error::{Error, Result};
use crate::keyspec::EncryptionAlgorithm;
use crate::secret::SecretBytes;

impl VersionKey {
    /// The largest plaintext RSAES-OAEP with `algorithm` takes under this key.
    pub(crate) fn max_oaep_plaintext(&self, algorithm: EncryptionAlgorithm) -> usize {
        match self {
            VersionKey::RsaDecrypt { public, .. } => {
                public.max_plaintext_size(oaep_algorithm(algorithm))
            }
            _ => 0,
        }
    }

    /// RSAES-OAEP encryption under this version's public key.
    pub(crate) fn oaep_encrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let VersionKey::RsaDecrypt { public, .. } = self else {
            return Err(internal(
                "OAEP with a key that is not an RSA encryption key",
            ));
        };
        let mut out = vec![0u8; public.ciphertext_size()];
        let len = public
            .encrypt(oaep_algorithm(algorithm), plaintext, &mut out, None)
            .map_err(|_| Error::invalid("the plaintext is too long for this RSA key"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// RSAES-OAEP decryption; `None` when the ciphertext does not decrypt under
    /// this version (another version's, altered, or another algorithm's).
    pub(crate) fn oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Option<SecretBytes> {
        let VersionKey::RsaDecrypt { private, .. } = self else {
            return None;
        };
        let mut out = SecretBytes::new(vec![0u8; private.key_size_bytes()]);
        let len = private
            .decrypt(
                oaep_algorithm(algorithm),
                ciphertext,
                out.expose_secret_mut(),
                None,
            )
            .ok()?
            .len();
        Some(SecretBytes::copy_from(&out.expose_secret()[..len]))
    }
}

fn oaep_algorithm(algorithm: EncryptionAlgorithm) -> &'static rsa::OaepAlgorithm {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => &rsa::OAEP_SHA1_MGF1SHA1,
        _ => &rsa::OAEP_SHA256_MGF1SHA256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_material::new_version;
    use crate::keyspec::{KeySpec, KeyUsage};

    #[test]
    fn rsa_oaep_round_trips_and_refuses_other_algorithm() {
        let key = new_version(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
        assert_eq!(
            key.max_oaep_plaintext(EncryptionAlgorithm::RsaesOaepSha1),
            214
        );
        assert_eq!(
            key.max_oaep_plaintext(EncryptionAlgorithm::RsaesOaepSha256),
            190
        );
        let c = key
            .oaep_encrypt(EncryptionAlgorithm::RsaesOaepSha256, b"secret")
            .unwrap();
        let p = key
            .oaep_decrypt(EncryptionAlgorithm::RsaesOaepSha256, &c)
            .unwrap();
        assert_eq!(p.expose_secret(), b"secret");
        assert!(key
            .oaep_decrypt(EncryptionAlgorithm::RsaesOaepSha1, &c)
            .is_none());
    }
}
