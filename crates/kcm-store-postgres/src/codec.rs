//! Encoding records into column values and decoding rows into records, in the
//! SQLite store's stored forms exactly (so snapshots are portable). Anything
//! unexpected in a row is [`StoreError::Corrupt`].
//!
//! Each record type has a column list (`*_COLS`) and a decoder reading the columns
//! in that order.

use std::collections::BTreeMap;

use kcm_core::authz::OpSet;
use kcm_core::keyspec::{KeyOrigin, KeySpec, KeyUsage};
use kcm_core::lifecycle::{KeyState, Lifecycle};
use kcm_core::model::*;
use kcm_core::policy::GrantRecord;
use kcm_core::store::{StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

fn get<'r, T>(row: &'r PgRow, idx: usize, what: &str) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(idx).map_err(|e| corrupt(what, e))
}

/// A `u32` stored as BIGINT.
fn get_u32(row: &PgRow, idx: usize, what: &str) -> StoreResult<u32> {
    let v: i64 = get(row, idx, what)?;
    u32::try_from(v).map_err(|_| corrupt(what, format!("{v} is out of range")))
}

/// A `u64` stored as BIGINT.
fn get_u64(row: &PgRow, idx: usize, what: &str) -> StoreResult<u64> {
    let v: i64 = get(row, idx, what)?;
    u64::try_from(v).map_err(|_| corrupt(what, format!("{v} is out of range")))
}

fn parsed<T>(row: &PgRow, idx: usize, what: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let s: String = get(row, idx, what)?;
    parse(&s).ok_or_else(|| corrupt(what, format!("unrecognised value {s:?}")))
}

fn parsed_opt<T>(
    row: &PgRow,
    idx: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> StoreResult<Option<T>> {
    let s: Option<String> = get(row, idx, what)?;
    s.map(|s| parse(&s).ok_or_else(|| corrupt(what, format!("unrecognised value {s:?}"))))
        .transpose()
}

fn lifecycle(row: &PgRow, idx: usize) -> StoreResult<Lifecycle> {
    parsed(row, idx, "key state", KeyState::parse).map(Lifecycle::stored)
}

/// A `u32` or `u64` as BIGINT; values past `i64::MAX` cannot be stored.
pub(crate) fn int<T: TryInto<i64> + Copy + std::fmt::Display>(
    v: T,
    what: &str,
) -> StoreResult<i64> {
    v.try_into()
        .map_err(|_| StoreError::Unencodable(format!("{what} {v} is larger than 2^63-1")))
}

/// Encodes tags as a JSON object.
pub(crate) fn tags_json(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).expect("a string map always serialises")
}

/// Column list for [`tenant`].
pub(crate) const TENANT_COLS: &str =
    "id, name, account_id, default_root_key_id, default_system_id, created_at";

/// Decodes a tenant.
pub(crate) fn tenant(row: &PgRow) -> StoreResult<TenantRecord> {
    Ok(TenantRecord {
        id: parsed(row, 0, "tenant id", TenantId::parse)?,
        name: get(row, 1, "tenant name")?,
        account_id: get(row, 2, "account id")?,
        default_root_key_id: parsed(row, 3, "root key id", RootKeyId::parse)?,
        default_system_id: parsed(row, 4, "system id", SystemId::parse)?,
        created_at: get(row, 5, "created_at")?,
    })
}

/// Column list for [`access_key`].
pub(crate) const ACCESS_KEY_COLS: &str = "id, tenant_id, role, system_id, sealed_secret, \
     description, enabled, created_at, secret_salt, secret_verifier, operations";

/// Splits a stored secret into its columns: `(sealed_secret, secret_salt,
/// secret_verifier)`. A derived secret keeps an empty `sealed_secret`.
pub(crate) fn secret_columns(secret: &StoredSecret) -> (&[u8], Option<&[u8]>, Option<&[u8]>) {
    match secret {
        StoredSecret::Derived { salt, verifier } => (&[], Some(salt), Some(verifier)),
        StoredSecret::Sealed(sealed) => (sealed, None, None),
    }
}

/// Encodes an access key's operation limit: `None` stays NULL (unlimited), a list
/// becomes its names joined by commas (the empty list: the empty string).
///
/// A name that is empty or contains a comma could not be read back as written, so
/// it fails the write instead.
pub(crate) fn operation_names(ops: Option<&[String]>) -> StoreResult<Option<String>> {
    let Some(ops) = ops else { return Ok(None) };
    if let Some(bad) = ops.iter().find(|op| op.is_empty() || op.contains(',')) {
        return Err(StoreError::Unencodable(format!(
            "operation name {bad:?} is empty or contains a comma"
        )));
    }
    Ok(Some(ops.join(",")))
}

/// Decodes an access key.
pub(crate) fn access_key(row: &PgRow) -> StoreResult<AccessKeyRecord> {
    let sealed: Vec<u8> = get(row, 4, "sealed secret")?;
    let salt: Option<Vec<u8>> = get(row, 8, "secret salt")?;
    let verifier: Option<Vec<u8>> = get(row, 9, "secret verifier")?;
    let secret = match (salt, verifier) {
        (Some(salt), Some(verifier)) => StoredSecret::Derived { salt, verifier },
        (None, None) => StoredSecret::Sealed(sealed),
        _ => {
            return Err(corrupt(
                "access key secret",
                "salt and verifier not both set",
            ))
        }
    };
    let operations: Option<String> = get(row, 10, "operations")?;
    let operations = operations.map(|s| match s.as_str() {
        "" => Vec::new(),
        s => s.split(',').map(str::to_owned).collect(),
    });
    Ok(AccessKeyRecord {
        id: get(row, 0, "access key id")?,
        tenant_id: parsed_opt(row, 1, "tenant id", TenantId::parse)?,
        role: parsed(row, 2, "role", Role::parse)?,
        system_id: parsed_opt(row, 3, "system id", SystemId::parse)?,
        secret,
        operations,
        description: get(row, 5, "description")?,
        enabled: get(row, 6, "enabled")?,
        created_at: get(row, 7, "created_at")?,
    })
}

/// Column list for [`root_key`].
pub(crate) const ROOT_KEY_COLS: &str =
    "id, tenant_id, keystore, handle, origin, state, description, created_at";

/// Decodes a root key.
pub(crate) fn root_key(row: &PgRow) -> StoreResult<RootKeyRecord> {
    Ok(RootKeyRecord {
        id: parsed(row, 0, "root key id", RootKeyId::parse)?,
        tenant_id: parsed_opt(row, 1, "tenant id", TenantId::parse)?,
        keystore: get(row, 2, "keystore")?,
        handle: get(row, 3, "handle")?,
        origin: parsed(row, 4, "root key origin", RootKeyOrigin::parse)?,
        lifecycle: lifecycle(row, 5)?,
        description: get(row, 6, "description")?,
        created_at: get(row, 7, "created_at")?,
    })
}

/// Column list for [`system`].
pub(crate) const SYSTEM_COLS: &str =
    "id, tenant_id, name, kind, description, active_key_version, created_at, region, labels";

/// Decodes a system.
pub(crate) fn system(row: &PgRow) -> StoreResult<SystemRecord> {
    Ok(SystemRecord {
        id: parsed(row, 0, "system id", SystemId::parse)?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        name: get(row, 2, "system name")?,
        kind: get(row, 3, "kind")?,
        description: get(row, 4, "description")?,
        active_key_version: get_u32(row, 5, "active key version")?,
        created_at: get(row, 6, "created_at")?,
        region: get(row, 7, "region")?,
        labels: parsed(row, 8, "system labels", |s| serde_json::from_str(s).ok())?,
    })
}

/// Column list for [`system_key`].
pub(crate) const SYSTEM_KEY_COLS: &str =
    "system_id, version, root_key_id, wrapped, state, created_at";

/// Decodes a system key version.
pub(crate) fn system_key(row: &PgRow) -> StoreResult<SystemKeyRecord> {
    Ok(SystemKeyRecord {
        system_id: parsed(row, 0, "system id", SystemId::parse)?,
        version: get_u32(row, 1, "version")?,
        root_key_id: parsed(row, 2, "root key id", RootKeyId::parse)?,
        wrapped: get(row, 3, "wrapped")?,
        lifecycle: lifecycle(row, 4)?,
        created_at: get(row, 5, "created_at")?,
    })
}

/// Column list for [`service_key`].
pub(crate) const SERVICE_KEY_COLS: &str = "id, tenant_id, system_id, description, usage, spec, \
     origin, state, created_at, deletion_at, rotation_period_days, next_rotation_at, \
     primary_version, tags, policy, import_check";

/// Decodes a service key.
pub(crate) fn service_key(row: &PgRow) -> StoreResult<ServiceKeyRecord> {
    let period: Option<i64> = get(row, 10, "rotation period")?;
    let next: Option<i64> = get(row, 11, "next rotation")?;
    let rotation = match (period, next) {
        (Some(period), Some(next_rotation_at)) => Some(RotationSchedule {
            period_days: u32::try_from(period)
                .map_err(|_| corrupt("rotation period", format!("{period} is out of range")))?,
            next_rotation_at,
        }),
        (None, None) => None,
        _ => return Err(corrupt("rotation", "period and next rotation not both set")),
    };
    let tags: String = get(row, 13, "tags")?;
    Ok(ServiceKeyRecord {
        id: parsed(row, 0, "key id", KeyId::parse)?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        system_id: parsed(row, 2, "system id", SystemId::parse)?,
        description: get(row, 3, "description")?,
        usage: parsed(row, 4, "key usage", KeyUsage::parse)?,
        spec: parsed(row, 5, "key spec", KeySpec::parse)?,
        origin: parsed(row, 6, "key origin", KeyOrigin::parse)?,
        lifecycle: lifecycle(row, 7)?,
        created_at: get(row, 8, "created_at")?,
        deletion_at: get(row, 9, "deletion_at")?,
        rotation,
        primary_version: get_u32(row, 12, "primary version")?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt("tags", e))?,
        policy: get(row, 14, "policy")?,
        import_check: get(row, 15, "import check")?,
    })
}

/// Column list for [`key_version`].
pub(crate) const KEY_VERSION_COLS: &str =
    "key_id, version, system_key_version, wrapped, origin, created_at";

/// Decodes a key version.
pub(crate) fn key_version(row: &PgRow) -> StoreResult<KeyVersionRecord> {
    Ok(KeyVersionRecord {
        key_id: parsed(row, 0, "key id", KeyId::parse)?,
        version: get_u32(row, 1, "version")?,
        system_key_version: get_u32(row, 2, "system key version")?,
        wrapped: get(row, 3, "wrapped")?,
        origin: parsed(row, 4, "version origin", VersionOrigin::parse)?,
        created_at: get(row, 5, "created_at")?,
    })
}

/// Column list for [`alias`].
pub(crate) const ALIAS_COLS: &str = "tenant_id, name, key_id, created_at, updated_at";

/// Decodes an alias.
pub(crate) fn alias(row: &PgRow) -> StoreResult<AliasRecord> {
    Ok(AliasRecord {
        tenant_id: parsed(row, 0, "tenant id", TenantId::parse)?,
        name: get(row, 1, "alias name")?,
        key_id: parsed(row, 2, "key id", KeyId::parse)?,
        created_at: get(row, 3, "created_at")?,
        updated_at: get(row, 4, "updated_at")?,
    })
}

/// Encodes an operation set as its operation names joined by commas (never the bit
/// pattern, whose positions may change between releases).
pub(crate) fn op_set_names(ops: OpSet) -> String {
    let mut out = String::new();
    for op in ops.iter() {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(op.as_str());
    }
    out
}

/// Column list for [`grant`].
pub(crate) const GRANT_COLS: &str = "id, tenant_id, key_id, grantee, retiring_principal, \
     operations, name, issuing_principal, created_at";

/// Decodes a grant.
pub(crate) fn grant(row: &PgRow) -> StoreResult<GrantRecord> {
    let names: String = get(row, 5, "grant operations")?;
    let operations = if names.is_empty() {
        OpSet::EMPTY
    } else {
        OpSet::parse(names.split(',')).map_err(|e| corrupt("grant operations", e))?
    };
    Ok(GrantRecord {
        id: get(row, 0, "grant id")?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        key_id: parsed(row, 2, "key id", KeyId::parse)?,
        grantee: get(row, 3, "grantee")?,
        retiring_principal: get(row, 4, "retiring principal")?,
        operations,
        name: get(row, 6, "grant name")?,
        issuing_principal: get(row, 7, "issuing principal")?,
        created_at: get(row, 8, "created_at")?,
    })
}

/// The `chain` column value of an audit chain: `''` for the operator's, else the
/// tenant id.
pub(crate) fn chain_key(chain: AuditChain) -> String {
    chain.map(|t| t.to_string()).unwrap_or_default()
}

fn chain(row: &PgRow, idx: usize) -> StoreResult<AuditChain> {
    let s: String = get(row, idx, "audit chain")?;
    if s.is_empty() {
        return Ok(None);
    }
    TenantId::parse(&s)
        .map(Some)
        .ok_or_else(|| corrupt("audit chain", format!("unrecognised value {s:?}")))
}

/// Encodes an audit record's keys as a JSON array.
pub(crate) fn audit_keys_json(keys: &[AuditKey]) -> String {
    serde_json::to_string(keys).expect("audit keys always serialise")
}

/// The `key_ids` column of an audit record: the key ids wrapped and separated by
/// commas (`,id1,id2,`; `,` for none), so `strpos(key_ids, ',' || $id || ',')` finds one.
pub(crate) fn audit_key_ids(keys: &[AuditKey]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(1 + keys.len() * 37);
    out.push(',');
    for k in keys {
        let _ = write!(out, "{},", k.id);
    }
    out
}

/// Column list for [`audit_record`].
pub(crate) const AUDIT_RECORD_COLS: &str = "chain, seq, time, principal, role, front_door, \
     operation, keys, system_id, outcome, error, request_id, source, prev_hash, hash";

/// Decodes an audit record.
pub(crate) fn audit_record(row: &PgRow) -> StoreResult<AuditRecord> {
    let keys: String = get(row, 7, "audit keys")?;
    Ok(AuditRecord {
        tenant: chain(row, 0)?,
        seq: get_u64(row, 1, "seq")?,
        time: get(row, 2, "time")?,
        principal: get(row, 3, "principal")?,
        role: parsed_opt(row, 4, "role", Role::parse)?,
        front_door: get(row, 5, "front door")?,
        operation: get(row, 6, "operation")?,
        keys: serde_json::from_str(&keys).map_err(|e| corrupt("audit keys", e))?,
        system: parsed_opt(row, 8, "system id", SystemId::parse)?,
        outcome: parsed(row, 9, "audit outcome", AuditOutcome::parse)?,
        error: get(row, 10, "error")?,
        request_id: get(row, 11, "request id")?,
        source: get(row, 12, "source")?,
        prev_hash: get(row, 13, "prev hash")?,
        hash: get(row, 14, "hash")?,
    })
}

/// Column list for [`audit_checkpoint`].
pub(crate) const AUDIT_CHECKPOINT_COLS: &str = "chain, seq, hash, time, signature";

/// Decodes an audit checkpoint.
pub(crate) fn audit_checkpoint(row: &PgRow) -> StoreResult<AuditCheckpoint> {
    Ok(AuditCheckpoint {
        tenant: chain(row, 0)?,
        seq: get_u64(row, 1, "seq")?,
        hash: get(row, 2, "hash")?,
        time: get(row, 3, "time")?,
        signature: get(row, 4, "signature")?,
    })
}

/// Decodes an audit chain (first column) and its last `seq` (second).
pub(crate) fn audit_chain(row: &PgRow) -> StoreResult<(AuditChain, u64)> {
    Ok((chain(row, 0)?, get_u64(row, 1, "seq")?))
}

/// Decodes a `seq` (first column) and `hash` (second).
pub(crate) fn seq_and_hash(row: &PgRow) -> StoreResult<(u64, String)> {
    Ok((get_u64(row, 0, "seq")?, get(row, 1, "hash")?))
}

/// Decodes a bare key id (first column).
pub(crate) fn key_id(row: &PgRow) -> StoreResult<KeyId> {
    parsed(row, 0, "key id", KeyId::parse)
}

/// Decodes a single text column.
pub(crate) fn text(row: &PgRow) -> StoreResult<String> {
    get(row, 0, "value")
}

/// Decodes a single nullable BIGINT column.
pub(crate) fn opt_int(row: &PgRow) -> StoreResult<Option<i64>> {
    get(row, 0, "value")
}
