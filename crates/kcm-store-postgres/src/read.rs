//! The read queries of the store trait, each on the pool (one connection per query).

use kcm_core::model::*;
use kcm_core::policy::GrantRecord;
use kcm_core::store::StoreResult;
use kcm_store_rows::audit::{window_start, WindowStart};
use kcm_store_rows::cols::*;
use kcm_store_rows::decode::{self, Decoder};
use kcm_store_rows::encode::{chain_key, limit, seq_bound};
use sqlx::PgPool;

use crate::codec::{PgCells, Q};
use crate::error::DbError;

/// Result of a read: a [`DbError`] keeps connection failures recognisable for a retry.
pub(crate) type ReadResult<T> = Result<T, DbError>;

/// Runs `q` and decodes every row.
async fn all<T>(pool: &PgPool, q: Q<'_>, decode: Decoder<T>) -> ReadResult<Vec<T>> {
    let rows = q.fetch_all(pool).await?;
    Ok(rows
        .iter()
        .map(|row| decode(&PgCells(row)))
        .collect::<StoreResult<_>>()?)
}

/// Runs `q` and decodes the first row, if any.
async fn one<T>(pool: &PgPool, q: Q<'_>, decode: Decoder<T>) -> ReadResult<Option<T>> {
    let row = q.fetch_optional(pool).await?;
    Ok(row.as_ref().map(|row| decode(&PgCells(row))).transpose()?)
}

/// Runs `select` (a `SELECT … FROM <table>`) for the rows of `tenant`, or the
/// operator's (`tenant_id IS NULL`) when `None`, in `order_by` order.
///
/// Two statements rather than one with `tenant_id IS NOT DISTINCT FROM $1`, which
/// no index serves.
async fn owned_by<T>(
    pool: &PgPool,
    select: &str,
    order_by: &str,
    tenant: Option<TenantId>,
    decode: Decoder<T>,
) -> ReadResult<Vec<T>> {
    match tenant {
        Some(t) => {
            let sql = format!("{select} WHERE tenant_id = $1 ORDER BY {order_by}");
            all(pool, sqlx::query(&sql).bind(t.to_string()), decode).await
        }
        None => {
            let sql = format!("{select} WHERE tenant_id IS NULL ORDER BY {order_by}");
            all(pool, sqlx::query(&sql), decode).await
        }
    }
}

/// Checks a connection answers.
pub(crate) async fn ping(pool: &PgPool) -> ReadResult<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// See [`kcm_core::store::Store::meta`].
pub(crate) async fn meta(pool: &PgPool, key: &str) -> ReadResult<Option<String>> {
    let q = sqlx::query("SELECT value FROM meta WHERE key = $1").bind(key.to_owned());
    one(pool, q, decode::first_text).await
}

/// See [`kcm_core::store::Store::tenant`].
pub(crate) async fn tenant(pool: &PgPool, id: TenantId) -> ReadResult<Option<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1");
    one(pool, sqlx::query(&sql).bind(id.to_string()), decode::tenant).await
}

/// See [`kcm_core::store::Store::tenant_by_name`].
pub(crate) async fn tenant_by_name(pool: &PgPool, name: &str) -> ReadResult<Option<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE name = $1");
    one(
        pool,
        sqlx::query(&sql).bind(name.to_owned()),
        decode::tenant,
    )
    .await
}

/// See [`kcm_core::store::Store::tenants`].
pub(crate) async fn tenants(pool: &PgPool) -> ReadResult<Vec<TenantRecord>> {
    let sql = format!("SELECT {TENANT_COLS} FROM tenants ORDER BY name");
    all(pool, sqlx::query(&sql), decode::tenant).await
}

/// See [`kcm_core::store::Store::access_key`].
pub(crate) async fn access_key(pool: &PgPool, id: &str) -> ReadResult<Option<AccessKeyRecord>> {
    let sql = format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE id = $1");
    one(
        pool,
        sqlx::query(&sql).bind(id.to_owned()),
        decode::access_key,
    )
    .await
}

/// See [`kcm_core::store::Store::access_keys`].
pub(crate) async fn access_keys(
    pool: &PgPool,
    tenant: Option<TenantId>,
) -> ReadResult<Vec<AccessKeyRecord>> {
    let select = format!("SELECT {ACCESS_KEY_COLS} FROM access_keys");
    owned_by(pool, &select, "id", tenant, decode::access_key).await
}

/// See [`kcm_core::store::Store::root_key`].
pub(crate) async fn root_key(pool: &PgPool, id: RootKeyId) -> ReadResult<Option<RootKeyRecord>> {
    let sql = format!("SELECT {ROOT_KEY_COLS} FROM root_keys WHERE id = $1");
    one(
        pool,
        sqlx::query(&sql).bind(id.to_string()),
        decode::root_key,
    )
    .await
}

/// See [`kcm_core::store::Store::root_keys`].
pub(crate) async fn root_keys(
    pool: &PgPool,
    tenant: Option<TenantId>,
) -> ReadResult<Vec<RootKeyRecord>> {
    let select = format!("SELECT {ROOT_KEY_COLS} FROM root_keys");
    owned_by(pool, &select, "created_at, id", tenant, decode::root_key).await
}

/// See [`kcm_core::store::Store::system`].
pub(crate) async fn system(pool: &PgPool, id: SystemId) -> ReadResult<Option<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE id = $1");
    one(pool, sqlx::query(&sql).bind(id.to_string()), decode::system).await
}

/// See [`kcm_core::store::Store::system_by_name`].
pub(crate) async fn system_by_name(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
) -> ReadResult<Option<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE tenant_id = $1 AND name = $2");
    let q = sqlx::query(&sql)
        .bind(tenant.to_string())
        .bind(name.to_owned());
    one(pool, q, decode::system).await
}

/// See [`kcm_core::store::Store::systems`].
pub(crate) async fn systems(pool: &PgPool, tenant: TenantId) -> ReadResult<Vec<SystemRecord>> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM systems WHERE tenant_id = $1 ORDER BY name");
    all(
        pool,
        sqlx::query(&sql).bind(tenant.to_string()),
        decode::system,
    )
    .await
}

/// See [`kcm_core::store::Store::system_key`].
pub(crate) async fn system_key(
    pool: &PgPool,
    system: SystemId,
    version: u32,
) -> ReadResult<Option<SystemKeyRecord>> {
    let sql =
        format!("SELECT {SYSTEM_KEY_COLS} FROM system_keys WHERE system_id = $1 AND version = $2");
    let q = sqlx::query(&sql)
        .bind(system.to_string())
        .bind(i64::from(version));
    one(pool, q, decode::system_key).await
}

/// See [`kcm_core::store::Store::service_key`].
pub(crate) async fn service_key(pool: &PgPool, id: KeyId) -> ReadResult<Option<ServiceKeyRecord>> {
    let sql = format!("SELECT {SERVICE_KEY_COLS} FROM service_keys WHERE id = $1");
    one(
        pool,
        sqlx::query(&sql).bind(id.to_string()),
        decode::service_key,
    )
    .await
}

/// See [`kcm_core::store::Store::service_keys`].
pub(crate) async fn service_keys(
    pool: &PgPool,
    tenant: TenantId,
    after: Option<KeyId>,
    max: usize,
) -> ReadResult<Vec<ServiceKeyRecord>> {
    // Hyphenated lower-case UUID text sorts (bytewise, the "C" collation) exactly
    // like the UUID bytes (`KeyId`'s `Ord`).
    match after {
        Some(after) => {
            let sql = format!(
                "SELECT {SERVICE_KEY_COLS} FROM service_keys
                 WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            );
            let q = sqlx::query(&sql)
                .bind(tenant.to_string())
                .bind(after.to_string())
                .bind(limit(max));
            all(pool, q, decode::service_key).await
        }
        None => {
            let sql = format!(
                "SELECT {SERVICE_KEY_COLS} FROM service_keys
                 WHERE tenant_id = $1 ORDER BY id LIMIT $2"
            );
            let q = sqlx::query(&sql).bind(tenant.to_string()).bind(limit(max));
            all(pool, q, decode::service_key).await
        }
    }
}

/// See [`kcm_core::store::Store::key_versions`].
pub(crate) async fn key_versions(pool: &PgPool, key: KeyId) -> ReadResult<Vec<KeyVersionRecord>> {
    let sql =
        format!("SELECT {KEY_VERSION_COLS} FROM key_versions WHERE key_id = $1 ORDER BY version");
    all(
        pool,
        sqlx::query(&sql).bind(key.to_string()),
        decode::key_version,
    )
    .await
}

/// Ids of service keys that `sql` selects for the time `now` (`$1`).
async fn key_ids_at(pool: &PgPool, sql: &'static str, now: UnixMillis) -> ReadResult<Vec<KeyId>> {
    all(pool, sqlx::query(sql).bind(now), decode::key_id).await
}

/// See [`kcm_core::store::Store::keys_due_for_deletion`].
pub(crate) async fn keys_due_for_deletion(
    pool: &PgPool,
    now: UnixMillis,
) -> ReadResult<Vec<KeyId>> {
    let sql = "SELECT id FROM service_keys
               WHERE state = 'pending-deletion' AND deletion_at <= $1
               ORDER BY deletion_at, id";
    key_ids_at(pool, sql, now).await
}

/// See [`kcm_core::store::Store::keys_due_for_rotation`].
pub(crate) async fn keys_due_for_rotation(
    pool: &PgPool,
    now: UnixMillis,
) -> ReadResult<Vec<KeyId>> {
    let sql = "SELECT id FROM service_keys
               WHERE state = 'active' AND next_rotation_at <= $1
               ORDER BY next_rotation_at, id";
    key_ids_at(pool, sql, now).await
}

/// See [`kcm_core::store::Store::keys_with_expired_material`].
pub(crate) async fn keys_with_expired_material(
    pool: &PgPool,
    now: UnixMillis,
) -> ReadResult<Vec<KeyId>> {
    let sql = "SELECT id FROM service_keys
               WHERE material_expires_at <= $1
               ORDER BY material_expires_at, id";
    key_ids_at(pool, sql, now).await
}

/// See [`kcm_core::store::Store::alias`].
pub(crate) async fn alias(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
) -> ReadResult<Option<AliasRecord>> {
    let sql = format!("SELECT {ALIAS_COLS} FROM aliases WHERE tenant_id = $1 AND name = $2");
    let q = sqlx::query(&sql)
        .bind(tenant.to_string())
        .bind(name.to_owned());
    one(pool, q, decode::alias).await
}

/// See [`kcm_core::store::Store::aliases`].
pub(crate) async fn aliases(
    pool: &PgPool,
    tenant: TenantId,
    key: Option<KeyId>,
) -> ReadResult<Vec<AliasRecord>> {
    match key {
        Some(key) => {
            let sql = format!(
                "SELECT {ALIAS_COLS} FROM aliases WHERE tenant_id = $1 AND key_id = $2
                 ORDER BY name"
            );
            let q = sqlx::query(&sql)
                .bind(tenant.to_string())
                .bind(key.to_string());
            all(pool, q, decode::alias).await
        }
        None => {
            let sql =
                format!("SELECT {ALIAS_COLS} FROM aliases WHERE tenant_id = $1 ORDER BY name");
            all(
                pool,
                sqlx::query(&sql).bind(tenant.to_string()),
                decode::alias,
            )
            .await
        }
    }
}

/// See [`kcm_core::store::Store::grant`].
pub(crate) async fn grant(pool: &PgPool, id: &str) -> ReadResult<Option<GrantRecord>> {
    let sql = format!("SELECT {GRANT_COLS} FROM grants WHERE id = $1");
    one(pool, sqlx::query(&sql).bind(id.to_owned()), decode::grant).await
}

/// See [`kcm_core::store::Store::grants`].
pub(crate) async fn grants(pool: &PgPool, key: KeyId) -> ReadResult<Vec<GrantRecord>> {
    let sql = format!("SELECT {GRANT_COLS} FROM grants WHERE key_id = $1 ORDER BY created_at, id");
    all(pool, sqlx::query(&sql).bind(key.to_string()), decode::grant).await
}

/// See [`kcm_core::store::Store::grants_retirable_by`].
pub(crate) async fn grants_retirable_by(
    pool: &PgPool,
    tenant: TenantId,
    principal: &str,
) -> ReadResult<Vec<GrantRecord>> {
    let sql = format!(
        "SELECT {GRANT_COLS} FROM grants
         WHERE tenant_id = $1 AND retiring_principal = $2
         ORDER BY created_at, id"
    );
    let q = sqlx::query(&sql)
        .bind(tenant.to_string())
        .bind(principal.to_owned());
    all(pool, q, decode::grant).await
}

/// See [`kcm_core::store::Store::managed_object`].
pub(crate) async fn managed_object(
    pool: &PgPool,
    id: ObjectId,
) -> ReadResult<Option<ManagedObjectRecord>> {
    let sql = format!("SELECT {MANAGED_OBJECT_COLS} FROM managed_objects WHERE id = $1");
    one(
        pool,
        sqlx::query(&sql).bind(id.to_string()),
        decode::managed_object,
    )
    .await
}

/// See [`kcm_core::store::Store::managed_object_count`].
pub(crate) async fn managed_object_count(pool: &PgPool, system: SystemId) -> ReadResult<u64> {
    let q = sqlx::query("SELECT COUNT(*) FROM managed_objects WHERE system_id = $1")
        .bind(system.to_string());
    Ok(one(pool, q, decode::count).await?.unwrap_or(0))
}

/// See [`kcm_core::store::Store::managed_objects`].
pub(crate) async fn managed_objects(
    pool: &PgPool,
    system: SystemId,
) -> ReadResult<Vec<ManagedObjectRecord>> {
    let sql = format!(
        "SELECT {MANAGED_OBJECT_COLS} FROM managed_objects
         WHERE system_id = $1 ORDER BY created_at, id"
    );
    all(
        pool,
        sqlx::query(&sql).bind(system.to_string()),
        decode::managed_object,
    )
    .await
}

/// See [`kcm_core::store::Store::audit_tail`].
pub(crate) async fn audit_tail(
    pool: &PgPool,
    chain: AuditChain,
) -> ReadResult<Option<(u64, String)>> {
    let q = sqlx::query(
        "SELECT seq, hash FROM audit_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(chain_key(chain));
    one(pool, q, decode::seq_and_hash).await
}

/// See [`kcm_core::store::Store::audit_records`].
///
/// Records are walked in primary key order from `after_seq` until `limit` match, so
/// paging costs about one page of reads. Only the filters the query sets appear in
/// the SQL (at most 32 shapes, each a cached statement).
pub(crate) async fn audit_records(pool: &PgPool, q: &AuditQuery) -> ReadResult<Vec<AuditRecord>> {
    let chain = chain_key(q.tenant);
    let mut after = seq_bound(q.after_seq);
    if let Some(from) = q.from {
        match audit_window_start(pool, &chain, after, from, q.to).await? {
            Some(start) => after = after.max(start - 1),
            None => return Ok(Vec::new()),
        }
    }
    let mut sql =
        format!("SELECT {AUDIT_RECORD_COLS} FROM audit_records WHERE chain = $1 AND seq > $2");
    // Every shape binds all eight parameters (an unused one is cast so its type is
    // known), so the binds below are the same for each.
    sql.push_str(if q.from.is_some() {
        " AND time >= $3"
    } else {
        " AND $3::bigint IS NULL"
    });
    sql.push_str(if q.to.is_some() {
        " AND time < $4"
    } else {
        " AND $4::bigint IS NULL"
    });
    sql.push_str(if q.key.is_some() {
        " AND strpos(key_ids, ',' || $5 || ',') > 0"
    } else {
        " AND $5::text IS NULL"
    });
    sql.push_str(if q.principal.is_some() {
        " AND principal = $6"
    } else {
        " AND $6::text IS NULL"
    });
    sql.push_str(if q.operation.is_some() {
        " AND operation = $7"
    } else {
        " AND $7::text IS NULL"
    });
    sql.push_str(" ORDER BY seq LIMIT $8");
    let query = sqlx::query(&sql)
        .bind(chain)
        .bind(after)
        .bind(q.from)
        .bind(q.to)
        .bind(q.key.map(|k| k.to_string()))
        .bind(q.principal.clone())
        .bind(q.operation.clone())
        .bind(limit(q.limit));
    all(pool, query, decode::audit_record).await
}

/// Where a walk for records of the time window `[from, to)` after `after` should
/// start: the lowest such `seq` (`None`: there is none), so the walk does not read
/// the chain's whole history before the window.
///
/// Times follow `seq` closely but not strictly, so the answer comes from the
/// `(chain, time)` index. When the next record after `after` already lies in the
/// window (a caller paging on), that read is skipped and the walk starts at `after`.
async fn audit_window_start(
    pool: &PgPool,
    chain: &str,
    after: i64,
    from: UnixMillis,
    to: Option<UnixMillis>,
) -> ReadResult<Option<i64>> {
    let q = sqlx::query(
        "SELECT time FROM audit_records WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT 1",
    )
    .bind(chain.to_owned())
    .bind(after);
    let next = one(pool, q, decode::first_opt_int).await?.flatten();
    match window_start(next, from, to) {
        WindowStart::Nothing => return Ok(None),
        WindowStart::Here => return Ok(Some(after.saturating_add(1))),
        WindowStart::Search => {}
    }
    let q = sqlx::query(
        "SELECT MIN(seq) FROM audit_records
         WHERE chain = $1 AND time >= $2 AND ($3::bigint IS NULL OR time < $3) AND seq > $4",
    )
    .bind(chain.to_owned())
    .bind(from)
    .bind(to)
    .bind(after);
    Ok(one(pool, q, decode::first_opt_int).await?.flatten())
}

/// See [`kcm_core::store::Store::audit_chains`].
///
/// Walks the primary key from one chain to the next (one index seek per chain)
/// rather than scanning every record; chains come in `chain` order, the operator's
/// first.
pub(crate) async fn audit_chains(pool: &PgPool) -> ReadResult<Vec<(AuditChain, u64)>> {
    let q = sqlx::query(
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
    );
    all(pool, q, decode::audit_chain).await
}

/// See [`kcm_core::store::Store::audit_checkpoints`].
pub(crate) async fn audit_checkpoints(
    pool: &PgPool,
    chain: AuditChain,
    after_seq: u64,
    max: usize,
) -> ReadResult<Vec<AuditCheckpoint>> {
    let sql = format!(
        "SELECT {AUDIT_CHECKPOINT_COLS} FROM audit_checkpoints
         WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    let q = sqlx::query(&sql)
        .bind(chain_key(chain))
        .bind(seq_bound(after_seq))
        .bind(limit(max));
    all(pool, q, decode::audit_checkpoint).await
}

/// See [`kcm_core::store::Store::last_audit_checkpoint`].
pub(crate) async fn last_audit_checkpoint(
    pool: &PgPool,
    chain: AuditChain,
) -> ReadResult<Option<AuditCheckpoint>> {
    let sql = format!(
        "SELECT {AUDIT_CHECKPOINT_COLS} FROM audit_checkpoints
         WHERE chain = $1 ORDER BY seq DESC LIMIT 1"
    );
    one(
        pool,
        sqlx::query(&sql).bind(chain_key(chain)),
        decode::audit_checkpoint,
    )
    .await
}
