//! The read queries of the store trait, each on a borrowed connection.

use kcm_core::model::*;
use kcm_core::store::StoreResult;
use rusqlite::{Connection, Params, Row};

use crate::codec::{self, *};
use crate::error::from_sqlite;

/// Runs `sql` and decodes every row.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(from_sqlite)?;
    let mut rows = stmt.query(params).map_err(from_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(from_sqlite)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Runs `sql` and decodes the first row, if any.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(from_sqlite)?;
    let mut rows = stmt.query(params).map_err(from_sqlite)?;
    rows.next().map_err(from_sqlite)?.map(decode).transpose()
}

/// Checks the connection answers.
pub(crate) fn ping(conn: &Connection) -> StoreResult<()> {
    conn.query_row("SELECT 1", [], |_| Ok(()))
        .map_err(from_sqlite)
}

/// See [`kcm_core::store::Store::meta`].
pub(crate) fn meta(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    one(conn, "SELECT value FROM meta WHERE key = ?1", [key], |r| {
        r.get(0).map_err(from_sqlite)
    })
}

/// See [`kcm_core::store::Store::tenant`].
pub(crate) fn tenant(conn: &Connection, id: TenantId) -> StoreResult<Option<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1");
    one(conn, &sql, [id.to_string()], codec::tenant)
}

/// See [`kcm_core::store::Store::tenant_by_name`].
pub(crate) fn tenant_by_name(conn: &Connection, name: &str) -> StoreResult<Option<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE name = ?1");
    one(conn, &sql, [name], codec::tenant)
}

/// See [`kcm_core::store::Store::tenants`].
pub(crate) fn tenants(conn: &Connection) -> StoreResult<Vec<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants ORDER BY name");
    all(conn, &sql, [], codec::tenant)
}

/// See [`kcm_core::store::Store::access_key`].
pub(crate) fn access_key(conn: &Connection, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
    let sql = format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE id = ?1");
    one(conn, &sql, [id], codec::access_key)
}

/// See [`kcm_core::store::Store::access_keys`].
pub(crate) fn access_keys(
    conn: &Connection,
    tenant: Option<TenantId>,
) -> StoreResult<Vec<AccessKeyRecord>> {
    let sql =
        format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE tenant_id IS ?1 ORDER BY id");
    all(
        conn,
        &sql,
        [tenant.map(|t| t.to_string())],
        codec::access_key,
    )
}

/// See [`kcm_core::store::Store::root_key`].
pub(crate) fn root_key(conn: &Connection, id: RootKeyId) -> StoreResult<Option<RootKeyRecord>> {
    let sql = format!("SELECT {ROOT_KEY_COLS} FROM root_keys WHERE id = ?1");
    one(conn, &sql, [id.to_string()], codec::root_key)
}

/// See [`kcm_core::store::Store::root_keys`].
pub(crate) fn root_keys(
    conn: &Connection,
    tenant: Option<TenantId>,
) -> StoreResult<Vec<RootKeyRecord>> {
    let sql = format!(
        "SELECT {ROOT_KEY_COLS} FROM root_keys WHERE tenant_id IS ?1 ORDER BY created_at, id"
    );
    all(conn, &sql, [tenant.map(|t| t.to_string())], codec::root_key)
}

/// See [`kcm_core::store::Store::system`].
pub(crate) fn system(conn: &Connection, id: SystemId) -> StoreResult<Option<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE id = ?1");
    one(conn, &sql, [id.to_string()], codec::system)
}

/// See [`kcm_core::store::Store::system_by_name`].
pub(crate) fn system_by_name(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> StoreResult<Option<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE tenant_id = ?1 AND name = ?2");
    one(conn, &sql, (tenant.to_string(), name), codec::system)
}

/// See [`kcm_core::store::Store::systems`].
pub(crate) fn systems(conn: &Connection, tenant: TenantId) -> StoreResult<Vec<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE tenant_id = ?1 ORDER BY name");
    all(conn, &sql, [tenant.to_string()], codec::system)
}

/// See [`kcm_core::store::Store::system_key`].
pub(crate) fn system_key(
    conn: &Connection,
    system: SystemId,
    version: u32,
) -> StoreResult<Option<SystemKeyRecord>> {
    let sql =
        format!("SELECT {SYSTEM_KEY_COLS} FROM system_keys WHERE system_id = ?1 AND version = ?2");
    one(conn, &sql, (system.to_string(), version), codec::system_key)
}

/// See [`kcm_core::store::Store::service_key`].
pub(crate) fn service_key(conn: &Connection, id: KeyId) -> StoreResult<Option<ServiceKeyRecord>> {
    let sql = format!("SELECT {SERVICE_KEY_COLS} FROM service_keys WHERE id = ?1");
    one(conn, &sql, [id.to_string()], codec::service_key)
}

/// See [`kcm_core::store::Store::service_keys`].
pub(crate) fn service_keys(
    conn: &Connection,
    tenant: TenantId,
    after: Option<KeyId>,
    limit: usize,
) -> StoreResult<Vec<ServiceKeyRecord>> {
    // Hyphenated lower-case UUID text sorts exactly like the UUID bytes (`KeyId`'s `Ord`).
    let sql = format!(
        "SELECT {SERVICE_KEY_COLS} FROM service_keys
         WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2)
         ORDER BY id LIMIT ?3"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let params = (tenant.to_string(), after.map(|a| a.to_string()), limit);
    all(conn, &sql, params, codec::service_key)
}

/// See [`kcm_core::store::Store::key_versions`].
pub(crate) fn key_versions(conn: &Connection, key: KeyId) -> StoreResult<Vec<KeyVersionRecord>> {
    let sql =
        format!("SELECT {KEY_VERSION_COLS} FROM key_versions WHERE key_id = ?1 ORDER BY version");
    all(conn, &sql, [key.to_string()], codec::key_version)
}

/// See [`kcm_core::store::Store::keys_due_for_deletion`].
pub(crate) fn keys_due_for_deletion(conn: &Connection, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
    all(
        conn,
        "SELECT id FROM service_keys
         WHERE state = 'pending-deletion' AND deletion_at <= ?1
         ORDER BY deletion_at, id",
        [now],
        codec::key_id,
    )
}

/// See [`kcm_core::store::Store::keys_due_for_rotation`].
pub(crate) fn keys_due_for_rotation(conn: &Connection, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
    all(
        conn,
        "SELECT id FROM service_keys
         WHERE state = 'active' AND next_rotation_at <= ?1
         ORDER BY next_rotation_at, id",
        [now],
        codec::key_id,
    )
}

/// See [`kcm_core::store::Store::alias`].
pub(crate) fn alias(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> StoreResult<Option<AliasRecord>> {
    let sql = format!("SELECT {ALIAS_COLS} FROM aliases WHERE tenant_id = ?1 AND name = ?2");
    one(conn, &sql, (tenant.to_string(), name), codec::alias)
}

/// See [`kcm_core::store::Store::aliases`].
pub(crate) fn aliases(
    conn: &Connection,
    tenant: TenantId,
    key: Option<KeyId>,
) -> StoreResult<Vec<AliasRecord>> {
    let sql = format!(
        "SELECT {ALIAS_COLS} FROM aliases
         WHERE tenant_id = ?1 AND (?2 IS NULL OR key_id = ?2)
         ORDER BY name"
    );
    all(
        conn,
        &sql,
        (tenant.to_string(), key.map(|k| k.to_string())),
        codec::alias,
    )
}
