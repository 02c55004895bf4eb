//! KMIP's cryptographic operations on a managed object — Encrypt, Decrypt, Sign,
//! Signature Verify, MAC and MAC Verify — translated onto the core's one call,
//! [`Service::compute_with_object`], which authorises, checks the object's and its
//! chain's states (the kill switch) and computes without the material leaving.
//!
//! What kcm computes: AES-GCM (the default when no Cryptographic Parameters say
//! otherwise) and AES-CBC with PKCS#5 padding; HMAC-SHA-256/384/512; RSA PKCS#1
//! v1.5 and PSS, ECDSA. Streaming (Correlation Value, Init and Final Indicators)
//! is not offered: each request is one whole message.

use kcm_core::authz::Caller;
use kcm_core::model::ObjectId;
use kcm_core::object_crypto::{CipherMode, Computation, Computed, Hash, SignatureScheme};
use kcm_core::secret::SecretBytes;
use kcm_core::service::Service;
use zeroize::Zeroizing;

use crate::door::{id_ttlv, unique_identifier, KmipError};
use crate::message::{find, Operation, ResultReason};
use crate::objects::{self, enumeration};
use crate::ttlv::{Tag, Ttlv, Value};

/// The tags of the cryptographic operations.
pub mod tag {
    use crate::ttlv::Tag;

    /// Cryptographic Parameters.
    pub const CRYPTOGRAPHIC_PARAMETERS: Tag = Tag::new(0x42_002B);
    /// Block Cipher Mode.
    pub const BLOCK_CIPHER_MODE: Tag = Tag::new(0x42_0011);
    /// Padding Method.
    pub const PADDING_METHOD: Tag = Tag::new(0x42_005F);
    /// Hashing Algorithm.
    pub const HASHING_ALGORITHM: Tag = Tag::new(0x42_0038);
    /// Digital Signature Algorithm.
    pub const DIGITAL_SIGNATURE_ALGORITHM: Tag = Tag::new(0x42_00AE);
    /// Tag Length.
    pub const TAG_LENGTH: Tag = Tag::new(0x42_00CE);
    /// Data.
    pub const DATA: Tag = Tag::new(0x42_00C2);
    /// IV/Counter/Nonce.
    pub const IV_COUNTER_NONCE: Tag = Tag::new(0x42_003D);
    /// Authenticated Encryption Additional Data.
    pub const AE_ADDITIONAL_DATA: Tag = Tag::new(0x42_00FE);
    /// Authenticated Encryption Tag.
    pub const AE_TAG: Tag = Tag::new(0x42_00FF);
    /// Signature Data.
    pub const SIGNATURE_DATA: Tag = Tag::new(0x42_00C3);
    /// MAC Data.
    pub const MAC_DATA: Tag = Tag::new(0x42_00C6);
    /// Validity Indicator.
    pub const VALIDITY_INDICATOR: Tag = Tag::new(0x42_009B);
    /// Digested Data (a signature over a digest the client made).
    pub const DIGESTED_DATA: Tag = Tag::new(0x42_0107);
    /// Correlation Value (streaming).
    pub const CORRELATION_VALUE: Tag = Tag::new(0x42_00D6);
    /// Init Indicator (streaming).
    pub const INIT_INDICATOR: Tag = Tag::new(0x42_00D7);
    /// Final Indicator (streaming).
    pub const FINAL_INDICATOR: Tag = Tag::new(0x42_00D8);
}

/// Block Cipher Mode CBC.
const MODE_CBC: u32 = 0x01;
/// Block Cipher Mode GCM.
const MODE_GCM: u32 = 0x09;
/// Padding Method None.
const PADDING_NONE: u32 = 0x01;
/// Padding Method PKCS5.
const PADDING_PKCS5: u32 = 0x03;
/// Padding Method PKCS1 v1.5.
const PADDING_PKCS1V15: u32 = 0x08;
/// Padding Method PSS.
const PADDING_PSS: u32 = 0x0A;
/// Validity Indicator Valid.
const VALID: u32 = 1;
/// Validity Indicator Invalid.
const INVALID: u32 = 2;

fn bytes(payload: &[Ttlv], tag: Tag) -> Option<&[u8]> {
    match &find(payload, tag)?.value {
        Value::ByteString(b) => Some(b),
        _ => None,
    }
}

fn required<'a>(payload: &'a [Ttlv], tag: Tag, what: &str) -> Result<&'a [u8], KmipError> {
    bytes(payload, tag).ok_or_else(|| {
        KmipError::refused(
            ResultReason::InvalidField,
            format!("the request carries no {what}"),
        )
    })
}

/// The Cryptographic Parameters of a request (empty when it has none).
fn parameters(payload: &[Ttlv]) -> &[Ttlv] {
    find(payload, tag::CRYPTOGRAPHIC_PARAMETERS)
        .and_then(Ttlv::items)
        .unwrap_or(&[])
}

fn hash_of(parameters: &[Ttlv], default: Hash) -> Result<Hash, KmipError> {
    match enumeration(parameters, tag::HASHING_ALGORITHM) {
        None => Ok(default),
        Some(6) => Ok(Hash::Sha256),
        Some(7) => Ok(Hash::Sha384),
        Some(8) => Ok(Hash::Sha512),
        Some(other) => Err(KmipError::refused(
            ResultReason::FeatureNotSupported,
            format!(
                "Hashing Algorithm {other} is not supported (SHA-256, SHA-384 and SHA-512 are)"
            ),
        )),
    }
}

fn cipher_mode(parameters: &[Ttlv]) -> Result<CipherMode, KmipError> {
    if let Some(algorithm) = enumeration(parameters, objects::tag::CRYPTOGRAPHIC_ALGORITHM) {
        if algorithm != objects::ALGORITHM_AES {
            return Err(KmipError::refused(
                ResultReason::FeatureNotSupported,
                format!("Cryptographic Algorithm {algorithm} does not encrypt here (AES does)"),
            ));
        }
    }
    let padding = enumeration(parameters, tag::PADDING_METHOD);
    match (enumeration(parameters, tag::BLOCK_CIPHER_MODE), padding) {
        (None | Some(MODE_GCM), None | Some(PADDING_NONE)) => {
            match find(parameters, tag::TAG_LENGTH).map(|t| &t.value) {
                None | Some(Value::Integer(16)) => Ok(CipherMode::Gcm),
                Some(_) => Err(KmipError::refused(
                    ResultReason::FeatureNotSupported,
                    "AES-GCM tags are 16 bytes here (Tag Length 16)",
                )),
            }
        }
        (Some(MODE_CBC), None | Some(PADDING_PKCS5)) => Ok(CipherMode::CbcPkcs5),
        (mode, padding) => Err(KmipError::refused(
            ResultReason::FeatureNotSupported,
            format!(
                "Block Cipher Mode {mode:?} with Padding Method {padding:?} is not supported (GCM, and CBC with PKCS5 padding, are)"
            ),
        )),
    }
}

fn signature_scheme(parameters: &[Ttlv]) -> Result<SignatureScheme, KmipError> {
    use SignatureScheme::{Ecdsa, RsaPkcs1, RsaPss};
    if let Some(algorithm) = enumeration(parameters, tag::DIGITAL_SIGNATURE_ALGORITHM) {
        return match algorithm {
            0x05 => Ok(RsaPkcs1(Hash::Sha256)),
            0x06 => Ok(RsaPkcs1(Hash::Sha384)),
            0x07 => Ok(RsaPkcs1(Hash::Sha512)),
            0x08 => Ok(RsaPss(hash_of(parameters, Hash::Sha256)?)),
            0x0E => Ok(Ecdsa(Hash::Sha256)),
            0x0F => Ok(Ecdsa(Hash::Sha384)),
            0x10 => Ok(Ecdsa(Hash::Sha512)),
            other => Err(KmipError::refused(
                ResultReason::FeatureNotSupported,
                format!("Digital Signature Algorithm {other} is not supported (SHA-256/384/512 with RSA, RSASSA-PSS, ECDSA with SHA-256/384/512 are)"),
            )),
        };
    }
    let hash = hash_of(parameters, Hash::Sha256)?;
    let algorithm = enumeration(parameters, objects::tag::CRYPTOGRAPHIC_ALGORITHM);
    match (algorithm, enumeration(parameters, tag::PADDING_METHOD)) {
        (Some(objects::ALGORITHM_ECDSA | objects::ALGORITHM_EC), _) => Ok(Ecdsa(hash)),
        (None | Some(objects::ALGORITHM_RSA), Some(PADDING_PSS)) => Ok(RsaPss(hash)),
        (None | Some(objects::ALGORITHM_RSA), Some(PADDING_PKCS1V15)) => Ok(RsaPkcs1(hash)),
        _ => Err(KmipError::refused(
            ResultReason::InvalidField,
            "name the signature: a Digital Signature Algorithm, or a Padding Method (PKCS1 v1.5 or PSS) with RSA, or the Cryptographic Algorithm ECDSA, with a Hashing Algorithm",
        )),
    }
}

fn mac_hash(parameters: &[Ttlv]) -> Result<Hash, KmipError> {
    match enumeration(parameters, objects::tag::CRYPTOGRAPHIC_ALGORITHM) {
        Some(objects::ALGORITHM_HMAC_SHA256) => Ok(Hash::Sha256),
        Some(objects::ALGORITHM_HMAC_SHA384) => Ok(Hash::Sha384),
        Some(objects::ALGORITHM_HMAC_SHA512) => Ok(Hash::Sha512),
        Some(other) => Err(KmipError::refused(
            ResultReason::FeatureNotSupported,
            format!("Cryptographic Algorithm {other} makes no MAC here (HMAC-SHA256/384/512 do)"),
        )),
        None => Err(KmipError::refused(
            ResultReason::InvalidField,
            "name the MAC's Cryptographic Algorithm (HMAC-SHA256, -SHA384 or -SHA512) in the Cryptographic Parameters",
        )),
    }
}

/// Streaming is not offered: a request that opens or continues a stream is
/// refused rather than answered as if it were whole.
fn whole_message_only(payload: &[Ttlv]) -> Result<(), KmipError> {
    if find(payload, tag::DIGESTED_DATA).is_some() {
        return Err(KmipError::refused(
            ResultReason::FeatureNotSupported,
            "Digested Data is not supported: send the Data, which the server hashes",
        ));
    }
    for t in [
        tag::CORRELATION_VALUE,
        tag::INIT_INDICATOR,
        tag::FINAL_INDICATOR,
    ] {
        if find(payload, t).is_some() {
            return Err(KmipError::refused(
                ResultReason::FeatureNotSupported,
                "streaming cryptographic operations (Correlation Value, Init and Final Indicators) are not supported: send the whole data in one request",
            ));
        }
    }
    Ok(())
}

fn byte_string(tag: Tag, bytes: Vec<u8>) -> Ttlv {
    Ttlv::new(tag, Value::ByteString(Zeroizing::new(bytes)))
}

/// Reads the request of one of the six operations: the object and what to
/// compute with it. Nothing is looked up: this is the whole of what the server
/// reads from the client's payload.
pub fn computation_of(
    operation: Operation,
    payload: &[Ttlv],
) -> Result<(ObjectId, Computation), KmipError> {
    whole_message_only(payload)?;
    let id = unique_identifier(payload)?;
    let parameters = parameters(payload);
    let data = || required(payload, tag::DATA, "Data").map(<[u8]>::to_vec);
    let computation = match operation {
        Operation::ENCRYPT => Computation::Encrypt {
            mode: cipher_mode(parameters)?,
            iv: bytes(payload, tag::IV_COUNTER_NONCE).map(<[u8]>::to_vec),
            aad: bytes(payload, tag::AE_ADDITIONAL_DATA)
                .unwrap_or_default()
                .to_vec(),
            data: SecretBytes::copy_from(required(payload, tag::DATA, "Data")?),
        },
        Operation::DECRYPT => Computation::Decrypt {
            mode: cipher_mode(parameters)?,
            iv: required(payload, tag::IV_COUNTER_NONCE, "IV/Counter/Nonce")?.to_vec(),
            aad: bytes(payload, tag::AE_ADDITIONAL_DATA)
                .unwrap_or_default()
                .to_vec(),
            tag: bytes(payload, tag::AE_TAG).unwrap_or_default().to_vec(),
            data: data()?,
        },
        Operation::SIGN => Computation::Sign {
            scheme: signature_scheme(parameters)?,
            data: data()?,
        },
        Operation::SIGNATURE_VERIFY => Computation::Verify {
            scheme: signature_scheme(parameters)?,
            data: data()?,
            signature: required(payload, tag::SIGNATURE_DATA, "Signature Data")?.to_vec(),
        },
        Operation::MAC => Computation::Mac {
            hash: mac_hash(parameters)?,
            data: data()?,
        },
        _ => Computation::MacVerify {
            hash: mac_hash(parameters)?,
            data: data()?,
            mac: required(payload, tag::MAC_DATA, "MAC Data")?.to_vec(),
        },
    };
    Ok((id, computation))
}

/// Runs one of the six operations.
pub async fn run(
    service: &Service,
    caller: &Caller,
    operation: Operation,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let (id, computation) = computation_of(operation, payload)?;
    let computed = service.compute_with_object(caller, id, computation).await?;
    let mut out = vec![id_ttlv(id)];
    match computed {
        Computed::Encrypted { data, iv, tag: ae } => {
            out.push(byte_string(tag::DATA, data));
            if let Some(iv) = iv {
                out.push(byte_string(tag::IV_COUNTER_NONCE, iv));
            }
            if let Some(ae) = ae {
                out.push(byte_string(tag::AE_TAG, ae));
            }
        }
        Computed::Decrypted(plain) => {
            out.push(byte_string(tag::DATA, plain.expose_secret().to_vec()))
        }
        Computed::Produced(bytes) => {
            let tag = if operation == Operation::SIGN {
                tag::SIGNATURE_DATA
            } else {
                tag::MAC_DATA
            };
            out.push(byte_string(tag, bytes));
        }
        Computed::Valid(valid) => out.push(Ttlv::new(
            tag::VALIDITY_INDICATOR,
            Value::Enumeration(if valid { VALID } else { INVALID }),
        )),
    }
    Ok(out)
}
