//! `/v1/tenants`: tenants, managed by the operator.

use serde::{Deserialize, Serialize};

use crate::CreatedAccessKey;

/// Body of `POST /v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "acme"})))]
pub struct CreateTenantRequest {
    /// Unique tenant name: 1–64 letters, digits, `-`, `_` or `.`, and not a UUID.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._-]{1,64}$", min_length = 1, max_length = 64)
    )]
    pub name: String,
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// Tenant id (UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The 12-digit account id used in key ARNs.
    pub account_id: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// Response of `POST /v1/tenants`: the tenant and its first tenant-admin access key.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTenantResponse {
    /// The new tenant.
    pub tenant: Tenant,
    /// Its first tenant-admin access key; the secret is shown only here.
    pub access_key: CreatedAccessKey,
}

/// Response of `GET /v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantList {
    /// Every tenant.
    pub tenants: Vec<Tenant>,
}
