//! SQLite-specific behaviour: migrations, persistence, file safety, decoding errors.

use std::path::{Path, PathBuf};

use kcm_core::model::*;
use kcm_core::store::{Store, StoreError, Write};
use kcm_core::store_conformance::fixtures;
use kcm_store_sqlite::SqliteStore;
use rusqlite::Connection;
use tempfile::TempDir;

fn db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kcm.db");
    (dir, path)
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn migration_rows(path: &Path) -> (i64, i64) {
    raw(path)
        .query_row(
            "SELECT COUNT(*), MAX(version) FROM schema_migrations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn migrations_are_idempotent_on_reopen() {
    let (_dir, path) = db();
    drop(SqliteStore::open(&path).unwrap());
    let first = migration_rows(&path);
    assert!(first.0 >= 1 && first.0 == first.1, "{first:?}");
    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        store.ping().await.unwrap();
    }
    assert_eq!(migration_rows(&path), first);
}

#[tokio::test]
async fn data_persists_across_reopen() {
    let (_dir, path) = db();
    let t = fixtures::tenant("alpha", "000000000001");
    let k = fixtures::full_service_key(t.id);
    {
        let store = SqliteStore::open(&path).unwrap();
        let writes = vec![Write::PutTenant(t.clone()), Write::PutServiceKey(k.clone())];
        store.commit(writes).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.tenant(t.id).await.unwrap(), Some(t));
    assert_eq!(store.service_key(k.id).await.unwrap(), Some(k));
}

#[tokio::test]
async fn acknowledged_commit_survives_unclean_shutdown() {
    let (_dir, path) = db();
    let t = fixtures::tenant("alpha", "000000000001");
    let store = SqliteStore::open(&path).unwrap();
    store
        .commit(vec![Write::PutTenant(t.clone())])
        .await
        .unwrap();
    // No close, no checkpoint: the commit lives only in the WAL.
    std::mem::forget(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.tenant(t.id).await.unwrap(), Some(t));
}

#[test]
fn refuses_a_newer_schema() {
    let (_dir, path) = db();
    drop(SqliteStore::open(&path).unwrap());
    raw(&path)
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)",
            [],
        )
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("999") && msg.contains("newer"), "{msg}");
}

#[test]
fn missing_parent_directory_is_an_error() {
    let (dir, _) = db();
    let err = SqliteStore::open(&dir.path().join("no/such/kcm.db")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[test]
fn uses_wal_journal() {
    let (_dir, path) = db();
    let _store = SqliteStore::open(&path).unwrap();
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = db();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // An existing, too-open file is tightened too.
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let write = Write::PutMeta {
        key: "k".into(),
        value: "v".into(),
    };
    store.commit(vec![write]).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    let wal = path.with_extension("db-wal");
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600);
}

#[tokio::test]
async fn unknown_enum_value_is_corrupt() {
    let (_dir, path) = db();
    let store = SqliteStore::open(&path).unwrap();
    let k = fixtures::service_key(TenantId::new_random());
    store
        .commit(vec![Write::PutServiceKey(k.clone())])
        .await
        .unwrap();
    raw(&path)
        .execute("UPDATE service_keys SET state = 'melted'", [])
        .unwrap();
    let err = store.service_key(k.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("melted"), "{err}");
}

#[tokio::test]
async fn conflict_names_what_conflicted() {
    let (_dir, path) = db();
    let store = SqliteStore::open(&path).unwrap();
    let t = TenantId::new_random();
    let a = fixtures::alias(t, "alias/foo", KeyId::new_random());
    store
        .commit(vec![Write::InsertAlias(a.clone())])
        .await
        .unwrap();
    let err = store.commit(vec![Write::InsertAlias(a)]).await.unwrap_err();
    assert!(
        err.to_string().contains("alias alias/foo already exists"),
        "{err}"
    );

    let first = fixtures::tenant("acme", "000000000001");
    let by_name = fixtures::tenant("acme", "000000000002");
    let by_account = fixtures::tenant("other", "000000000001");
    store.commit(vec![Write::PutTenant(first)]).await.unwrap();
    let err = store
        .commit(vec![Write::PutTenant(by_name)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tenant name acme"), "{err}");
    let err = store
        .commit(vec![Write::PutTenant(by_account)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("account id 000000000001"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clones_share_one_database_under_load() {
    let (_dir, path) = db();
    let store = SqliteStore::open(&path).unwrap();
    let t = TenantId::new_random();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let k = fixtures::service_key(t);
                store.commit(vec![Write::PutServiceKey(k.clone())]).await?;
                store.service_key(k.id).await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_some());
    }
    assert_eq!(store.service_keys(t, None, 100).await.unwrap().len(), 32);
}

#[tokio::test]
async fn run_all_passes() {
    kcm_core::store_conformance::run_all(|| async {
        let (dir, path) = db();
        (SqliteStore::open(&path).unwrap(), dir)
    })
    .await;
}
