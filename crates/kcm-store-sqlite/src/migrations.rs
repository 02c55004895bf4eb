//! Schema migrations: an ordered list of SQL scripts, recorded in `schema_migrations`.
//!
//! Migration `n` (1-based) is `MIGRATIONS[n - 1]`. Each is applied in its own
//! `BEGIN IMMEDIATE` transaction together with its `schema_migrations` row, so a
//! crash mid-migration leaves the previous version intact. Migrations are only ever
//! appended; a released script never changes.

use kcm_core::store::{StoreError, StoreResult};
use kcm_store_rows::schema::{known_version, now_millis, refuse_newer, stored_version};
use rusqlite::{Connection, OptionalExtension};

use crate::conn;
use crate::error::from_sqlite;

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

/// Brings the schema up to date with [`MIGRATIONS`]; returns the resulting version.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<u32> {
    migrate_with(conn, MIGRATIONS)
}

/// Applies the missing ones of `migrations`; refuses a schema newer than they reach.
pub(crate) fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> StoreResult<u32> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(from_sqlite)?;
    let known = known_version(migrations);
    for (index, sql) in migrations.iter().enumerate() {
        let version = index as u32 + 1;
        let tx = conn::begin_immediate(conn)?;
        // Checked inside the write lock, so concurrent openers apply each script once.
        let current = current_version(&tx)?;
        refuse_newer(current, known)?;
        if current >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Unavailable(format!("schema migration {version} failed: {e}"))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            (version, now_millis()),
        )
        .map_err(from_sqlite)?;
        tx.commit().map_err(from_sqlite)?;
        tracing::info!(version, "applied store schema migration");
    }
    let current = current_version(conn)?;
    refuse_newer(current, known)?;
    Ok(current)
}

/// The highest applied migration (0 for a fresh database).
pub(crate) fn current_version(conn: &Connection) -> StoreResult<u32> {
    let v: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(from_sqlite)?
        .flatten();
    stored_version(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M1: &str = "CREATE TABLE one (x INTEGER);";
    const M2: &str = "CREATE TABLE two (x INTEGER);";

    #[test]
    fn applies_only_missing_migrations() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate_with(&mut conn, &[M1]).unwrap(), 1);
        // Re-running M1 would fail ("table one already exists"): it must be skipped.
        assert_eq!(migrate_with(&mut conn, &[M1, M2]).unwrap(), 2);
        assert_eq!(migrate_with(&mut conn, &[M1, M2]).unwrap(), 2);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }

    #[test]
    fn refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &[M1, M2]).unwrap();
        let err = migrate_with(&mut conn, &[M1]).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn failed_migration_leaves_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = "CREATE TABLE three (x INTEGER); NOT SQL;";
        assert!(migrate_with(&mut conn, &[M1, broken]).is_err());
        assert_eq!(current_version(&conn).unwrap(), 1);
        let three: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'three'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(three, 0);
    }

    /// A database made by a version-1 kcm, with rows, migrates and reads back: old
    /// access keys as sealed secrets without an operation limit, old keys without a
    /// policy; the new tables work.
    #[tokio::test]
    async fn version_1_database_with_rows_migrates() {
        use kcm_core::model::*;
        use kcm_core::store::{Store, Write};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.db");
        let (tenant, system, key) = (
            TenantId::new_random(),
            SystemId::new_random(),
            KeyId::new_random(),
        );
        let sealed: Vec<u8> = (0..=255u8).collect();
        {
            let mut conn = Connection::open(&path).unwrap();
            assert_eq!(migrate_with(&mut conn, &MIGRATIONS[..1]).unwrap(), 1);
            conn.execute(
                "INSERT INTO access_keys (id, tenant_id, role, system_id, sealed_secret,
                                          description, enabled, created_at)
                 VALUES ('KCMOLDKEY00000000001', ?1, 'key-user', ?2, ?3, 'old', 1, 17)",
                (tenant.to_string(), system.to_string(), &sealed),
            )
            .unwrap();
            conn.execute(
                "INSERT INTO service_keys (id, tenant_id, system_id, description, usage, spec,
                                           origin, state, created_at, primary_version, tags)
                 VALUES (?1, ?2, ?3, '', 'ENCRYPT_DECRYPT', 'SYMMETRIC_DEFAULT', 'AWS_KMS',
                         'active', 18, 1, '{}')",
                (key.to_string(), tenant.to_string(), system.to_string()),
            )
            .unwrap();
        }
        let store = crate::SqliteStore::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(current_version(&conn).unwrap() as usize, MIGRATIONS.len());
        let old = store.access_key("KCMOLDKEY00000000001").await.unwrap();
        assert_eq!(
            old,
            Some(AccessKeyRecord {
                id: "KCMOLDKEY00000000001".into(),
                tenant_id: Some(tenant),
                role: Role::KeyUser,
                system_id: Some(system),
                secret: StoredSecret::Sealed(sealed),
                operations: None,
                description: "old".into(),
                enabled: true,
                created_at: 17,
            })
        );
        let old_key = store.service_key(key).await.unwrap().unwrap();
        assert_eq!(old_key.policy, None);
        assert_eq!(old_key.created_at, 18);

        // New rows of every new kind sit beside the old ones.
        let new = AccessKeyRecord {
            id: "KCMNEWKEY00000000001".into(),
            secret: StoredSecret::Derived {
                kind: CredentialKind::SigV4,
                salt: vec![1; 16],
                verifier: vec![2; 32],
            },
            operations: Some(vec!["Encrypt".into()]),
            ..old.clone().unwrap()
        };
        let policied = ServiceKeyRecord {
            policy: Some("{}".into()),
            ..old_key
        };
        store
            .commit(vec![
                Write::PutAccessKey(new.clone()),
                Write::PutServiceKey(policied.clone()),
            ])
            .await
            .unwrap();
        assert_eq!(store.access_key(&new.id).await.unwrap(), Some(new));
        assert_eq!(store.access_key("KCMOLDKEY00000000001").await.unwrap(), old);
        assert_eq!(store.service_key(key).await.unwrap(), Some(policied));
        assert!(store.grants(key).await.unwrap().is_empty());
        assert!(store.audit_chains().await.unwrap().is_empty());
    }

    #[test]
    fn real_migrations_apply_cleanly() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap() as usize, MIGRATIONS.len());
    }
}
