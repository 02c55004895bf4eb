//! `/v1/access-keys`: the access keys of the caller's tenant, and the role names.

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// A role name, as accepted and returned by the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RoleName {
    /// Everything in the tenant.
    TenantAdmin,
    /// Manage keys; no data-plane use.
    KeyAdmin,
    /// Cryptographic operations (and reading key metadata).
    KeyUser,
    /// Read metadata and audit only.
    Auditor,
    /// The operator: manages tenants; cannot use tenant keys.
    SystemAdmin,
}

/// Body of `POST /v1/access-keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"role": "key-user", "system": "payments", "description": "payments service"})))]
pub struct CreateAccessKeyRequest {
    /// What the key's secret signs: `sigv4` (the default: kcm's own API and the AWS
    /// KMS API) or `xks` (AWS KMS's calls to the XKS proxy API; needs `system`, takes
    /// role `key-user` and no `operations`: it may call the XKS operations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(sigv4|xks)$"))]
    pub kind: Option<String>,
    /// Role of the new key.
    #[cfg_attr(feature = "openapi", schema(value_type = RoleName))]
    pub role: String,
    /// Name or id of the system the key is scoped to; unscoped when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub description: Option<String>,
    /// The only operations the key may call (names as in the API: `Encrypt`,
    /// `Decrypt`, `DescribeKey`, …); unlimited (within its role) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub operations: Option<Vec<String>>,
}

/// An access key, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessKey {
    /// The public access key id.
    pub access_key_id: String,
    /// What its secret signs: `sigv4` or `xks`.
    #[serde(default = "sigv4")]
    pub kind: String,
    /// Role.
    #[cfg_attr(feature = "openapi", schema(value_type = RoleName))]
    pub role: String,
    /// Owning tenant id; `null` for the operator's system-admin keys.
    pub tenant_id: Option<String>,
    /// Name of the system the key is scoped to; `null` when unscoped.
    pub system: Option<String>,
    /// Free text.
    pub description: String,
    /// Whether the key may be used.
    pub enabled: bool,
    /// The only operations the key may call; `null` when unlimited.
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// The key's ARN in key policies and grants
    /// (`arn:aws:iam::<account>:user/<access key id>`); `null` for the operator's keys.
    #[serde(default)]
    pub arn: Option<String>,
}

/// A newly created access key with its secret: the only response that carries one.
// The secret is wiped from memory when this value is dropped; `Debug` redacts it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedAccessKey {
    /// The key's public details.
    #[serde(flatten)]
    pub access_key: AccessKey,
    /// The secret access key. Shown once: store it now, it cannot be read again.
    pub secret_access_key: String,
    /// For an access key of kind `vault`: the token to send as `X-Vault-Token`
    /// (`kcm.<access key id>.<secret>`). Shown once, as the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_token: Option<String>,
}

impl std::fmt::Debug for CreatedAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedAccessKey")
            .field("access_key", &self.access_key)
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "vault_token",
                &self.vault_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl Drop for CreatedAccessKey {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        if let Some(token) = &mut self.vault_token {
            token.zeroize();
        }
    }
}

/// Response of `GET /v1/access-keys` (never with secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessKeyList {
    /// The caller's tenant's access keys (for the operator: the operator's keys).
    pub access_keys: Vec<AccessKey>,
}

/// The kind of access keys listed by servers from before kinds.
fn sigv4() -> String {
    "sigv4".into()
}
