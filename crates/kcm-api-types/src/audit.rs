//! `/v1/audit`: the caller's audit chain, its signed checkpoints and the signing key.
//!
//! The records and checkpoints themselves are the core's types
//! (`kcm_core::model::AuditRecord`, `AuditCheckpoint`), served exactly as stored and
//! hashed so that a client can verify them. The pages here are generic over them, so
//! that this crate — and a client built on it — does not depend on the core.

use serde::{Deserialize, Serialize};

/// Filters and paging of `GET /v1/audit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only records with a sequence number greater than this (paging: pass the
    /// previous page's `next_after`).
    #[cfg_attr(
        feature = "openapi",
        param(format = "uint64", maximum = 18446744073709551615_u64)
    )]
    pub after: Option<u64>,
    /// Page size, 1–1000 (default 100).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub limit: Option<usize>,
    /// Only records at or after this time (RFC 3339).
    #[cfg_attr(feature = "openapi", param(format = DateTime))]
    pub from: Option<String>,
    /// Only records before this time (RFC 3339).
    #[cfg_attr(feature = "openapi", param(format = DateTime))]
    pub to: Option<String>,
    /// Only records naming this key id (a UUID, lower-case).
    #[cfg_attr(
        feature = "openapi",
        param(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    )]
    pub key: Option<String>,
    /// Only records of this access key id.
    pub principal: Option<String>,
    /// Only records of this operation (`Encrypt`, `CreateSystem`, …).
    pub operation: Option<String>,
}

/// Paging of `GET /v1/audit/checkpoints`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[serde(deny_unknown_fields)]
pub struct CheckpointParams {
    /// Only checkpoints covering records after this sequence number.
    #[cfg_attr(
        feature = "openapi",
        param(format = "uint64", maximum = 18446744073709551615_u64)
    )]
    pub after: Option<u64>,
    /// Page size, 1–1000 (default 100).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub limit: Option<usize>,
}

/// A page of audit records.
// `R` is the core's `AuditRecord`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct AuditPage<R> {
    /// Records, by sequence number. Each is an object with `seq`, `time` (Unix ms),
    /// `tenant`, `principal`, `role`, `front_door`, `operation`, `keys`, `system`,
    /// `outcome`, `error`, `request_id`, `source`, `prev_hash`, `hash`, and
    /// `client_request_id` when the client named its own id for the request.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub records: Vec<R>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

/// A page of signed checkpoints.
// `C` is the core's `AuditCheckpoint`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct CheckpointPage<C> {
    /// Checkpoints (`tenant`, `seq`, `hash`, `time`, `signature`), by `seq`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub checkpoints: Vec<C>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

/// The signed head of the caller's audit chain, made now (`GET /v1/audit/head`).
// `C` is the core's `AuditCheckpoint`, signed as a head.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct HeadOf<C> {
    /// `tenant`, `seq`, `hash`, `time`, `signature`: the chain had `seq` records
    /// ending in `hash` at `time`, signed by the audit signing key over
    /// `kcm-audit-head-v1`. Keep it outside the store; `kcm audit verify --head`
    /// checks a chain against it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub head: C,
}

/// The audit signing key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningKey {
    /// Algorithm (`Ed25519`).
    pub algorithm: String,
    /// The raw 32-byte public key, hex.
    pub public_key: String,
}
