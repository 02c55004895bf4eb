//! The read queries of the store trait, each on a borrowed connection.

use kcm_core::model::*;
use kcm_core::policy::GrantRecord;
use kcm_core::store::StoreResult;
use kcm_store_rows::audit::{window_start, WindowStart};
use kcm_store_rows::cols::*;
use kcm_store_rows::decode::{self, Decoder};
use kcm_store_rows::encode::{chain_key, limit, seq_bound};
use rusqlite::{params, Connection, Params};

use crate::codec::SqliteRow;
use crate::error::from_sqlite;

/// Runs `sql` and decodes every row.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: Decoder<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(from_sqlite)?;
    let mut rows = stmt.query(params).map_err(from_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(from_sqlite)? {
        out.push(decode(&SqliteRow(row))?);
    }
    Ok(out)
}

/// Runs `sql` and decodes the first row, if any.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: Decoder<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(from_sqlite)?;
    let mut rows = stmt.query(params).map_err(from_sqlite)?;
    match rows.next().map_err(from_sqlite)? {
        Some(row) => decode(&SqliteRow(row)).map(Some),
        None => Ok(None),
    }
}

/// Runs `select` (a `SELECT … FROM <table>`) for the rows of `tenant`, or the
/// operator's (`tenant_id IS NULL`) when `None`, in `order_by` order. SQLite's `IS`
/// matches NULL as a value, so one statement serves both.
fn owned_by<T>(
    conn: &Connection,
    select: &str,
    order_by: &str,
    tenant: Option<TenantId>,
    decode: Decoder<T>,
) -> StoreResult<Vec<T>> {
    let sql = format!("{select} WHERE tenant_id IS ?1 ORDER BY {order_by}");
    all(conn, &sql, [tenant.map(|t| t.to_string())], decode)
}

/// Checks the connection answers.
pub(crate) fn ping(conn: &Connection) -> StoreResult<()> {
    conn.query_row("SELECT 1", [], |_| Ok(()))
        .map_err(from_sqlite)
}

/// See [`kcm_core::store::Store::meta`].
pub(crate) fn meta(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    one(
        conn,
        "SELECT value FROM meta WHERE key = ?1",
        [key],
        decode::first_text,
    )
}

/// See [`kcm_core::store::Store::tenant`].
pub(crate) fn tenant(conn: &Connection, id: TenantId) -> StoreResult<Option<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1");
    one(conn, &sql, [id.to_string()], decode::tenant)
}

/// See [`kcm_core::store::Store::tenant_by_name`].
pub(crate) fn tenant_by_name(conn: &Connection, name: &str) -> StoreResult<Option<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE name = ?1");
    one(conn, &sql, [name], decode::tenant)
}

/// See [`kcm_core::store::Store::tenants`].
pub(crate) fn tenants(conn: &Connection) -> StoreResult<Vec<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants ORDER BY name");
    all(conn, &sql, [], decode::tenant)
}

/// See [`kcm_core::store::Store::access_key`].
pub(crate) fn access_key(conn: &Connection, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
    let sql = format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE id = ?1");
    one(conn, &sql, [id], decode::access_key)
}

/// See [`kcm_core::store::Store::access_keys`].
pub(crate) fn access_keys(
    conn: &Connection,
    tenant: Option<TenantId>,
) -> StoreResult<Vec<AccessKeyRecord>> {
    let select = format!("SELECT {ACCESS_KEY_COLS} FROM access_keys");
    owned_by(conn, &select, "id", tenant, decode::access_key)
}

/// See [`kcm_core::store::Store::root_key`].
pub(crate) fn root_key(conn: &Connection, id: RootKeyId) -> StoreResult<Option<RootKeyRecord>> {
    let sql = format!("SELECT {ROOT_KEY_COLS} FROM root_keys WHERE id = ?1");
    one(conn, &sql, [id.to_string()], decode::root_key)
}

/// See [`kcm_core::store::Store::root_keys`].
pub(crate) fn root_keys(
    conn: &Connection,
    tenant: Option<TenantId>,
) -> StoreResult<Vec<RootKeyRecord>> {
    let select = format!("SELECT {ROOT_KEY_COLS} FROM root_keys");
    owned_by(conn, &select, "created_at, id", tenant, decode::root_key)
}

/// See [`kcm_core::store::Store::system`].
pub(crate) fn system(conn: &Connection, id: SystemId) -> StoreResult<Option<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE id = ?1");
    one(conn, &sql, [id.to_string()], decode::system)
}

/// See [`kcm_core::store::Store::system_by_name`].
pub(crate) fn system_by_name(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> StoreResult<Option<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE tenant_id = ?1 AND name = ?2");
    one(conn, &sql, (tenant.to_string(), name), decode::system)
}

/// See [`kcm_core::store::Store::systems`].
pub(crate) fn systems(conn: &Connection, tenant: TenantId) -> StoreResult<Vec<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE tenant_id = ?1 ORDER BY name");
    all(conn, &sql, [tenant.to_string()], decode::system)
}

/// See [`kcm_core::store::Store::system_key`].
pub(crate) fn system_key(
    conn: &Connection,
    system: SystemId,
    version: u32,
) -> StoreResult<Option<SystemKeyRecord>> {
    let sql =
        format!("SELECT {SYSTEM_KEY_COLS} FROM system_keys WHERE system_id = ?1 AND version = ?2");
    one(
        conn,
        &sql,
        (system.to_string(), version),
        decode::system_key,
    )
}

/// See [`kcm_core::store::Store::service_key`].
pub(crate) fn service_key(conn: &Connection, id: KeyId) -> StoreResult<Option<ServiceKeyRecord>> {
    let sql = format!("SELECT {SERVICE_KEY_COLS} FROM service_keys WHERE id = ?1");
    one(conn, &sql, [id.to_string()], decode::service_key)
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
    all(conn, &sql, params, decode::service_key)
}

/// See [`kcm_core::store::Store::key_versions`].
pub(crate) fn key_versions(conn: &Connection, key: KeyId) -> StoreResult<Vec<KeyVersionRecord>> {
    let sql =
        format!("SELECT {KEY_VERSION_COLS} FROM key_versions WHERE key_id = ?1 ORDER BY version");
    all(conn, &sql, [key.to_string()], decode::key_version)
}

/// See [`kcm_core::store::Store::keys_due_for_deletion`].
pub(crate) fn keys_due_for_deletion(conn: &Connection, now: UnixMillis) -> StoreResult<Vec<KeyId>> {
    all(
        conn,
        "SELECT id FROM service_keys
         WHERE state = 'pending-deletion' AND deletion_at <= ?1
         ORDER BY deletion_at, id",
        [now],
        decode::key_id,
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
        decode::key_id,
    )
}

/// See [`kcm_core::store::Store::keys_with_expired_material`].
pub(crate) fn keys_with_expired_material(
    conn: &Connection,
    now: UnixMillis,
) -> StoreResult<Vec<KeyId>> {
    all(
        conn,
        "SELECT id FROM service_keys
         WHERE material_expires_at <= ?1
         ORDER BY material_expires_at, id",
        [now],
        decode::key_id,
    )
}

/// See [`kcm_core::store::Store::alias`].
pub(crate) fn alias(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> StoreResult<Option<AliasRecord>> {
    let sql = format!("SELECT {ALIAS_COLS} FROM aliases WHERE tenant_id = ?1 AND name = ?2");
    one(conn, &sql, (tenant.to_string(), name), decode::alias)
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
        decode::alias,
    )
}

/// See [`kcm_core::store::Store::grant`].
pub(crate) fn grant(conn: &Connection, id: &str) -> StoreResult<Option<GrantRecord>> {
    let sql = format!("SELECT {GRANT_COLS} FROM grants WHERE id = ?1");
    one(conn, &sql, [id], decode::grant)
}

/// See [`kcm_core::store::Store::grants`].
pub(crate) fn grants(conn: &Connection, key: KeyId) -> StoreResult<Vec<GrantRecord>> {
    let sql = format!("SELECT {GRANT_COLS} FROM grants WHERE key_id = ?1 ORDER BY created_at, id");
    all(conn, &sql, [key.to_string()], decode::grant)
}

/// See [`kcm_core::store::Store::grants_retirable_by`].
pub(crate) fn grants_retirable_by(
    conn: &Connection,
    tenant: TenantId,
    principal: &str,
) -> StoreResult<Vec<GrantRecord>> {
    let sql = format!(
        "SELECT {GRANT_COLS} FROM grants
         WHERE tenant_id = ?1 AND retiring_principal = ?2
         ORDER BY created_at, id"
    );
    all(conn, &sql, (tenant.to_string(), principal), decode::grant)
}

/// See [`kcm_core::store::Store::managed_object`].
pub(crate) fn managed_object(
    conn: &Connection,
    id: ObjectId,
) -> StoreResult<Option<ManagedObjectRecord>> {
    let sql = format!("SELECT {MANAGED_OBJECT_COLS} FROM managed_objects WHERE id = ?1");
    one(conn, &sql, [id.to_string()], decode::managed_object)
}

/// See [`kcm_core::store::Store::managed_objects`].
pub(crate) fn managed_objects(
    conn: &Connection,
    system: SystemId,
) -> StoreResult<Vec<ManagedObjectRecord>> {
    let sql = format!(
        "SELECT {MANAGED_OBJECT_COLS} FROM managed_objects
         WHERE system_id = ?1 ORDER BY created_at, id"
    );
    all(conn, &sql, [system.to_string()], decode::managed_object)
}

/// See [`kcm_core::store::Store::managed_object_count`].
pub(crate) fn managed_object_count(conn: &Connection, system: SystemId) -> StoreResult<u64> {
    let sql = "SELECT COUNT(*) FROM managed_objects WHERE system_id = ?1";
    Ok(one(conn, sql, [system.to_string()], decode::count)?.unwrap_or(0))
}

/// See [`kcm_core::store::Store::audit_tail`].
pub(crate) fn audit_tail(
    conn: &Connection,
    chain: AuditChain,
) -> StoreResult<Option<(u64, String)>> {
    one(
        conn,
        "SELECT seq, hash FROM audit_records WHERE chain = ?1 ORDER BY seq DESC LIMIT 1",
        [chain_key(chain)],
        decode::seq_and_hash,
    )
}

/// See [`kcm_core::store::Store::audit_records`].
///
/// Records are walked in primary key order from `after_seq` until `limit` match, so
/// paging costs about one page of reads. Only the filters the query sets appear in
/// the SQL (at most 32 shapes, each a cached statement).
pub(crate) fn audit_records(conn: &Connection, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
    let chain = chain_key(q.tenant);
    let mut after = seq_bound(q.after_seq);
    if let Some(from) = q.from {
        match audit_window_start(conn, &chain, after, from, q.to)? {
            Some(start) => after = after.max(start - 1),
            None => return Ok(Vec::new()),
        }
    }
    // NOT INDEXED: walk the primary key (the table itself), never the time index.
    let mut sql = format!(
        "SELECT {AUDIT_RECORD_COLS} FROM audit_records NOT INDEXED WHERE chain = ?1 AND seq > ?2"
    );
    if q.from.is_some() {
        sql.push_str(" AND time >= ?3");
    }
    if q.to.is_some() {
        sql.push_str(" AND time < ?4");
    }
    if q.key.is_some() {
        sql.push_str(" AND instr(key_ids, ',' || ?5 || ',') > 0");
    }
    if q.principal.is_some() {
        sql.push_str(" AND principal = ?6");
    }
    if q.operation.is_some() {
        sql.push_str(" AND operation = ?7");
    }
    // ?8 is always present, so every shape has eight parameters (unused ones are
    // bound but never read).
    sql.push_str(" ORDER BY seq LIMIT ?8");
    all(
        conn,
        &sql,
        params![
            chain,
            after,
            q.from,
            q.to,
            q.key.map(|k| k.to_string()),
            q.principal,
            q.operation,
            limit(q.limit)
        ],
        decode::audit_record,
    )
}

/// Where a walk for records of the time window `[from, to)` after `after` should
/// start: the lowest such `seq` (`None`: there is none), so the walk does not read
/// the chain's whole history before the window.
///
/// Times follow `seq` closely but not strictly, so the answer comes from the
/// `(chain, time)` index (read alone, without the records). When the next record
/// after `after` already lies in the window (a caller paging on), that read is
/// skipped and the walk starts at `after`.
fn audit_window_start(
    conn: &Connection,
    chain: &str,
    after: i64,
    from: UnixMillis,
    to: Option<UnixMillis>,
) -> StoreResult<Option<i64>> {
    let next = one(
        conn,
        "SELECT time FROM audit_records WHERE chain = ?1 AND seq > ?2 ORDER BY seq LIMIT 1",
        (chain, after),
        decode::first_opt_int,
    )?
    .flatten();
    match window_start(next, from, to) {
        WindowStart::Nothing => return Ok(None),
        WindowStart::Here => return Ok(Some(after.saturating_add(1))),
        WindowStart::Search => {}
    }
    let start: Option<i64> = one(
        conn,
        "SELECT MIN(seq) FROM audit_records INDEXED BY audit_records_by_time
         WHERE chain = ?1 AND time >= ?2 AND (?3 IS NULL OR time < ?3) AND seq > ?4",
        (chain, from, to, after),
        decode::first_opt_int,
    )?
    .flatten();
    Ok(start)
}

/// See [`kcm_core::store::Store::audit_chains`].
///
/// Walks the primary key from one chain to the next (one index seek per chain)
/// rather than scanning every record; chains come in `chain` order, the operator's
/// first.
pub(crate) fn audit_chains(conn: &Connection) -> StoreResult<Vec<(AuditChain, u64)>> {
    all(
        conn,
        "WITH RECURSIVE chains(chain) AS (
             SELECT (SELECT chain FROM audit_records ORDER BY chain LIMIT 1)
             UNION ALL
             SELECT (SELECT a.chain FROM audit_records a
                     WHERE a.chain > chains.chain ORDER BY a.chain LIMIT 1)
             FROM chains WHERE chains.chain IS NOT NULL
         )
         SELECT chain, (SELECT MAX(seq) FROM audit_records a WHERE a.chain = chains.chain)
         FROM chains WHERE chain IS NOT NULL
         ORDER BY chain",
        [],
        decode::audit_chain,
    )
}

/// See [`kcm_core::store::Store::audit_checkpoints`].
pub(crate) fn audit_checkpoints(
    conn: &Connection,
    chain: AuditChain,
    after_seq: u64,
    max: usize,
) -> StoreResult<Vec<AuditCheckpoint>> {
    let sql = format!(
        "SELECT {AUDIT_CHECKPOINT_COLS} FROM audit_checkpoints
         WHERE chain = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    );
    let params = (chain_key(chain), seq_bound(after_seq), limit(max));
    all(conn, &sql, params, decode::audit_checkpoint)
}

/// See [`kcm_core::store::Store::last_audit_checkpoint`].
pub(crate) fn last_audit_checkpoint(
    conn: &Connection,
    chain: AuditChain,
) -> StoreResult<Option<AuditCheckpoint>> {
    let sql = format!(
        "SELECT {AUDIT_CHECKPOINT_COLS} FROM audit_checkpoints
         WHERE chain = ?1 ORDER BY seq DESC LIMIT 1"
    );
    one(conn, &sql, [chain_key(chain)], decode::audit_checkpoint)
}
