//! `/v1/audit`: the caller's audit chain (a tenant's for tenant-admins and auditors,
//! the operator's for system-admin), its signed checkpoints and the signing key.
//!
//! Records are served exactly as stored and hashed (see `kcm_core::audit`), so what
//! a client fetches here can be verified offline (`kcm audit verify`).

use axum::extract::{Request, State};
use axum::response::Response;
use kcm_api_types::{AuditPage, AuditParams, CheckpointPage, CheckpointParams, HeadOf, SigningKey};
use kcm_core::authz::Op;
use kcm_core::model::{AuditCheckpoint, AuditQuery, AuditRecord, KeyId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::call::{ok, query, QueryParams};
use crate::error::{ErrorBody, RestError};
use crate::RestApi;

// The pages as this server fills them. Named through aliases because utoipa names a
// generic type spelled out in `body = …` after its arguments (`AuditPage_AuditRecord`);
// through an alias the schema keeps the page's own name, `AuditPage`.
type RecordPage = AuditPage<AuditRecord>;
type CheckpointPageOf = CheckpointPage<AuditCheckpoint>;
type AuditHeadOf = HeadOf<AuditCheckpoint>;

const DEFAULT_PAGE: usize = 100;

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, RestError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|e| {
                    RestError::invalid_input(format!(
                        "query parameter `{name}` must be an RFC 3339 time such as 2026-12-01T10:00:00Z: {e}"
                    ))
                })
        })
        .transpose()
}

/// Where the next page starts: after the last item of a full page, none after a
/// shorter one (the last).
fn next_after<T>(items: &[T], limit: usize, seq: impl Fn(&T) -> u64) -> Option<u64> {
    (items.len() == limit)
        .then(|| items.last().map(seq))
        .flatten()
}

/// Read the caller's audit chain, with filters.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit", operation_id = "ListAuditRecords",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of records", body = RecordPage),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 403, description = "Role may not read the audit log", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list_records(
    State(api): State<RestApi>,
    params: QueryParams<AuditParams>,
    request: Request,
) -> Response {
    api.serve(Op::ListAuditRecords, request, async |call| {
        let p = query(params)?;
        let key = p
            .key
            .as_deref()
            .map(|k| {
                KeyId::parse(k).ok_or_else(|| {
                    RestError::invalid_input(format!(
                        "query parameter `key` is not a key id: {k:?}"
                    ))
                })
            })
            .transpose()?;
        let limit = p.limit.unwrap_or(DEFAULT_PAGE);
        let query = AuditQuery {
            tenant: None,
            after_seq: p.after.unwrap_or(0),
            limit,
            from: time_param("from", p.from.as_deref())?,
            to: time_param("to", p.to.as_deref())?,
            key,
            principal: p.principal,
            operation: p.operation,
        };
        let records = call.service.list_audit_records(call.caller, query).await?;
        let next_after = next_after(&records, limit, |r| r.seq);
        ok(RecordPage {
            records,
            next_after,
        })
    })
    .await
}

/// Read the signed checkpoints of the caller's audit chain.
#[utoipa::path(
    get, path = "/v1/audit/checkpoints", tag = "audit", operation_id = "ListAuditCheckpoints",
    params(CheckpointParams),
    responses(
        (status = 200, description = "A page of checkpoints", body = CheckpointPageOf),
        (status = 403, description = "Role may not read the audit log", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list_checkpoints(
    State(api): State<RestApi>,
    params: QueryParams<CheckpointParams>,
    request: Request,
) -> Response {
    api.serve(Op::ListAuditCheckpoints, request, async |call| {
        let p = query(params)?;
        let limit = p.limit.unwrap_or(DEFAULT_PAGE);
        let after = p.after.unwrap_or(0);
        let checkpoints = call
            .service
            .list_audit_checkpoints(call.caller, after, limit);
        let checkpoints = checkpoints.await?;
        let next_after = next_after(&checkpoints, limit, |c| c.seq);
        ok(CheckpointPageOf {
            checkpoints,
            next_after,
        })
    })
    .await
}

/// A signed head of the caller's audit chain, made now: keep it outside the store,
/// to check later exports and the store against (records cut from the end are
/// missing under it).
#[utoipa::path(
    get, path = "/v1/audit/head", tag = "audit", operation_id = "GetAuditHead",
    responses(
        (status = 200, description = "The signed head", body = AuditHeadOf),
        (status = 403, description = "Role may not read the audit log", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn head(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::GetAuditHead, request, async |call| {
        let head = call.service.audit_head(call.caller).await?;
        ok(AuditHeadOf { head })
    })
    .await
}

/// The public key that signs audit checkpoints.
#[utoipa::path(
    get, path = "/v1/audit/signing-key", tag = "audit", operation_id = "GetAuditSigningKey",
    responses(
        (status = 200, description = "The Ed25519 public key", body = SigningKey),
        (status = 403, description = "Role may not read the audit log", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn signing_key(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::GetAuditSigningKey, request, async |call| {
        let key = call.service.audit_signing_public_key(call.caller).await?;
        ok(SigningKey {
            algorithm: "Ed25519".into(),
            public_key: hex::encode(key),
        })
    })
    .await
}
