//! Transit's key types and what the non-encrypting ones do: `sign` and `verify`
//! with ECDSA, Ed25519 and RSA keys, `hmac` (and `verify` of an HMAC) with HMAC
//! keys — each a kcm service key of the matching spec, so one core call (Sign,
//! Verify, GenerateMac, VerifyMac) does the work and decides who may.
//!
//! Signatures and MACs are Vault's `vault:v<N>:<base64>`; N is the version that
//! signed. Verifying tries every version of the key, as kcm's Verify does, so N
//! is read but not needed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kcm_core::error::ErrorKind;
use kcm_core::keyspec::{KeySpec, MessageType, SigningAlgorithm};
use kcm_core::service::KeyRef;
use serde_json::{json, Value};

use super::Transit;
use crate::error::VaultError;
use crate::request::Request;

/// A Transit key type: Vault's name, the kcm key spec and usage it is.
pub struct KeyType {
    /// Vault's name (`aes256-gcm96`, `ecdsa-p256`, …).
    pub name: &'static str,
    /// The kcm key spec (AWS's name).
    pub spec: &'static str,
    /// The kcm key usage (AWS's name).
    pub usage: &'static str,
}

/// The key types kcm's Transit serves.
pub const KEY_TYPES: [KeyType; 9] = [
    key_type("aes256-gcm96", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    key_type("ecdsa-p256", "ECC_NIST_P256", "SIGN_VERIFY"),
    key_type("ecdsa-p384", "ECC_NIST_P384", "SIGN_VERIFY"),
    key_type("ecdsa-p521", "ECC_NIST_P521", "SIGN_VERIFY"),
    key_type("ed25519", "ECC_NIST_EDWARDS25519", "SIGN_VERIFY"),
    key_type("rsa-2048", "RSA_2048", "SIGN_VERIFY"),
    key_type("rsa-3072", "RSA_3072", "SIGN_VERIFY"),
    key_type("rsa-4096", "RSA_4096", "SIGN_VERIFY"),
    key_type("hmac", "HMAC_256", "GENERATE_VERIFY_MAC"),
];

const fn key_type(name: &'static str, spec: &'static str, usage: &'static str) -> KeyType {
    KeyType { name, spec, usage }
}

/// The key type named `name`, or a refusal listing those served.
pub fn key_type_named(name: &str) -> Result<&'static KeyType, VaultError> {
    KEY_TYPES.iter().find(|t| t.name == name).ok_or_else(|| {
        let served: Vec<&str> = KEY_TYPES.iter().map(|t| t.name).collect();
        VaultError::invalid(format!(
            "key type {name:?} is not served by kcm's Transit; these are: {}",
            served.join(", ")
        ))
    })
}

/// The signing algorithm for a key of `spec`, from Vault's `hash_algorithm`
/// (default: the curve's own hash for ECDSA, SHA-256 for RSA) and
/// `signature_algorithm` (RSA: `pss`, the default, or `pkcs1v15`).
pub fn signing_algorithm(
    spec: KeySpec,
    hash: Option<&str>,
    scheme: Option<&str>,
) -> Result<SigningAlgorithm, VaultError> {
    use SigningAlgorithm::*;
    let hash_bits = |default: u32| match hash {
        None => Ok(default),
        Some("sha2-256") => Ok(256),
        Some("sha2-384") => Ok(384),
        Some("sha2-512") => Ok(512),
        Some(other) => Err(VaultError::invalid(format!(
            "hash_algorithm {other:?} is not served: sha2-256, sha2-384 or sha2-512"
        ))),
    };
    let pick = |bits, [a, b, c]: [SigningAlgorithm; 3]| match bits {
        256 => a,
        384 => b,
        _ => c,
    };
    Ok(match spec {
        KeySpec::EccNistP256 => pick(hash_bits(256)?, [EcdsaSha256, EcdsaSha384, EcdsaSha512]),
        KeySpec::EccNistP384 => pick(hash_bits(384)?, [EcdsaSha256, EcdsaSha384, EcdsaSha512]),
        KeySpec::EccNistP521 => pick(hash_bits(512)?, [EcdsaSha256, EcdsaSha384, EcdsaSha512]),
        KeySpec::EccNistEdwards25519 => {
            if hash.is_some_and(|h| h != "none" && h != "sha2-512") {
                return Err(VaultError::invalid(
                    "an ed25519 key signs the message itself: no hash_algorithm",
                ));
            }
            Ed25519Sha512
        }
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let bits = hash_bits(256)?;
            match scheme.unwrap_or("pss") {
                "pss" => pick(bits, [RsassaPssSha256, RsassaPssSha384, RsassaPssSha512]),
                "pkcs1v15" => pick(
                    bits,
                    [RsassaPkcs1Sha256, RsassaPkcs1Sha384, RsassaPkcs1Sha512],
                ),
                other => {
                    return Err(VaultError::invalid(format!(
                        "signature_algorithm {other:?} is neither pss nor pkcs1v15"
                    )))
                }
            }
        }
        other => {
            return Err(VaultError::invalid(format!(
                "a {other} key does not sign: create one of type ecdsa-p256, ed25519 or rsa-2048"
            )))
        }
    })
}

/// Checks the hash an `hmac` request names (path or `algorithm`) against the
/// key's own: an HMAC key of kcm has one hash.
pub fn check_hmac_hash(spec: KeySpec, asked: Option<&str>) -> Result<(), VaultError> {
    let own = match spec {
        KeySpec::Hmac224 => "sha2-224",
        KeySpec::Hmac256 => "sha2-256",
        KeySpec::Hmac384 => "sha2-384",
        KeySpec::Hmac512 => "sha2-512",
        other => {
            return Err(VaultError::invalid(format!(
                "a {other} key makes no HMAC in kcm: create a key of type hmac"
            )))
        }
    };
    match asked {
        Some(a) if a != own => Err(VaultError::invalid(format!(
            "this HMAC key hashes with {own}, not {a}"
        ))),
        _ => Ok(()),
    }
}

/// A signature or MAC in Vault's form: `vault:v<N>:<base64>`.
pub fn vault_signature(version: u32, bytes: &[u8]) -> String {
    format!("vault:v{version}:{}", STANDARD.encode(bytes))
}

/// The bytes of a Vault signature or MAC `vault:v<N>:<base64>`.
pub fn signature_bytes(text: &str) -> Result<Vec<u8>, VaultError> {
    let invalid = || VaultError::invalid("invalid signature: not vault:v<N>:<base64>");
    let rest = text.strip_prefix("vault:v").ok_or_else(invalid)?;
    let (version, payload) = rest.split_once(':').ok_or_else(invalid)?;
    version.parse::<u32>().map_err(|_| invalid())?;
    STANDARD.decode(payload).map_err(|_| invalid())
}

/// How one request signs: the algorithm and how `input` is read, from the
/// request's top-level fields and the path's hash.
#[derive(Clone, Copy)]
pub struct Signing {
    algorithm: SigningAlgorithm,
    message_type: MessageType,
}

impl Signing {
    /// Reads `hash_algorithm` (the path's wins), `signature_algorithm`,
    /// `prehashed` and `marshaling_algorithm` for a key of `spec`.
    pub fn of(
        spec: KeySpec,
        request: &Request,
        path_hash: Option<&str>,
    ) -> Result<Self, VaultError> {
        let hash = match path_hash {
            Some(h) => Some(h),
            None => request.text("hash_algorithm")?,
        };
        if request
            .text("marshaling_algorithm")?
            .is_some_and(|m| m != "asn1")
        {
            return Err(VaultError::invalid(
                "marshaling_algorithm: kcm's ECDSA signatures are asn1 (DER)",
            ));
        }
        let algorithm = signing_algorithm(spec, hash, request.text("signature_algorithm")?)?;
        let prehashed = request.flag("prehashed")? == Some(true);
        if prehashed && algorithm == SigningAlgorithm::Ed25519Sha512 {
            return Err(VaultError::invalid(
                "an ed25519 key signs the message, not a digest",
            ));
        }
        Ok(Self {
            algorithm,
            message_type: if prehashed {
                MessageType::Digest
            } else {
                MessageType::Raw
            },
        })
    }
}

fn input_of(item: &Request) -> Result<zeroize::Zeroizing<Vec<u8>>, VaultError> {
    item.base64("input")?
        .ok_or_else(|| VaultError::invalid("missing input"))
}

impl Transit<'_> {
    /// The version the last key use of this request noted (the one that signed).
    fn used_version(&self) -> u32 {
        self.caller
            .noted_keys()
            .last()
            .and_then(|n| n.version)
            .unwrap_or(1)
    }

    /// `sign`: one item's `input` signed.
    pub(super) async fn sign(
        &self,
        key: KeyRef,
        item: Request,
        how: Signing,
    ) -> Result<Value, VaultError> {
        let input = input_of(&item)?;
        let signed = self
            .service
            .sign(self.caller, &key, how.algorithm, how.message_type, &input)
            .await?;
        let version = self.used_version();
        Ok(json!({
            "signature": vault_signature(version, &signed.signature),
            "key_version": version,
        }))
    }

    /// `verify` of a signature: `valid` false for one that does not verify.
    pub(super) async fn verify(
        &self,
        key: KeyRef,
        item: Request,
        how: Option<Signing>,
    ) -> Result<Value, VaultError> {
        let input = input_of(&item)?;
        let checked = if let Some(mac) = item.text("hmac")? {
            let mac = signature_bytes(mac)?;
            let spec = self
                .service
                .describe_key(self.caller, &key)
                .await?
                .record
                .spec;
            let algorithm = spec
                .mac_algorithm()
                .ok_or_else(|| VaultError::invalid(format!("a {spec} key makes no HMAC")))?;
            self.service
                .verify_mac(self.caller, &key, algorithm, &input, &mac)
                .await
        } else {
            let signature = item
                .text("signature")?
                .ok_or_else(|| VaultError::invalid("missing signature or hmac to verify"))?;
            let signature = signature_bytes(signature)?;
            let how = how.ok_or_else(|| VaultError::invalid("this key does not sign"))?;
            self.service
                .verify(
                    self.caller,
                    &key,
                    how.algorithm,
                    how.message_type,
                    &input,
                    &signature,
                )
                .await
        };
        match checked {
            Ok(_) => Ok(json!({ "valid": true })),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::InvalidSignature | ErrorKind::InvalidMac
                ) =>
            {
                Ok(json!({ "valid": false }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `hmac`: one item's `input` under an HMAC key (the key's own hash).
    pub(super) async fn hmac(
        &self,
        key: KeyRef,
        item: Request,
        spec: KeySpec,
    ) -> Result<Value, VaultError> {
        let input = input_of(&item)?;
        let algorithm = spec.mac_algorithm().ok_or_else(|| {
            VaultError::invalid(format!(
                "a {spec} key makes no HMAC in kcm: create a key of type hmac"
            ))
        })?;
        let made = self
            .service
            .generate_mac(self.caller, &key, algorithm, &input)
            .await?;
        let version = self.used_version();
        Ok(json!({ "hmac": vault_signature(version, &made.signature), "key_version": version }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaults_hashes_and_schemes_pick_kcms_algorithms() {
        use SigningAlgorithm::*;
        let pick = |spec, hash, scheme| signing_algorithm(spec, hash, scheme).unwrap();
        assert_eq!(pick(KeySpec::EccNistP256, None, None), EcdsaSha256);
        assert_eq!(pick(KeySpec::EccNistP384, None, None), EcdsaSha384);
        assert_eq!(pick(KeySpec::Rsa2048, None, None), RsassaPssSha256);
        assert_eq!(
            pick(KeySpec::Rsa4096, Some("sha2-512"), Some("pkcs1v15")),
            RsassaPkcs1Sha512
        );
        assert_eq!(
            pick(KeySpec::EccNistEdwards25519, None, None),
            Ed25519Sha512
        );
        assert!(signing_algorithm(KeySpec::Rsa2048, Some("md5"), None).is_err());
        assert!(signing_algorithm(KeySpec::Rsa2048, None, Some("raw")).is_err());
        assert!(signing_algorithm(KeySpec::SymmetricDefault, None, None).is_err());
        assert!(key_type_named("chacha20-poly1305").is_err());
        assert_eq!(key_type_named("ecdsa-p384").unwrap().spec, "ECC_NIST_P384");
    }

    #[test]
    fn signatures_read_back() {
        let text = vault_signature(3, b"sig");
        assert_eq!(signature_bytes(&text).unwrap(), b"sig");
        for bad in ["sig", "vault:vx:c2ln", "vault:v1:!!"] {
            assert!(signature_bytes(bad).is_err(), "{bad}");
        }
    }
}
