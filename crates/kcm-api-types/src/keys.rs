//! `/v1/keys`: lifecycle changes of service keys that the AWS KMS API has no words
//! for (marking a key compromised, destroying a compromised key). Everything else
//! about service keys is on the AWS API.

use serde::{Deserialize, Serialize};

/// A service key (L3) after a lifecycle change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceKey {
    /// Key id (UUID).
    pub id: String,
    /// The system whose system key wraps it (UUID).
    pub system_id: String,
    /// Key spec (`SYMMETRIC_DEFAULT`, `RSA_2048`, …).
    #[cfg_attr(feature = "openapi", schema(example = "SYMMETRIC_DEFAULT"))]
    pub key_spec: String,
    /// Key usage (`ENCRYPT_DECRYPT`, `SIGN_VERIFY`, …).
    #[cfg_attr(feature = "openapi", schema(example = "ENCRYPT_DECRYPT"))]
    pub key_usage: String,
    /// `AWS_KMS` (made by kcm) or `EXTERNAL` (imported).
    pub origin: String,
    /// Lifecycle state (`active`, `compromised`, `destroyed-compromised`, …).
    #[cfg_attr(feature = "openapi", schema(example = "compromised"))]
    pub state: String,
    /// Free text.
    pub description: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// When a scheduled deletion takes effect (RFC 3339), if one is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_at: Option<String>,
}
