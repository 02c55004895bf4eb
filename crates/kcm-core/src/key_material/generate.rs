//! New material for a version, and data key pairs (GenerateDataKeyPair).

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, PqdsaKeyPair, RsaKeyPair};

use super::family::Family;
use super::{internal, VersionKey};
use crate::error::{Error, Result};
use crate::keyspec::{KeySpec, KeyUsage};
use crate::secret::SecretBytes;

/// New material for a version of a key of `spec` (RSA generation takes up to a
/// second or so: call it off the async threads).
pub fn generate(spec: KeySpec) -> Result<SecretBytes> {
    match Family::of(spec) {
        Family::Aes => Ok(SecretBytes::random(crate::crypto::KEY_LEN)),
        Family::Hmac { key_len, .. } => Ok(SecretBytes::random(key_len)),
        Family::Rsa(size) => {
            let pair =
                RsaKeyPair::generate(size).map_err(|_| internal("RSA key generation failed"))?;
            // A `Pkcs8V1Der` derefs to its bytes rather than being `AsRef` them.
            let der = AsDer::<Pkcs8V1Der>::as_der(&pair);
            secret_der(der.as_deref().map_err(|e| *e))
        }
        Family::Ecc { signing, .. } => {
            let pair = EcdsaKeyPair::generate(signing)
                .map_err(|_| internal("EC key generation failed"))?;
            secret_der(pair.to_pkcs8v1())
        }
        Family::Ed25519 => {
            let pair = Ed25519KeyPair::generate()
                .map_err(|_| internal("Ed25519 key generation failed"))?;
            secret_der(pair.to_pkcs8v1())
        }
        Family::MlDsa { signing, .. } => {
            let pair = PqdsaKeyPair::generate(signing)
                .map_err(|_| internal("ML-DSA key generation failed"))?;
            secret_der(pair.to_pkcs8v1())
        }
    }
}

/// A private key's PKCS#8 encoding, copied into [`SecretBytes`].
fn secret_der<T: AsRef<[u8]>>(
    doc: std::result::Result<T, aws_lc_rs::error::Unspecified>,
) -> Result<SecretBytes> {
    doc.map(|d| SecretBytes::copy_from(d.as_ref()))
        .map_err(|_| internal("cannot encode a private key"))
}

/// A data key pair of `spec` (one of [`crate::keyspec::DATA_KEY_PAIR_SPECS`]): the
/// private key as PKCS#8 DER and the public key as SubjectPublicKeyInfo DER.
pub fn generate_data_key_pair(spec: KeySpec) -> Result<(SecretBytes, Vec<u8>)> {
    let private = generate(spec)?;
    let parsed = VersionKey::parse(spec, KeyUsage::SignVerify, private.expose_secret())?;
    let public = parsed
        .public_key()
        .ok_or_else(|| internal("a key pair without a public key"))?
        .to_vec();
    Ok((private, public))
}

/// [`generate`], on a blocking thread for RSA (whose generation must not stall the
/// async threads that serve other requests).
pub(crate) async fn generate_off_thread(spec: KeySpec) -> Result<SecretBytes> {
    off_thread_if_rsa(spec, generate).await
}

/// [`generate_data_key_pair`], on a blocking thread for RSA.
pub(crate) async fn generate_data_key_pair_off_thread(
    spec: KeySpec,
) -> Result<(SecretBytes, Vec<u8>)> {
    off_thread_if_rsa(spec, generate_data_key_pair).await
}

async fn off_thread_if_rsa<T: Send + 'static>(
    spec: KeySpec,
    make: fn(KeySpec) -> Result<T>,
) -> Result<T> {
    if !spec.is_rsa() {
        return make(spec);
    }
    tokio::task::spawn_blocking(move || make(spec))
        .await
        .map_err(|e| Error::internal(format!("key generation task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_key_pairs_have_matching_public_keys() {
        for spec in [KeySpec::EccSecgP256k1, KeySpec::EccNistEdwards25519] {
            let (private, public) = generate_data_key_pair(spec).unwrap();
            let parsed =
                VersionKey::parse(spec, KeyUsage::SignVerify, private.expose_secret()).unwrap();
            assert_eq!(parsed.public_key().unwrap(), public.as_slice());
        }
    }
}
