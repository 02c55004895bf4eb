//! The JSON bodies of the XKS proxy API v1 (the public "AWS KMS External Key
//! Store Proxy API" specification), as kcm sends and reads them. Binary fields
//! are standard Base64.

use serde::{Deserialize, Serialize};

/// `requestMetadata`: context for the proxy's audit log and optional secondary
/// authorisation. kcm names itself as the principal and the keystore key as the
/// KMS key, and sends a fresh request id the proxy can log.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata<'a> {
    /// The caller: always `kcm` (the proxy sees kcm, not kcm's callers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<&'a str>,
    /// The key kcm uses, `kcm:<keystore>:<externalKeyId>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<&'a str>,
    /// What kcm is doing: `Encrypt`, `Decrypt`, `DescribeKey`, `KmsHealthCheck`.
    pub kms_operation: &'a str,
    /// A fresh UUID per call, logged by kcm at debug level for correlation.
    pub kms_request_id: &'a str,
}

/// Every request: the metadata beside the operation's own fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a, P: Serialize> {
    /// Request context.
    pub request_metadata: RequestMetadata<'a>,
    /// The operation's own fields (none for metadata and health).
    #[serde(flatten)]
    pub payload: &'a P,
}

/// The payload of GetKeyMetadata and GetHealthStatus: nothing.
#[derive(Serialize)]
pub struct Empty {}

/// GetKeyMetadata response.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataResponse {
    /// `AES_256` for the only kind v1 supports.
    pub key_spec: String,
    /// Must include `ENCRYPT` and `DECRYPT`.
    pub key_usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: String,
}

/// Encrypt request.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest<'a> {
    /// The plaintext (a system key), Base64.
    pub plaintext: &'a str,
    /// Always `AES_GCM`.
    pub encryption_algorithm: &'a str,
    /// The associated data kcm binds, Base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<&'a str>,
    /// Always `SHA_256`: kcm checks the proxy's integrity value before it stores
    /// a wrapped key it could not unwrap later.
    pub ciphertext_data_integrity_value_algorithm: &'a str,
}

/// Encrypt response.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    /// Base64 ciphertext, as long as the plaintext.
    pub ciphertext: String,
    /// Base64 vendor metadata, at most 20 bytes.
    #[serde(default)]
    pub ciphertext_metadata: Option<String>,
    /// Base64 IV, 12 or 16 bytes.
    pub initialization_vector: String,
    /// Base64 16-byte tag.
    pub authentication_tag: String,
    /// Base64 SHA-256 over aad ‖ metadata ‖ iv ‖ ciphertext ‖ tag.
    #[serde(default)]
    pub ciphertext_data_integrity_value: Option<String>,
}

/// Decrypt request.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest<'a> {
    /// Base64 ciphertext.
    pub ciphertext: &'a str,
    /// Base64 vendor metadata from the encryption, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<&'a str>,
    /// Always `AES_GCM`.
    pub encryption_algorithm: &'a str,
    /// The associated data, Base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<&'a str>,
    /// Base64 tag.
    pub authentication_tag: &'a str,
    /// Base64 IV.
    pub initialization_vector: &'a str,
}

/// Decrypt response.
#[derive(Deserialize)]
pub struct DecryptResponse {
    /// Base64 plaintext (zeroized by the caller once decoded).
    pub plaintext: String,
}

/// GetHealthStatus response (the fields kcm reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// One entry per key manager behind the proxy.
    #[serde(default)]
    pub ekm_fleet_details: Vec<EkmDetails>,
}

/// One key manager behind the proxy.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EkmDetails {
    /// The manager's id.
    #[serde(default)]
    pub id: String,
    /// `ACTIVE`, `DEGRADED` or `UNAVAILABLE`.
    pub health_status: String,
}

/// The body of every error: `errorName` and an optional `errorMessage`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// One of the spec's error names, e.g. `KeyNotFoundException`.
    pub error_name: String,
    /// Printable ASCII, under 512 characters.
    #[serde(default)]
    pub error_message: Option<String>,
}
