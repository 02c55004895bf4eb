//! The JSON bodies of the XKS proxy API, as AWS KMS sends and reads them, and the
//! checks the specification puts on each field. Binary fields are standard Base64
//! with padding; plaintext is decoded into buffers that are wiped when dropped.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kcm_core::xks;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::XksError;

/// The longest ARN the specification requires a proxy to take.
pub const MAX_ARN: usize = 2048;
/// The longest other metadata string kcm takes (request ids, operation and
/// service names are far shorter).
const MAX_METADATA_TEXT: usize = 2048;

/// `requestMetadata`: who called AWS KMS and why. Only checked for presence and
/// length; the values are AWS's, recorded as given. Unknown fields are accepted, as
/// the specification says KMS may add some.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata<'a> {
    /// The principal that called AWS KMS.
    #[serde(borrow)]
    pub aws_principal_arn: Option<Cow<'a, str>>,
    /// The AWS KMS key.
    #[serde(borrow)]
    pub kms_key_arn: Option<Cow<'a, str>>,
    /// The AWS KMS operation (any value is accepted: KMS may add operations).
    #[serde(borrow)]
    pub kms_operation: Option<Cow<'a, str>>,
    /// AWS KMS's request id (opaque: never validated).
    #[serde(borrow)]
    pub kms_request_id: Option<Cow<'a, str>>,
    /// The AWS service that called AWS KMS, if one did.
    #[serde(borrow)]
    pub kms_via_service: Option<Cow<'a, str>>,
    /// The VPC the request came from, if through an endpoint.
    #[serde(borrow)]
    pub aws_source_vpc: Option<Cow<'a, str>>,
    /// The VPC endpoint, if one.
    #[serde(borrow)]
    pub aws_source_vpce: Option<Cow<'a, str>>,
}

/// What every request carries.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow)]
    request_metadata: Option<RequestMetadata<'a>>,
}

/// Which of the API's calls a body is for: what its metadata must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// GetKeyMetadata (`kmsKeyArn` optional: absent when AWS KMS creates the key).
    Metadata,
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
}

impl<'a> RequestMetadata<'a> {
    /// The metadata for the audit record: every field AWS KMS sent, by its name in
    /// the specification, each at most 2048 characters (a key call's are checked by
    /// `RequestMetadata::check`; a health call's, never refused, are left out when
    /// longer).
    pub fn audit_detail(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("awsPrincipalArn", &self.aws_principal_arn),
            ("kmsKeyArn", &self.kms_key_arn),
            ("kmsOperation", &self.kms_operation),
            ("kmsRequestId", &self.kms_request_id),
            ("kmsViaService", &self.kms_via_service),
            ("awsSourceVpc", &self.aws_source_vpc),
            ("awsSourceVpce", &self.aws_source_vpce),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.as_deref()?.to_owned())))
        .filter(|(_, value)| value.chars().count() <= MAX_METADATA_TEXT)
        .collect()
    }

    /// The metadata as the core judges it.
    pub fn as_core(&self) -> kcm_core::xks_policy::RequestMetadata<'_> {
        kcm_core::xks_policy::RequestMetadata {
            aws_principal_arn: self.aws_principal_arn.as_deref(),
            kms_key_arn: self.kms_key_arn.as_deref(),
            kms_operation: self.kms_operation.as_deref(),
            kms_request_id: self.kms_request_id.as_deref(),
            kms_via_service: self.kms_via_service.as_deref(),
            aws_source_vpc: self.aws_source_vpc.as_deref(),
            aws_source_vpce: self.aws_source_vpce.as_deref(),
        }
    }

    /// Checks what `api` requires of the metadata: `awsPrincipalArn`,
    /// `kmsOperation` and `kmsRequestId` always, `kmsKeyArn` for Encrypt and
    /// Decrypt; every value within its length.
    fn check(&self, api: Api) -> Result<(), XksError> {
        let required = [
            ("awsPrincipalArn", &self.aws_principal_arn, true),
            ("kmsOperation", &self.kms_operation, true),
            ("kmsRequestId", &self.kms_request_id, true),
            ("kmsKeyArn", &self.kms_key_arn, api != Api::Metadata),
        ];
        for (field, value, needed) in required {
            if needed && value.as_deref().is_none_or(str::is_empty) {
                return Err(XksError::validation(format!(
                    "requestMetadata.{field} is required"
                )));
            }
        }
        let all = [
            ("awsPrincipalArn", &self.aws_principal_arn, MAX_ARN),
            ("kmsKeyArn", &self.kms_key_arn, MAX_ARN),
            ("kmsOperation", &self.kms_operation, MAX_METADATA_TEXT),
            ("kmsRequestId", &self.kms_request_id, MAX_METADATA_TEXT),
            ("kmsViaService", &self.kms_via_service, MAX_METADATA_TEXT),
            ("awsSourceVpc", &self.aws_source_vpc, MAX_METADATA_TEXT),
            ("awsSourceVpce", &self.aws_source_vpce, MAX_METADATA_TEXT),
        ];
        for (field, value, max) in all {
            if value.as_deref().is_some_and(|v| v.chars().count() > max) {
                return Err(XksError::validation(format!(
                    "requestMetadata.{field} is longer than {max} characters"
                )));
            }
        }
        Ok(())
    }
}

/// Reads the metadata of a GetHealthStatus body, as far as it has any: the
/// specification gives that call no ValidationException, so nothing is refused
/// (the body is authenticated; what it says is only recorded).
pub fn health_metadata(body: &[u8]) -> RequestMetadata<'_> {
    serde_json::from_slice::<Envelope<'_>>(body)
        .ok()
        .and_then(|e| e.request_metadata)
        .unwrap_or_default()
}

/// A body of GetKeyMetadata: only its metadata.
pub fn metadata_request(body: &[u8]) -> Result<RequestMetadata<'_>, XksError> {
    let envelope: Envelope<'_> = parse(body)?;
    checked_metadata(envelope.request_metadata, Api::Metadata)
}

fn checked_metadata(
    metadata: Option<RequestMetadata<'_>>,
    api: Api,
) -> Result<RequestMetadata<'_>, XksError> {
    let metadata = metadata.ok_or_else(|| XksError::validation("requestMetadata is required"))?;
    metadata.check(api)?;
    Ok(metadata)
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, XksError> {
    serde_json::from_slice(body)
        .map_err(|e| XksError::validation(format!("the request body is not the API's JSON: {e}")))
}

/// An Encrypt body, as sent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptBody<'a> {
    #[serde(borrow)]
    request_metadata: Option<RequestMetadata<'a>>,
    #[serde(borrow)]
    plaintext: Option<Cow<'a, str>>,
    #[serde(borrow)]
    encryption_algorithm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    additional_authenticated_data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ciphertext_data_integrity_value_algorithm: Option<Cow<'a, str>>,
}

/// An Encrypt request, checked and decoded.
pub struct EncryptRequest<'a> {
    /// Its metadata.
    pub metadata: RequestMetadata<'a>,
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The AAD (empty when absent).
    pub aad: Vec<u8>,
    /// Whether the integrity value was asked for.
    pub integrity_value: bool,
}

/// Parses and checks an Encrypt body.
pub fn encrypt_request(body: &[u8]) -> Result<EncryptRequest<'_>, XksError> {
    let b: EncryptBody<'_> = parse(body)?;
    let metadata = checked_metadata(b.request_metadata, Api::Encrypt)?;
    check_algorithm(b.encryption_algorithm.as_deref())?;
    let integrity_value = match b.ciphertext_data_integrity_value_algorithm.as_deref() {
        None => false,
        Some("SHA_256") => true,
        Some(other) => {
            return Err(XksError::validation(format!(
                "ciphertextDataIntegrityValueAlgorithm must be SHA_256, got {other:?}"
            )))
        }
    };
    let plaintext = Zeroizing::new(required("plaintext", b.plaintext.as_deref())?);
    let aad = optional(
        "additionalAuthenticatedData",
        b.additional_authenticated_data.as_deref(),
    )?;
    Ok(EncryptRequest {
        metadata,
        plaintext,
        aad,
        integrity_value,
    })
}

/// A Decrypt body, as sent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecryptBody<'a> {
    #[serde(borrow)]
    request_metadata: Option<RequestMetadata<'a>>,
    #[serde(borrow)]
    ciphertext: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ciphertext_metadata: Option<Cow<'a, str>>,
    #[serde(borrow)]
    encryption_algorithm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    additional_authenticated_data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    authentication_tag: Option<Cow<'a, str>>,
    #[serde(borrow)]
    initialization_vector: Option<Cow<'a, str>>,
}

/// A Decrypt request, checked and decoded.
pub struct DecryptRequest<'a> {
    /// Its metadata.
    pub metadata: RequestMetadata<'a>,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// The ciphertext metadata (empty when absent).
    pub ciphertext_metadata: Vec<u8>,
    /// The AAD (empty when absent).
    pub aad: Vec<u8>,
    /// The tag.
    pub tag: Vec<u8>,
    /// The IV.
    pub iv: Vec<u8>,
}

impl DecryptRequest<'_> {
    /// The ciphertext's fields, for the core.
    pub fn sealed(&self) -> xks::Ciphertext<'_> {
        xks::Ciphertext {
            metadata: &self.ciphertext_metadata,
            iv: &self.iv,
            ciphertext: &self.ciphertext,
            tag: &self.tag,
        }
    }
}

/// Parses and checks a Decrypt body: the fields' lengths are the specification's
/// (IV 12 or 16 bytes, tag 16, metadata at most 20); whether kcm made them is the
/// core's to find out.
pub fn decrypt_request(body: &[u8]) -> Result<DecryptRequest<'_>, XksError> {
    let b: DecryptBody<'_> = parse(body)?;
    let metadata = checked_metadata(b.request_metadata, Api::Decrypt)?;
    check_algorithm(b.encryption_algorithm.as_deref())?;
    let ciphertext = required("ciphertext", b.ciphertext.as_deref())?;
    let iv = required("initializationVector", b.initialization_vector.as_deref())?;
    if iv.len() != 12 && iv.len() != 16 {
        return Err(XksError::validation(format!(
            "initializationVector must be 12 or 16 bytes, got {}",
            iv.len()
        )));
    }
    let tag = required("authenticationTag", b.authentication_tag.as_deref())?;
    if tag.len() != xks::TAG_LEN {
        return Err(XksError::validation(format!(
            "authenticationTag must be {} bytes, got {}",
            xks::TAG_LEN,
            tag.len()
        )));
    }
    let ciphertext_metadata = optional("ciphertextMetadata", b.ciphertext_metadata.as_deref())?;
    if ciphertext_metadata.len() > xks::MAX_METADATA {
        return Err(XksError::validation(format!(
            "ciphertextMetadata must be at most {} bytes, got {}",
            xks::MAX_METADATA,
            ciphertext_metadata.len()
        )));
    }
    let aad = optional(
        "additionalAuthenticatedData",
        b.additional_authenticated_data.as_deref(),
    )?;
    Ok(DecryptRequest {
        metadata,
        ciphertext,
        ciphertext_metadata,
        aad,
        tag,
        iv,
    })
}

/// Version 1 has one algorithm.
fn check_algorithm(algorithm: Option<&str>) -> Result<(), XksError> {
    match algorithm {
        Some("AES_GCM") => Ok(()),
        None => Err(XksError::validation("encryptionAlgorithm is required")),
        Some(other) => Err(XksError::validation(format!(
            "encryptionAlgorithm must be AES_GCM, got {other:?}"
        ))),
    }
}

/// A required Base64 field, decoded.
fn required(field: &str, value: Option<&str>) -> Result<Vec<u8>, XksError> {
    let value = value.ok_or_else(|| XksError::validation(format!("{field} is required")))?;
    decode(field, value)
}

/// An optional Base64 field, decoded (empty when absent).
fn optional(field: &str, value: Option<&str>) -> Result<Vec<u8>, XksError> {
    value.map_or(Ok(Vec::new()), |v| decode(field, v))
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, XksError> {
    STANDARD
        .decode(value)
        .map_err(|_| XksError::validation(format!("{field} is not valid Base64")))
}

/// Base64 of `bytes`.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// GetKeyMetadata's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataResponse {
    /// `AES_256`, or the key's spec for a key the specification does not cover.
    pub key_spec: String,
    /// `ENCRYPT` and `DECRYPT` for an encryption key; `SIGN`, `VERIFY`, … else.
    pub key_usage: Vec<&'static str>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: &'static str,
}

/// Encrypt's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    /// Base64 ciphertext.
    pub ciphertext: String,
    /// Base64 metadata (always: kcm's ciphertexts need it).
    pub ciphertext_metadata: String,
    /// Base64 IV.
    pub initialization_vector: String,
    /// Base64 tag.
    pub authentication_tag: String,
    /// Base64 integrity value, when it was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value: Option<String>,
}

/// Decrypt's answer; the Base64 plaintext is wiped once the body is written.
#[derive(Serialize)]
pub struct DecryptResponse<'a> {
    /// Base64 plaintext.
    pub plaintext: &'a str,
}

/// GetHealthStatus's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// Always 1: each kcm node answers for itself.
    pub xks_proxy_fleet_size: u32,
    /// `kcm`.
    pub xks_proxy_vendor: &'static str,
    /// `kcm <version>`.
    pub xks_proxy_model: String,
    /// `kcm`: its keystores are the key manager AWS KMS reaches through it.
    pub ekm_vendor: &'static str,
    /// The keystore of the caller's system.
    pub ekm_fleet_details: Vec<EkmDetails>,
}

/// One key manager behind the proxy.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EkmDetails {
    /// The keystore's name.
    pub id: String,
    /// What it is.
    pub model: String,
    /// `ACTIVE` or `UNAVAILABLE`.
    pub health_status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(r: Result<impl Sized, XksError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.name(),
        }
    }

    const META: &str = r#""requestMetadata":{"awsPrincipalArn":"arn:aws:iam::1:user/a","kmsKeyArn":"arn:aws:kms:us-east-1:1:key/k","kmsOperation":"Encrypt","kmsRequestId":"r-1","somethingNew":"x"}"#;

    #[test]
    fn encrypt_bodies_are_checked_field_by_field() {
        let ok = format!(
            r#"{{{META},"plaintext":"AAEC","encryptionAlgorithm":"AES_GCM","ciphertextDataIntegrityValueAlgorithm":"SHA_256"}}"#
        );
        let r = encrypt_request(ok.as_bytes()).unwrap();
        assert_eq!(&r.plaintext[..], &[0, 1, 2]);
        assert!(r.integrity_value && r.aad.is_empty());
        assert_eq!(r.metadata.kms_request_id.as_deref(), Some("r-1"));
        for bad in [
            r#"{"plaintext":"AAEC","encryptionAlgorithm":"AES_GCM"}"#.to_string(),
            format!(r#"{{{META},"encryptionAlgorithm":"AES_GCM"}}"#),
            format!(r#"{{{META},"plaintext":"AAEC"}}"#),
            format!(r#"{{{META},"plaintext":"AAEC","encryptionAlgorithm":"AES_CBC"}}"#),
            format!(r#"{{{META},"plaintext":"A","encryptionAlgorithm":"AES_GCM"}}"#),
            format!(
                r#"{{{META},"plaintext":"AAEC","encryptionAlgorithm":"AES_GCM","ciphertextDataIntegrityValueAlgorithm":"MD5"}}"#
            ),
            format!(r#"{{{META},"plaintext":7,"encryptionAlgorithm":"AES_GCM"}}"#),
            "[]".into(),
            "not json".into(),
        ] {
            assert_eq!(
                name(encrypt_request(bad.as_bytes())),
                "ValidationException",
                "{bad}"
            );
        }
        let no_key_arn = r#"{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"Encrypt","kmsRequestId":"r"},"plaintext":"AAEC","encryptionAlgorithm":"AES_GCM"}"#;
        assert_eq!(
            name(encrypt_request(no_key_arn.as_bytes())),
            "ValidationException"
        );
        // GetKeyMetadata does without kmsKeyArn (AWS KMS's CreateKey sends none).
        let create_key = r#"{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"CreateKey","kmsRequestId":"r"}}"#;
        assert!(metadata_request(create_key.as_bytes()).is_ok());
        let long_arn = format!(
            r#"{{"requestMetadata":{{"awsPrincipalArn":"{}","kmsOperation":"x","kmsRequestId":"r"}}}}"#,
            "a".repeat(MAX_ARN + 1)
        );
        assert_eq!(
            name(metadata_request(long_arn.as_bytes())),
            "ValidationException"
        );
    }

    #[test]
    fn decrypt_bodies_keep_the_specifications_lengths() {
        let body = |iv: &str, tag: &str, md: &str| {
            format!(
                r#"{{{META},"ciphertext":"AAEC","encryptionAlgorithm":"AES_GCM","initializationVector":"{iv}","authenticationTag":"{tag}"{md}}}"#
            )
        };
        let iv12 = b64(&[0; 12]);
        let iv16 = b64(&[0; 16]);
        let tag = b64(&[0; 16]);
        assert!(decrypt_request(body(&iv12, &tag, "").as_bytes()).is_ok());
        assert!(decrypt_request(body(&iv16, &tag, "").as_bytes()).is_ok());
        let md20 = format!(r#","ciphertextMetadata":"{}""#, b64(&[0; 20]));
        assert!(decrypt_request(body(&iv12, &tag, &md20).as_bytes()).is_ok());
        let md21 = format!(r#","ciphertextMetadata":"{}""#, b64(&[0; 21]));
        for bad in [
            body(&b64(&[0; 11]), &tag, ""),
            body(&iv12, &b64(&[0; 15]), ""),
            body(&iv12, &tag, &md21),
            body("!!", &tag, ""),
        ] {
            assert_eq!(
                name(decrypt_request(bad.as_bytes())),
                "ValidationException",
                "{bad}"
            );
        }
    }

    #[test]
    fn health_bodies_are_never_refused() {
        assert!(health_metadata(b"garbage").kms_request_id.is_none());
        let m = health_metadata(
            br#"{"requestMetadata":{"kmsRequestId":"h-1","kmsOperation":"KmsHealthCheck"}}"#,
        );
        assert_eq!(m.kms_request_id.as_deref(), Some("h-1"));
    }
}
