//! Stored material → `VersionKey`, once per version when a chain loads.

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsBigEndian, AsDer, PublicKeyX509Der};
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, PqdsaKeyPair};
use kcm_awslc_ext::ed25519ph;

use super::family::Family;
use super::{internal, VersionKey};
use crate::error::Result;
use crate::keyspec::{KeySpec, KeyUsage};
use crate::secret::SecretBytes;

impl VersionKey {
    /// Parses stored material of a key of `spec` and `usage`.
    pub(crate) fn parse(spec: KeySpec, usage: KeyUsage, material: &[u8]) -> Result<Self> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            internal(&format!("stored {spec} material does not parse: {e}"))
        };
        Ok(match Family::of(spec) {
            Family::Aes => VersionKey::Aes(SecretBytes::copy_from(material)),
            Family::Hmac { algorithm, .. } => {
                VersionKey::Hmac(Box::new(hmac::Key::new(algorithm, material)))
            }
            Family::Rsa(_) if usage == KeyUsage::EncryptDecrypt => {
                let private = PrivateDecryptingKey::from_pkcs8(material).map_err(rejected)?;
                let public_key = private.public_key();
                let public_der = spki(&public_key)?;
                VersionKey::RsaDecrypt {
                    public: OaepPublicEncryptingKey::new(public_key)
                        .map_err(|_| internal("RSA public key unusable for OAEP"))?,
                    private: OaepPrivateDecryptingKey::new(private)
                        .map_err(|_| internal("RSA private key unusable for OAEP"))?,
                    public_der,
                }
            }
            Family::Rsa(_) => {
                let (pair, public) =
                    with_spki(signature::RsaKeyPair::from_pkcs8(material).map_err(rejected)?)?;
                VersionKey::RsaSign { pair, public }
            }
            Family::Ecc {
                agreement: Some(algorithm),
                ..
            } if usage == KeyUsage::KeyAgreement => {
                let private = agreement::PrivateKey::from_private_key_der(algorithm, material)
                    .map_err(rejected)?;
                let public = private
                    .compute_public_key()
                    .map_err(|_| internal("cannot compute an ECDH public key"))
                    .and_then(|public| spki(&public))?;
                VersionKey::Ecdh {
                    private,
                    algorithm,
                    public,
                }
            }
            Family::Ecc {
                signing,
                verification,
                ..
            } => {
                let (pair, public) =
                    with_spki(EcdsaKeyPair::from_pkcs8(signing, material).map_err(rejected)?)?;
                VersionKey::Ecdsa {
                    pair,
                    verification,
                    public,
                }
            }
            Family::Ed25519 => {
                let (pair, public) =
                    with_spki(Ed25519KeyPair::from_pkcs8(material).map_err(rejected)?)?;
                let prehash = ed25519ph_key(&pair)?;
                VersionKey::Ed25519 {
                    pair,
                    prehash,
                    public,
                }
            }
            Family::MlDsa {
                signing,
                verification,
            } => {
                let (pair, public) =
                    with_spki(PqdsaKeyPair::from_pkcs8(signing, material).map_err(rejected)?)?;
                VersionKey::MlDsa {
                    pair,
                    verification,
                    public,
                    pkcs8: SecretBytes::copy_from(material),
                }
            }
        })
    }
}

/// A public key as SubjectPublicKeyInfo DER, the form GetPublicKey returns.
fn spki(public: &impl AsDer<PublicKeyX509Der<'static>>) -> Result<Vec<u8>> {
    public
        .as_der()
        .map(|der| der.as_ref().to_vec())
        .map_err(|_| internal("cannot encode a key"))
}

/// A signing key pair with its public key as SubjectPublicKeyInfo DER.
fn with_spki<P>(pair: P) -> Result<(P, Vec<u8>)>
where
    P: KeyPair,
    P::PublicKey: AsDer<PublicKeyX509Der<'static>>,
{
    let public = spki(pair.public_key())?;
    Ok((pair, public))
}

/// The Ed25519ph form of `pair`, made from its seed; its public key must be the
/// pair's (it is, for any key aws-lc-rs parsed: both derive it from the seed).
fn ed25519ph_key(pair: &Ed25519KeyPair) -> Result<ed25519ph::PrivateKey> {
    let seed = pair
        .seed()
        .and_then(|s| s.as_be_bytes())
        .map_err(|_| internal("cannot read an Ed25519 seed"))?;
    let seed: &[u8; ed25519ph::SEED_LEN] = seed
        .as_ref()
        .try_into()
        .map_err(|_| internal("an Ed25519 seed that is not 32 bytes"))?;
    let key = ed25519ph::PrivateKey::from_seed(seed);
    if key.public_key().as_slice() != pair.public_key().as_ref() {
        return Err(internal("the Ed25519 seed does not match its public key"));
    }
    Ok(key)
}
