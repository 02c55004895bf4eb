//! Schema migrations: an ordered list of SQL scripts, recorded in `schema_migrations`.
//!
//! Migration `n` (1-based) is `MIGRATIONS[n - 1]` and mirrors the SQLite store's
//! migration `n` (same tables, columns and meaning), so both backends report the
//! same schema version for the same schema. Each is applied in its own transaction
//! together with its `schema_migrations` row, holding a transaction-level advisory
//! lock: several kcm nodes opening one database at once apply each script exactly
//! once (the others wait, then find it applied). A crash mid-migration leaves the
//! previous version intact (PostgreSQL DDL is transactional). Migrations are only
//! ever appended; a released script never changes.

use kcm_core::store::StoreError;
use kcm_store_rows::schema::{known_version, now_millis, refuse_newer, stored_version};
use sqlx::{Executor, PgConnection, PgPool, Row};

use crate::error::DbError;

/// Every migration this build knows, in order.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_audit_policies_grants.sql"),
    include_str!("../migrations/0003_imported_key_material.sql"),
    include_str!("../migrations/0004_system_region_labels.sql"),
    include_str!("../migrations/0005_audit_client_request_id.sql"),
    include_str!("../migrations/0006_managed_objects.sql"),
    include_str!("../migrations/0007_audit_detail.sql"),
    include_str!("../migrations/0008_imported_material_expiry.sql"),
    include_str!("../migrations/0009_grant_constraints.sql"),
    include_str!("../migrations/0010_version_import_check.sql"),
];

/// The advisory lock key that serialises migrations (and restores) across nodes:
/// the bytes of "kcm-migr" as a big-endian integer.
const LOCK_KEY: i64 = i64::from_be_bytes(*b"kcm-migr");

/// Takes the schema lock ([`LOCK_KEY`]) on `conn` until its transaction ends, so
/// migrations and restores on every node run one after the other.
pub(crate) async fn lock_schema(conn: &mut PgConnection) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Brings the schema up to date with [`MIGRATIONS`]; returns the resulting version.
pub(crate) async fn migrate(pool: &PgPool) -> Result<u32, DbError> {
    migrate_with(pool, MIGRATIONS).await
}

/// Applies the missing ones of `migrations`; refuses a schema newer than they reach.
pub(crate) async fn migrate_with(pool: &PgPool, migrations: &[&str]) -> Result<u32, DbError> {
    let known = known_version(migrations);
    for (index, sql) in migrations.iter().enumerate() {
        let version = index as u32 + 1;
        let mut tx = pool.begin().await?;
        // Taken before anything else, so concurrent openers (even the creation of the
        // bookkeeping table) run one after the other; released at commit or rollback.
        lock_schema(&mut tx).await?;
        (&mut *tx).execute(sqlx::raw_sql(CREATE_TABLE)).await?;
        let current = current_version(&mut tx).await?;
        refuse_newer(current, known)?;
        if current >= version {
            tx.commit().await?;
            continue;
        }
        (&mut *tx).execute(sqlx::raw_sql(sql)).await.map_err(|e| {
            StoreError::Unavailable(format!("schema migration {version} failed: {e}"))
        })?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(i64::from(version))
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied store schema migration");
    }
    let mut conn = pool.acquire().await?;
    let current = current_version(&mut conn).await?;
    refuse_newer(current, known)?;
    Ok(current)
}

/// The highest applied migration (0 for a fresh database).
pub(crate) async fn current_version(conn: &mut PgConnection) -> Result<u32, DbError> {
    let row = sqlx::query("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(conn)
        .await?;
    let v: Option<i64> = row
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(format!("schema version: {e}")))?;
    Ok(stored_version(v)?)
}

/// Checks the migrations mirror the SQLite store's one to one (a cheap guard; the
/// snapshot portability test checks the columns themselves).
#[cfg(test)]
mod tests {
    #[test]
    fn as_many_migrations_as_sqlite() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../kcm-store-sqlite/migrations"
        );
        let sqlite = std::fs::read_dir(dir).unwrap().count();
        assert_eq!(super::MIGRATIONS.len(), sqlite);
    }
}
