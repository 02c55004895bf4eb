//! Decoding rows into records. Anything unexpected is [`StoreError::Corrupt`].
//!
//! Each record type has a column list (`*_COLS`) and a decoder reading the
//! columns in that order.

use std::collections::BTreeMap;

use kcm_core::lifecycle::KeyState;
use kcm_core::model::*;
use kcm_core::store::{StoreError, StoreResult};
use rusqlite::types::FromSql;
use rusqlite::Row;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

fn get<T: FromSql>(row: &Row<'_>, idx: usize, what: &str) -> StoreResult<T> {
    row.get(idx).map_err(|e| corrupt(what, e))
}

fn parsed<T>(
    row: &Row<'_>,
    idx: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> StoreResult<T> {
    let s: String = get(row, idx, what)?;
    parse(&s).ok_or_else(|| corrupt(what, format!("unrecognised value {s:?}")))
}

fn parsed_opt<T>(
    row: &Row<'_>,
    idx: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> StoreResult<Option<T>> {
    let s: Option<String> = get(row, idx, what)?;
    s.map(|s| parse(&s).ok_or_else(|| corrupt(what, format!("unrecognised value {s:?}"))))
        .transpose()
}

fn state(row: &Row<'_>, idx: usize) -> StoreResult<KeyState> {
    parsed(row, idx, "key state", KeyState::parse)
}

/// Encodes tags as a JSON object.
pub(crate) fn tags_json(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).expect("a string map always serialises")
}

/// Column list for [`tenant`].
pub(crate) const TENANT_COLS: &str =
    "id, name, account_id, default_root_key_id, default_system_id, created_at";

/// Decodes a tenant.
pub(crate) fn tenant(row: &Row<'_>) -> StoreResult<TenantRecord> {
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
pub(crate) const ACCESS_KEY_COLS: &str =
    "id, tenant_id, role, system_id, sealed_secret, description, enabled, created_at";

/// Decodes an access key.
pub(crate) fn access_key(row: &Row<'_>) -> StoreResult<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        id: get(row, 0, "access key id")?,
        tenant_id: parsed_opt(row, 1, "tenant id", TenantId::parse)?,
        role: parsed(row, 2, "role", Role::parse)?,
        system_id: parsed_opt(row, 3, "system id", SystemId::parse)?,
        sealed_secret: get(row, 4, "sealed secret")?,
        description: get(row, 5, "description")?,
        enabled: get(row, 6, "enabled")?,
        created_at: get(row, 7, "created_at")?,
    })
}

/// Column list for [`root_key`].
pub(crate) const ROOT_KEY_COLS: &str =
    "id, tenant_id, keystore, handle, origin, state, description, created_at";

/// Decodes a root key.
pub(crate) fn root_key(row: &Row<'_>) -> StoreResult<RootKeyRecord> {
    Ok(RootKeyRecord {
        id: parsed(row, 0, "root key id", RootKeyId::parse)?,
        tenant_id: parsed_opt(row, 1, "tenant id", TenantId::parse)?,
        keystore: get(row, 2, "keystore")?,
        handle: get(row, 3, "handle")?,
        origin: parsed(row, 4, "root key origin", RootKeyOrigin::parse)?,
        state: state(row, 5)?,
        description: get(row, 6, "description")?,
        created_at: get(row, 7, "created_at")?,
    })
}

/// Column list for [`system`].
pub(crate) const SYSTEM_COLS: &str =
    "id, tenant_id, name, kind, description, active_key_version, created_at";

/// Decodes a system.
pub(crate) fn system(row: &Row<'_>) -> StoreResult<SystemRecord> {
    Ok(SystemRecord {
        id: parsed(row, 0, "system id", SystemId::parse)?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        name: get(row, 2, "system name")?,
        kind: get(row, 3, "kind")?,
        description: get(row, 4, "description")?,
        active_key_version: get(row, 5, "active key version")?,
        created_at: get(row, 6, "created_at")?,
    })
}

/// Column list for [`system_key`].
pub(crate) const SYSTEM_KEY_COLS: &str =
    "system_id, version, root_key_id, wrapped, state, created_at";

/// Decodes a system key version.
pub(crate) fn system_key(row: &Row<'_>) -> StoreResult<SystemKeyRecord> {
    Ok(SystemKeyRecord {
        system_id: parsed(row, 0, "system id", SystemId::parse)?,
        version: get(row, 1, "version")?,
        root_key_id: parsed(row, 2, "root key id", RootKeyId::parse)?,
        wrapped: get(row, 3, "wrapped")?,
        state: state(row, 4)?,
        created_at: get(row, 5, "created_at")?,
    })
}

/// Column list for [`service_key`].
pub(crate) const SERVICE_KEY_COLS: &str = "id, tenant_id, system_id, description, usage, spec, \
     origin, state, created_at, deletion_at, rotation_period_days, next_rotation_at, \
     primary_version, tags";

/// Decodes a service key.
pub(crate) fn service_key(row: &Row<'_>) -> StoreResult<ServiceKeyRecord> {
    let period: Option<u32> = get(row, 10, "rotation period")?;
    let next: Option<i64> = get(row, 11, "next rotation")?;
    let rotation = match (period, next) {
        (Some(period_days), Some(next_rotation_at)) => Some(RotationSchedule {
            period_days,
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
        usage: get(row, 4, "usage")?,
        spec: get(row, 5, "spec")?,
        origin: get(row, 6, "origin")?,
        state: state(row, 7)?,
        created_at: get(row, 8, "created_at")?,
        deletion_at: get(row, 9, "deletion_at")?,
        rotation,
        primary_version: get(row, 12, "primary version")?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt("tags", e))?,
    })
}

/// Column list for [`key_version`].
pub(crate) const KEY_VERSION_COLS: &str =
    "key_id, version, system_key_version, wrapped, origin, created_at";

/// Decodes a key version.
pub(crate) fn key_version(row: &Row<'_>) -> StoreResult<KeyVersionRecord> {
    Ok(KeyVersionRecord {
        key_id: parsed(row, 0, "key id", KeyId::parse)?,
        version: get(row, 1, "version")?,
        system_key_version: get(row, 2, "system key version")?,
        wrapped: get(row, 3, "wrapped")?,
        origin: parsed(row, 4, "version origin", VersionOrigin::parse)?,
        created_at: get(row, 5, "created_at")?,
    })
}

/// Column list for [`alias`].
pub(crate) const ALIAS_COLS: &str = "tenant_id, name, key_id, created_at, updated_at";

/// Decodes an alias.
pub(crate) fn alias(row: &Row<'_>) -> StoreResult<AliasRecord> {
    Ok(AliasRecord {
        tenant_id: parsed(row, 0, "tenant id", TenantId::parse)?,
        name: get(row, 1, "alias name")?,
        key_id: parsed(row, 2, "key id", KeyId::parse)?,
        created_at: get(row, 3, "created_at")?,
        updated_at: get(row, 4, "updated_at")?,
    })
}

/// Decodes a bare key id (first column).
pub(crate) fn key_id(row: &Row<'_>) -> StoreResult<KeyId> {
    parsed(row, 0, "key id", KeyId::parse)
}
