//! Cryptography with a managed object's own material, inside kcm: what KMIP's
//! Encrypt, Decrypt, Sign, Signature Verify, MAC and MAC Verify ask of a key the
//! client stored or had generated, whose material need never leave the server.
//!
//! Unlike a service key's ciphertexts, nothing here is kcm's own format: the caller
//! names the mode and supplies or receives the IV, as the protocol has it. What is
//! offered is what aws-lc-rs does well and a storage system asks for: AES-GCM
//! (12-byte IV, 16-byte tag) and AES-CBC with PKCS#5 padding under a symmetric key;
//! HMAC-SHA-256/384/512 under a symmetric key; RSA PKCS#1 v1.5 and PSS, and ECDSA
//! (P-256, P-384, P-521) under a private key (PKCS#8, DER or PEM) and its public key
//! (SubjectPublicKeyInfo, DER or PEM, or the private key itself).

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

/// The largest input one computation takes (the bound of a KMIP message's data).
pub const MAX_DATA: usize = 64 * 1024;

/// A block cipher mode of [`Computation::Encrypt`] and [`Computation::Decrypt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherMode {
    /// AES-GCM: a 12-byte IV, a 16-byte tag, additional authenticated data.
    Gcm,
    /// AES-CBC with PKCS#5 (PKCS#7) padding: a 16-byte IV.
    CbcPkcs5,
}

/// A hash of a signature or MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// A signature scheme of [`Computation::Sign`] and [`Computation::Verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(Hash),
    /// RSASSA-PSS (salt as long as the hash).
    RsaPss(Hash),
    /// ECDSA, the signature ASN.1 DER encoded.
    Ecdsa(Hash),
}

/// What to compute with an object's material.
#[derive(Debug)]
pub enum Computation {
    /// Encrypts `data`; with no `iv`, the server draws a random one and returns it.
    Encrypt {
        /// The mode.
        mode: CipherMode,
        /// The IV the caller chose.
        iv: Option<Vec<u8>>,
        /// Additional authenticated data (GCM only).
        aad: Vec<u8>,
        /// The plaintext.
        data: SecretBytes,
    },
    /// Decrypts `data`.
    Decrypt {
        /// The mode.
        mode: CipherMode,
        /// The IV it was encrypted with.
        iv: Vec<u8>,
        /// Additional authenticated data (GCM only).
        aad: Vec<u8>,
        /// The tag (GCM only).
        tag: Vec<u8>,
        /// The ciphertext.
        data: Vec<u8>,
    },
    /// Signs `data` with a private key.
    Sign {
        /// The scheme.
        scheme: SignatureScheme,
        /// The message.
        data: Vec<u8>,
    },
    /// Checks `signature` over `data` with a public or private key.
    Verify {
        /// The scheme.
        scheme: SignatureScheme,
        /// The message.
        data: Vec<u8>,
        /// The signature.
        signature: Vec<u8>,
    },
    /// The HMAC of `data` under a symmetric key.
    Mac {
        /// The hash.
        hash: Hash,
        /// The message.
        data: Vec<u8>,
    },
    /// Checks `mac` over `data`, in constant time.
    MacVerify {
        /// The hash.
        hash: Hash,
        /// The message.
        data: Vec<u8>,
        /// The MAC.
        mac: Vec<u8>,
    },
}

/// Which lifecycle use of the object a computation is: protecting new data needs
/// an active object, processing what it protected also a deactivated or
/// compromised one (as NIST SP 800-57 and KMIP have it).
impl Computation {
    /// The use of the object, which its state and its chain's must allow.
    pub fn key_use(&self) -> crate::lifecycle::KeyUse {
        use crate::lifecycle::KeyUse;
        match self {
            Computation::Encrypt { .. } => KeyUse::Encrypt,
            Computation::Decrypt { .. } => KeyUse::Decrypt,
            Computation::Sign { .. } | Computation::Mac { .. } => KeyUse::Sign,
            Computation::Verify { .. } | Computation::MacVerify { .. } => KeyUse::Verify,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Computation::Encrypt { data, aad, .. } => data.len() + aad.len(),
            Computation::Decrypt { data, aad, .. } => data.len() + aad.len(),
            Computation::Sign { data, .. }
            | Computation::Verify { data, .. }
            | Computation::Mac { data, .. }
            | Computation::MacVerify { data, .. } => data.len(),
        }
    }
}

/// What a computation gives back.
#[derive(Debug)]
pub enum Computed {
    /// A ciphertext, the IV (when the server drew it) and the GCM tag.
    Encrypted {
        /// The ciphertext.
        data: Vec<u8>,
        /// The IV the server drew (`None` when the caller gave one).
        iv: Option<Vec<u8>>,
        /// The GCM tag (`None` for CBC).
        tag: Option<Vec<u8>>,
    },
    /// A plaintext.
    Decrypted(SecretBytes),
    /// A signature or MAC.
    Produced(Vec<u8>),
    /// Whether a signature or MAC checked out.
    Valid(bool),
}

/// The kind of material a computation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Material {
    /// Raw symmetric key bytes.
    Symmetric,
    /// A PKCS#8 private key.
    Private,
    /// A public key.
    Public,
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unsupported, what)
}

fn failed(what: &str) -> Error {
    Error::new(ErrorKind::InvalidCiphertext, what.to_owned())
}

/// Runs `computation` with `material` (of kind `kind`).
pub fn compute(kind: Material, material: &[u8], computation: Computation) -> Result<Computed> {
    if computation.data_len() > MAX_DATA {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("one computation takes at most {MAX_DATA} bytes of data"),
        ));
    }
    match (kind, computation) {
        (
            Material::Symmetric,
            Computation::Encrypt {
                mode,
                iv,
                aad,
                data,
            },
        ) => encrypt(material, mode, iv, &aad, data),
        (
            Material::Symmetric,
            Computation::Decrypt {
                mode,
                iv,
                aad,
                tag,
                data,
            },
        ) => decrypt(material, mode, &iv, &aad, &tag, data),
        (Material::Symmetric, Computation::Mac { hash, data }) => Ok(Computed::Produced(
            hmac::sign(&hmac_key(hash, material), &data)
                .as_ref()
                .to_vec(),
        )),
        (Material::Symmetric, Computation::MacVerify { hash, data, mac }) => Ok(Computed::Valid(
            hmac::verify(&hmac_key(hash, material), &data, &mac).is_ok(),
        )),
        (Material::Private, Computation::Sign { scheme, data }) => {
            sign(der(material)?.expose_secret(), scheme, &data).map(Computed::Produced)
        }
        (
            Material::Private | Material::Public,
            Computation::Verify {
                scheme,
                data,
                signature,
            },
        ) => {
            let der = der(material)?;
            let public = if kind == Material::Private {
                public_of_private(der.expose_secret())?
            } else {
                der.expose_secret().to_vec()
            };
            Ok(Computed::Valid(verify(&public, scheme, &data, &signature)))
        }
        (kind, computation) => Err(Error::new(
            ErrorKind::InvalidKeyUsage,
            format!(
                "a {} key cannot {}",
                match kind {
                    Material::Symmetric => "symmetric",
                    Material::Private => "private",
                    Material::Public => "public",
                },
                match computation {
                    Computation::Encrypt { .. } => "encrypt",
                    Computation::Decrypt { .. } => "decrypt",
                    Computation::Sign { .. } => "sign",
                    Computation::Verify { .. } => "verify a signature",
                    Computation::Mac { .. } | Computation::MacVerify { .. } => "compute a MAC",
                }
            ),
        )),
    }
}

fn hmac_key(hash: Hash, material: &[u8]) -> hmac::Key {
    let algorithm = match hash {
        Hash::Sha256 => hmac::HMAC_SHA256,
        Hash::Sha384 => hmac::HMAC_SHA384,
        Hash::Sha512 => hmac::HMAC_SHA512,
    };
    hmac::Key::new(algorithm, material)
}

fn gcm_key(material: &[u8]) -> Result<LessSafeKey> {
    let algorithm = match material.len() {
        16 => &aead::AES_128_GCM,
        32 => &aead::AES_256_GCM,
        n => {
            return Err(unsupported(format!(
                "AES-GCM takes a 128- or 256-bit key, not {} bits",
                n * 8
            )))
        }
    };
    UnboundKey::new(algorithm, material)
        .map(LessSafeKey::new)
        .map_err(|_| Error::internal("an AES key of the right length was refused"))
}

fn cbc_key(material: &[u8]) -> Result<UnboundCipherKey> {
    let algorithm = match material.len() {
        16 => &aws_lc_rs::cipher::AES_128,
        32 => &aws_lc_rs::cipher::AES_256,
        n => {
            return Err(unsupported(format!(
                "AES-CBC takes a 128- or 256-bit key, not {} bits",
                n * 8
            )))
        }
    };
    UnboundCipherKey::new(algorithm, material)
        .map_err(|_| Error::internal("an AES key of the right length was refused"))
}

fn iv_of<const N: usize>(iv: &[u8], mode: &str) -> Result<[u8; N]> {
    iv.try_into()
        .map_err(|_| Error::invalid(format!("{mode} takes a {N}-byte IV, not {}", iv.len())))
}

fn encrypt(
    material: &[u8],
    mode: CipherMode,
    iv: Option<Vec<u8>>,
    aad: &[u8],
    data: SecretBytes,
) -> Result<Computed> {
    let mut out = data.expose_secret().to_vec();
    match mode {
        CipherMode::Gcm => {
            let key = gcm_key(material)?;
            let drawn = iv.is_none();
            let iv: [u8; 12] = match iv {
                Some(iv) => iv_of(&iv, "AES-GCM")?,
                None => {
                    let mut iv = [0u8; 12];
                    aws_lc_rs::rand::fill(&mut iv)
                        .map_err(|_| Error::internal("no random bytes"))?;
                    iv
                }
            };
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(iv),
                    Aad::from(aad),
                    &mut out,
                )
                .map_err(|_| Error::internal("AES-GCM sealing failed"))?;
            Ok(Computed::Encrypted {
                data: out,
                iv: drawn.then(|| iv.to_vec()),
                tag: Some(tag.as_ref().to_vec()),
            })
        }
        CipherMode::CbcPkcs5 => {
            if !aad.is_empty() {
                return Err(Error::invalid("AES-CBC takes no additional data"));
            }
            let key = PaddedBlockEncryptingKey::cbc_pkcs7(cbc_key(material)?)
                .map_err(|_| Error::internal("AES-CBC key refused"))?;
            let (iv, drawn) = match iv {
                Some(iv) => (iv_of::<16>(&iv, "AES-CBC")?, false),
                None => {
                    let mut iv = [0u8; 16];
                    aws_lc_rs::rand::fill(&mut iv)
                        .map_err(|_| Error::internal("no random bytes"))?;
                    (iv, true)
                }
            };
            key.less_safe_encrypt(&mut out, EncryptionContext::Iv128(iv.into()))
                .map_err(|_| Error::internal("AES-CBC encryption failed"))?;
            Ok(Computed::Encrypted {
                data: out,
                iv: drawn.then(|| iv.to_vec()),
                tag: None,
            })
        }
    }
}

fn decrypt(
    material: &[u8],
    mode: CipherMode,
    iv: &[u8],
    aad: &[u8],
    tag: &[u8],
    data: Vec<u8>,
) -> Result<Computed> {
    match mode {
        CipherMode::Gcm => {
            let key = gcm_key(material)?;
            let iv: [u8; 12] = iv_of(iv, "AES-GCM")?;
            if tag.len() != 16 {
                return Err(unsupported(format!(
                    "AES-GCM tags are 16 bytes here, not {}",
                    tag.len()
                )));
            }
            let mut in_out = zeroize::Zeroizing::new(data);
            in_out.extend_from_slice(tag);
            let plain = key
                .open_in_place(
                    Nonce::assume_unique_for_key(iv),
                    Aad::from(aad),
                    &mut in_out,
                )
                .map_err(|_| {
                    failed("the ciphertext, tag, IV or additional data is not what was encrypted")
                })?;
            Ok(Computed::Decrypted(SecretBytes::copy_from(plain)))
        }
        CipherMode::CbcPkcs5 => {
            let key = PaddedBlockDecryptingKey::cbc_pkcs7(cbc_key(material)?)
                .map_err(|_| Error::internal("AES-CBC key refused"))?;
            let iv: [u8; 16] = iv_of(iv, "AES-CBC")?;
            let mut in_out = zeroize::Zeroizing::new(data);
            let plain = key
                .decrypt(&mut in_out, DecryptionContext::Iv128(iv.into()))
                .map_err(|_| {
                    failed("the ciphertext does not decrypt to padded data under this key and IV")
                })?;
            Ok(Computed::Decrypted(SecretBytes::copy_from(plain)))
        }
    }
}

/// `material` as DER: PEM is decoded, DER passes through.
pub fn der(material: &[u8]) -> Result<SecretBytes> {
    let Some(text) = std::str::from_utf8(material)
        .ok()
        .filter(|t| t.trim_start().starts_with("-----BEGIN "))
    else {
        return Ok(SecretBytes::copy_from(material));
    };
    use base64::Engine;
    let body: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        text.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map(SecretBytes::new)
        .map_err(|_| Error::invalid("the key's PEM does not decode"))
}

/// `der` as PEM with `label` (`PRIVATE KEY`, `PUBLIC KEY`), the form Barbican
/// serves generated key pairs in.
pub(crate) fn pem(label: &str, der: &[u8]) -> SecretBytes {
    use base64::Engine;
    let body = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 64);
    out.extend_from_slice(format!("-----BEGIN {label}-----\n").as_bytes());
    for line in body.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    SecretBytes::new(out)
}

/// The private key `der` (PKCS#8) as one aws-lc-rs signs with.
enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair, Hash),
}

const ECDSA_CURVES: [(Hash, &signature::EcdsaSigningAlgorithm); 3] = [
    (Hash::Sha256, &signature::ECDSA_P256_SHA256_ASN1_SIGNING),
    (Hash::Sha384, &signature::ECDSA_P384_SHA384_ASN1_SIGNING),
    (Hash::Sha512, &signature::ECDSA_P521_SHA512_ASN1_SIGNING),
];

fn signer(der: &[u8]) -> Result<Signer> {
    if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
        return Ok(Signer::Rsa(pair));
    }
    for (hash, algorithm) in ECDSA_CURVES {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(algorithm, der) {
            return Ok(Signer::Ecdsa(pair, hash));
        }
    }
    Err(unsupported(
        "the private key is no RSA or ECDSA (P-256, P-384, P-521) key in PKCS#8",
    ))
}

fn public_of_private(der: &[u8]) -> Result<Vec<u8>> {
    let spki = match signer(der)? {
        Signer::Rsa(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
        Signer::Ecdsa(pair, _) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
    };
    spki.map_err(|_| Error::internal("a public key does not encode"))
}

fn sign(der: &[u8], scheme: SignatureScheme, data: &[u8]) -> Result<Vec<u8>> {
    let rng = SystemRandom::new();
    match (signer(der)?, scheme) {
        (Signer::Rsa(pair), SignatureScheme::RsaPkcs1(_) | SignatureScheme::RsaPss(_)) => {
            let encoding: &dyn signature::RsaEncoding = match scheme {
                SignatureScheme::RsaPkcs1(Hash::Sha256) => &signature::RSA_PKCS1_SHA256,
                SignatureScheme::RsaPkcs1(Hash::Sha384) => &signature::RSA_PKCS1_SHA384,
                SignatureScheme::RsaPkcs1(Hash::Sha512) => &signature::RSA_PKCS1_SHA512,
                SignatureScheme::RsaPss(Hash::Sha256) => &signature::RSA_PSS_SHA256,
                SignatureScheme::RsaPss(Hash::Sha384) => &signature::RSA_PSS_SHA384,
                _ => &signature::RSA_PSS_SHA512,
            };
            let mut out = vec![0u8; pair.public_modulus_len()];
            pair.sign(encoding, &rng, data, &mut out)
                .map_err(|_| Error::internal("RSA signing failed"))?;
            Ok(out)
        }
        (Signer::Ecdsa(pair, curve_hash), SignatureScheme::Ecdsa(hash)) => {
            if hash != curve_hash {
                return Err(unsupported(format!(
                    "this curve signs with {curve_hash:?} (P-256 SHA-256, P-384 SHA-384, P-521 SHA-512), not {hash:?}"
                )));
            }
            pair.sign(&rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::internal("ECDSA signing failed"))
        }
        (Signer::Rsa(_), _) => Err(Error::new(
            ErrorKind::InvalidKeyUsage,
            "an RSA key signs with PKCS#1 v1.5 or PSS, not ECDSA",
        )),
        (Signer::Ecdsa(..), _) => Err(Error::new(
            ErrorKind::InvalidKeyUsage,
            "an EC key signs with ECDSA, not an RSA scheme",
        )),
    }
}

fn verify(public: &[u8], scheme: SignatureScheme, data: &[u8], signature_bytes: &[u8]) -> bool {
    let algorithm: &'static dyn signature::VerificationAlgorithm = match scheme {
        SignatureScheme::RsaPkcs1(Hash::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        SignatureScheme::RsaPkcs1(Hash::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RsaPkcs1(Hash::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        SignatureScheme::RsaPss(Hash::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RsaPss(Hash::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
        SignatureScheme::RsaPss(Hash::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
        SignatureScheme::Ecdsa(Hash::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        SignatureScheme::Ecdsa(Hash::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        SignatureScheme::Ecdsa(Hash::Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
    };
    signature::UnparsedPublicKey::new(algorithm, public)
        .verify(data, signature_bytes)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypt_then_decrypt(key: &[u8], mode: CipherMode, aad: &[u8]) -> Vec<u8> {
        let Computed::Encrypted { data, iv, tag } = compute(
            Material::Symmetric,
            key,
            Computation::Encrypt {
                mode,
                iv: None,
                aad: aad.to_vec(),
                data: SecretBytes::copy_from(b"attack at dawn"),
            },
        )
        .unwrap() else {
            panic!("not encrypted")
        };
        let Computed::Decrypted(plain) = compute(
            Material::Symmetric,
            key,
            Computation::Decrypt {
                mode,
                iv: iv.unwrap(),
                aad: aad.to_vec(),
                tag: tag.unwrap_or_default(),
                data,
            },
        )
        .unwrap() else {
            panic!("not decrypted")
        };
        plain.expose_secret().to_vec()
    }

    #[test]
    fn aes_gcm_and_cbc_round_trip_and_gcm_binds_its_aad() {
        for key in [vec![1u8; 16], vec![2u8; 32]] {
            assert_eq!(
                encrypt_then_decrypt(&key, CipherMode::Gcm, b"aad"),
                b"attack at dawn"
            );
            assert_eq!(
                encrypt_then_decrypt(&key, CipherMode::CbcPkcs5, b""),
                b"attack at dawn"
            );
        }
        let key = [3u8; 32];
        let Computed::Encrypted { data, iv, tag } = compute(
            Material::Symmetric,
            &key,
            Computation::Encrypt {
                mode: CipherMode::Gcm,
                iv: Some(vec![9; 12]),
                aad: b"one".to_vec(),
                data: SecretBytes::copy_from(b"x"),
            },
        )
        .unwrap() else {
            panic!()
        };
        assert!(iv.is_none(), "an IV the caller chose is not returned");
        let wrong = compute(
            Material::Symmetric,
            &key,
            Computation::Decrypt {
                mode: CipherMode::Gcm,
                iv: vec![9; 12],
                aad: b"two".to_vec(),
                tag: tag.unwrap(),
                data,
            },
        );
        assert_eq!(wrong.unwrap_err().kind(), ErrorKind::InvalidCiphertext);
        let odd = compute(
            Material::Symmetric,
            &[0u8; 24],
            Computation::Mac {
                hash: Hash::Sha256,
                data: vec![],
            },
        );
        assert!(odd.is_ok(), "HMAC takes any key length");
    }

    #[test]
    fn signatures_verify_with_the_private_or_the_public_key() {
        let (private, public) =
            crate::key_material::generate_data_key_pair(crate::keyspec::KeySpec::EccNistP384)
                .unwrap();
        let scheme = SignatureScheme::Ecdsa(Hash::Sha384);
        let Computed::Produced(sig) = compute(
            Material::Private,
            private.expose_secret(),
            Computation::Sign {
                scheme,
                data: b"m".to_vec(),
            },
        )
        .unwrap() else {
            panic!()
        };
        for (kind, material) in [
            (Material::Public, public.as_slice()),
            (Material::Private, private.expose_secret()),
        ] {
            let verify = |data: &[u8]| match compute(
                kind,
                material,
                Computation::Verify {
                    scheme,
                    data: data.to_vec(),
                    signature: sig.clone(),
                },
            )
            .unwrap()
            {
                Computed::Valid(v) => v,
                _ => panic!(),
            };
            assert!(verify(b"m"));
            assert!(!verify(b"n"));
        }
        let wrong = compute(
            Material::Private,
            private.expose_secret(),
            Computation::Sign {
                scheme: SignatureScheme::RsaPss(Hash::Sha256),
                data: vec![],
            },
        );
        assert_eq!(wrong.unwrap_err().kind(), ErrorKind::InvalidKeyUsage);
        let wrong = compute(
            Material::Public,
            &public,
            Computation::Sign {
                scheme,
                data: vec![],
            },
        );
        assert_eq!(wrong.unwrap_err().kind(), ErrorKind::InvalidKeyUsage);
    }

    #[test]
    fn pem_and_der_read_the_same() {
        let (private, _) =
            crate::key_material::generate_data_key_pair(crate::keyspec::KeySpec::Rsa2048).unwrap();
        let pem = pem("PRIVATE KEY", private.expose_secret());
        assert_eq!(
            der(pem.expose_secret()).unwrap().expose_secret(),
            private.expose_secret()
        );
        assert_eq!(
            der(private.expose_secret()).unwrap().expose_secret(),
            private.expose_secret()
        );
    }
}
