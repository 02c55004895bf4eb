//! Key specs, key usages and the algorithms each allows, as AWS KMS names them.
//!
//! One table decides what a service key may do: which usages a spec may be created
//! with, and which signing, encryption, MAC and key agreement algorithms a key of a
//! spec and usage offers. The service checks every request against it; DescribeKey
//! and GetPublicKey report from it.

use crate::error::{Error, ErrorKind, Result};

/// Declares a string-named enum with `parse`, `as_str` and `ALL`.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The AWS name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// Parses [`Self::as_str`].
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// Parses request field `field`; an unknown value is a validation
            /// error naming the valid ones.
            pub fn parse_field(field: &str, s: &str) -> Result<Self> {
                Self::parse(s).ok_or_else(|| {
                    Error::invalid(format!(
                        "{field} {s:?} is not valid; use one of {}",
                        join(Self::ALL.iter().map(|v| v.as_str()))
                    ))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(
    /// What kind of key a service key is.
    KeySpec {
        /// AES-256-GCM (kcm's ciphertext format).
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        /// RSA, 2048-bit modulus.
        Rsa2048 = "RSA_2048",
        /// RSA, 3072-bit modulus.
        Rsa3072 = "RSA_3072",
        /// RSA, 4096-bit modulus.
        Rsa4096 = "RSA_4096",
        /// ECC on NIST P-256.
        EccNistP256 = "ECC_NIST_P256",
        /// ECC on NIST P-384.
        EccNistP384 = "ECC_NIST_P384",
        /// ECC on NIST P-521.
        EccNistP521 = "ECC_NIST_P521",
        /// ECC on secp256k1.
        EccSecgP256k1 = "ECC_SECG_P256K1",
        /// Ed25519.
        EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
        /// HMAC with SHA-224 and a 224-bit key.
        Hmac224 = "HMAC_224",
        /// HMAC with SHA-256 and a 256-bit key.
        Hmac256 = "HMAC_256",
        /// HMAC with SHA-384 and a 384-bit key.
        Hmac384 = "HMAC_384",
        /// HMAC with SHA-512 and a 512-bit key.
        Hmac512 = "HMAC_512",
        /// ML-DSA-44 (FIPS 204).
        MlDsa44 = "ML_DSA_44",
        /// ML-DSA-65 (FIPS 204).
        MlDsa65 = "ML_DSA_65",
        /// ML-DSA-87 (FIPS 204).
        MlDsa87 = "ML_DSA_87",
    }
);

named!(
    /// What a key is for.
    KeyUsage {
        /// Encrypt and decrypt.
        EncryptDecrypt = "ENCRYPT_DECRYPT",
        /// Sign and verify.
        SignVerify = "SIGN_VERIFY",
        /// Generate and verify MACs.
        GenerateVerifyMac = "GENERATE_VERIFY_MAC",
        /// Derive shared secrets (ECDH).
        KeyAgreement = "KEY_AGREEMENT",
    }
);

named!(
    /// A signing algorithm (Sign, Verify).
    SigningAlgorithm {
        /// RSASSA-PSS with SHA-256 (salt length 32).
        RsassaPssSha256 = "RSASSA_PSS_SHA_256",
        /// RSASSA-PSS with SHA-384 (salt length 48).
        RsassaPssSha384 = "RSASSA_PSS_SHA_384",
        /// RSASSA-PSS with SHA-512 (salt length 64).
        RsassaPssSha512 = "RSASSA_PSS_SHA_512",
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RsassaPkcs1Sha256 = "RSASSA_PKCS1_V1_5_SHA_256",
        /// RSASSA-PKCS1-v1_5 with SHA-384.
        RsassaPkcs1Sha384 = "RSASSA_PKCS1_V1_5_SHA_384",
        /// RSASSA-PKCS1-v1_5 with SHA-512.
        RsassaPkcs1Sha512 = "RSASSA_PKCS1_V1_5_SHA_512",
        /// ECDSA with SHA-256 (DER signature).
        EcdsaSha256 = "ECDSA_SHA_256",
        /// ECDSA with SHA-384.
        EcdsaSha384 = "ECDSA_SHA_384",
        /// ECDSA with SHA-512.
        EcdsaSha512 = "ECDSA_SHA_512",
        /// Pure Ed25519 (RFC 8032).
        Ed25519Sha512 = "ED25519_SHA_512",
        /// Ed25519ph (RFC 8032, pre-hashed with SHA-512, empty context).
        Ed25519PhSha512 = "ED25519_PH_SHA_512",
        /// Pure ML-DSA (FIPS 204, empty context).
        MlDsaShake256 = "ML_DSA_SHAKE_256",
    }
);

named!(
    /// How Sign and Verify read `Message`.
    MessageType {
        /// The message itself; the algorithm hashes it.
        Raw = "RAW",
        /// The message's digest under the algorithm's hash.
        Digest = "DIGEST",
        /// ML-DSA's 64-byte message representative μ.
        ExternalMu = "EXTERNAL_MU",
    }
);

named!(
    /// A MAC algorithm (GenerateMac, VerifyMac).
    MacAlgorithm {
        /// HMAC-SHA-224.
        HmacSha224 = "HMAC_SHA_224",
        /// HMAC-SHA-256.
        HmacSha256 = "HMAC_SHA_256",
        /// HMAC-SHA-384.
        HmacSha384 = "HMAC_SHA_384",
        /// HMAC-SHA-512.
        HmacSha512 = "HMAC_SHA_512",
    }
);

named!(
    /// An encryption algorithm (Encrypt, Decrypt, ReEncrypt).
    EncryptionAlgorithm {
        /// kcm's AES-256-GCM ciphertext format.
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        /// RSAES-OAEP with SHA-1 (and MGF1 with SHA-1).
        RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
        /// RSAES-OAEP with SHA-256 (and MGF1 with SHA-256).
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
    }
);

/// The specs GenerateDataKeyPair makes (AWS's `DataKeyPairSpec`, less SM2 and ML-KEM).
pub const DATA_KEY_PAIR_SPECS: &[KeySpec] = &[
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccSecgP256k1,
    KeySpec::EccNistEdwards25519,
];

/// The only key agreement algorithm.
pub const ECDH: &str = "ECDH";

impl KeySpec {
    /// The usages a key of this spec may have; the first is the default when the
    /// spec allows only one.
    pub fn usages(self) -> &'static [KeyUsage] {
        use KeySpec::*;
        use KeyUsage::*;
        match self {
            SymmetricDefault => &[EncryptDecrypt],
            Rsa2048 | Rsa3072 | Rsa4096 => &[EncryptDecrypt, SignVerify],
            EccNistP256 | EccNistP384 | EccNistP521 => &[SignVerify, KeyAgreement],
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => &[SignVerify],
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[GenerateVerifyMac],
        }
    }

    /// Whether this is an RSA spec (whose keys are slow to generate).
    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
    }

    /// Whether this is an asymmetric spec (it has a public key).
    pub fn is_asymmetric(self) -> bool {
        !matches!(
            self,
            KeySpec::SymmetricDefault
                | KeySpec::Hmac224
                | KeySpec::Hmac256
                | KeySpec::Hmac384
                | KeySpec::Hmac512
        )
    }

    /// The usage a key of this spec gets when CreateKey names none: ENCRYPT_DECRYPT
    /// where allowed (as AWS), else the spec's only usage. `None` when the caller
    /// must choose (ECC NIST curves: signing or key agreement).
    pub fn default_usage(self) -> Option<KeyUsage> {
        let usages = self.usages();
        if usages.contains(&KeyUsage::EncryptDecrypt) {
            Some(KeyUsage::EncryptDecrypt)
        } else if usages.len() == 1 {
            Some(usages[0])
        } else {
            None
        }
    }

    /// Checks that `usage` is allowed for this spec; the error names those that are.
    pub fn check_usage(self, usage: KeyUsage) -> Result<()> {
        if self.usages().contains(&usage) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "key usage {usage} is not valid for a {self} key; use {}",
            join(self.usages().iter().map(|u| u.as_str()))
        )))
    }

    /// The signing algorithms of a SIGN_VERIFY key of this spec.
    pub fn signing_algorithms(self) -> &'static [SigningAlgorithm] {
        use KeySpec::*;
        use SigningAlgorithm::*;
        match self {
            Rsa2048 | Rsa3072 | Rsa4096 => &[
                RsassaPssSha256,
                RsassaPssSha384,
                RsassaPssSha512,
                RsassaPkcs1Sha256,
                RsassaPkcs1Sha384,
                RsassaPkcs1Sha512,
            ],
            EccNistP256 | EccSecgP256k1 => &[EcdsaSha256],
            EccNistP384 => &[EcdsaSha384],
            EccNistP521 => &[EcdsaSha512],
            EccNistEdwards25519 => &[Ed25519Sha512, Ed25519PhSha512],
            MlDsa44 | MlDsa65 | MlDsa87 => &[MlDsaShake256],
            SymmetricDefault | Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[],
        }
    }

    /// The encryption algorithms of an ENCRYPT_DECRYPT key of this spec.
    pub fn encryption_algorithms(self) -> &'static [EncryptionAlgorithm] {
        use EncryptionAlgorithm::*;
        match self {
            KeySpec::SymmetricDefault => &[SymmetricDefault],
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                &[RsaesOaepSha1, RsaesOaepSha256]
            }
            _ => &[],
        }
    }

    /// The MAC algorithm of an HMAC key of this spec.
    pub fn mac_algorithm(self) -> Option<MacAlgorithm> {
        match self {
            KeySpec::Hmac224 => Some(MacAlgorithm::HmacSha224),
            KeySpec::Hmac256 => Some(MacAlgorithm::HmacSha256),
            KeySpec::Hmac384 => Some(MacAlgorithm::HmacSha384),
            KeySpec::Hmac512 => Some(MacAlgorithm::HmacSha512),
            _ => None,
        }
    }
}

/// What a key of a spec and usage offers, as DescribeKey and GetPublicKey list it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyAlgorithms {
    /// For ENCRYPT_DECRYPT keys.
    pub encryption: Vec<&'static str>,
    /// For SIGN_VERIFY keys.
    pub signing: Vec<&'static str>,
    /// For GENERATE_VERIFY_MAC keys.
    pub mac: Vec<&'static str>,
    /// For KEY_AGREEMENT keys.
    pub key_agreement: Vec<&'static str>,
}

impl KeyAlgorithms {
    /// The algorithms of a key of `spec` with `usage`.
    pub fn of(spec: KeySpec, usage: KeyUsage) -> Self {
        let mut out = Self::default();
        match usage {
            KeyUsage::EncryptDecrypt => {
                out.encryption = spec
                    .encryption_algorithms()
                    .iter()
                    .map(|a| a.as_str())
                    .collect()
            }
            KeyUsage::SignVerify => {
                out.signing = spec
                    .signing_algorithms()
                    .iter()
                    .map(|a| a.as_str())
                    .collect()
            }
            KeyUsage::GenerateVerifyMac => {
                out.mac = spec
                    .mac_algorithm()
                    .map(|a| a.as_str())
                    .into_iter()
                    .collect()
            }
            KeyUsage::KeyAgreement => out.key_agreement = vec![ECDH],
        }
        out
    }

    /// The algorithms of a stored key (spec and usage as stored).
    pub fn of_stored(spec: &str, usage: &str) -> Self {
        match (KeySpec::parse(spec), KeyUsage::parse(usage)) {
            (Some(spec), Some(usage)) => Self::of(spec, usage),
            _ => Self::default(),
        }
    }
}

/// Parses a request's message type (absent: RAW).
pub fn parse_message_type(s: Option<&str>) -> Result<MessageType> {
    s.map_or(Ok(MessageType::Raw), |s| {
        MessageType::parse_field("MessageType", s)
    })
}

/// Parses a request's encryption algorithm (absent: SYMMETRIC_DEFAULT, as AWS).
pub fn parse_encryption_algorithm(s: Option<&str>) -> Result<EncryptionAlgorithm> {
    s.map_or(Ok(EncryptionAlgorithm::SymmetricDefault), |s| {
        EncryptionAlgorithm::parse_field("EncryptionAlgorithm", s)
    })
}

/// Parses a request's data key pair spec (one of [`DATA_KEY_PAIR_SPECS`]).
pub fn parse_data_key_pair_spec(s: &str) -> Result<KeySpec> {
    KeySpec::parse(s)
        .filter(|spec| DATA_KEY_PAIR_SPECS.contains(spec))
        .ok_or_else(|| {
            Error::invalid(format!(
                "KeyPairSpec {s:?} is not valid; use one of {}",
                join(DATA_KEY_PAIR_SPECS.iter().map(|s| s.as_str()))
            ))
        })
}

/// The refusal for using a key in a way its usage does not allow.
pub fn wrong_usage(key: impl std::fmt::Display, usage: &str, needed: KeyUsage) -> Error {
    Error::new(
        ErrorKind::InvalidKeyUsage,
        format!("key {key} has key usage {usage}; this operation needs a {needed} key"),
    )
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back() {
        for spec in KeySpec::ALL {
            assert_eq!(KeySpec::parse(spec.as_str()), Some(*spec));
            assert!(!spec.usages().is_empty());
            for usage in spec.usages() {
                let algorithms = KeyAlgorithms::of(*spec, *usage);
                let count = algorithms.encryption.len()
                    + algorithms.signing.len()
                    + algorithms.mac.len()
                    + algorithms.key_agreement.len();
                assert!(count > 0, "{spec} {usage} offers no algorithm");
            }
        }
        for a in SigningAlgorithm::ALL {
            assert_eq!(SigningAlgorithm::parse(a.as_str()), Some(*a));
        }
    }

    #[test]
    fn usages_are_the_ones_aws_allows() {
        assert!(KeySpec::Rsa2048.check_usage(KeyUsage::SignVerify).is_ok());
        assert!(KeySpec::EccNistP256
            .check_usage(KeyUsage::KeyAgreement)
            .is_ok());
        let e = KeySpec::EccSecgP256k1
            .check_usage(KeyUsage::KeyAgreement)
            .unwrap_err();
        assert!(e.message().contains("use SIGN_VERIFY"), "{e}");
        assert!(KeySpec::Hmac256
            .check_usage(KeyUsage::EncryptDecrypt)
            .is_err());
        assert_eq!(KeySpec::EccNistP384.default_usage(), None);
        assert_eq!(
            KeySpec::Hmac512.default_usage(),
            Some(KeyUsage::GenerateVerifyMac)
        );
        assert_eq!(
            KeySpec::Rsa4096.default_usage(),
            Some(KeyUsage::EncryptDecrypt)
        );
    }
}
