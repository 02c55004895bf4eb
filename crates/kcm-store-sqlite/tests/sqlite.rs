//! SQLite-specific behaviour: migrations, persistence, file safety, decoding errors.

use std::path::{Path, PathBuf};

use kcm_core::model::*;
use kcm_core::store::{Store, StoreError, Write};
use kcm_store_sqlite::SqliteStore;
use kcm_test_support::store_conformance::fixtures;
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

    let insert = || Write::InsertMeta {
        key: "signing_key".into(),
        value: "v".into(),
    };
    store.commit(vec![insert()]).await.unwrap();
    let err = store.commit(vec![insert()]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("setting signing_key already exists"),
        "{err}"
    );
    // A taken audit `seq` cannot be reached through the trait (`append_audit`
    // links after the tail under the write lock); its wording is checked on the
    // store's private insert (`store::tests::a_taken_seq_is_a_conflict_naming_it`).
}

/// Operation lists are stored as names (never bits), audit chains and key ids in
/// the documented column forms.
#[tokio::test]
async fn stored_forms_are_as_documented() {
    let (_dir, path) = db();
    let store = SqliteStore::open(&path).unwrap();
    let t = TenantId::new_random();
    let g = fixtures::grant(t, KeyId::new_random(), "g1", 1);
    let k = AccessKeyRecord {
        operations: Some(vec!["Encrypt".into(), "DescribeKey".into()]),
        ..fixtures::access_key("KCMFORMS000000000001", Some(t))
    };
    let sealed = AccessKeyRecord {
        secret: StoredSecret::Sealed(vec![9; 8]),
        ..fixtures::access_key("KCMFORMS000000000002", None)
    };
    let tenant_record = fixtures::audit_record(Some(t), 1);
    let operator_record = fixtures::bare_audit_record(None, 1);
    store
        .commit(vec![
            Write::PutGrant(g),
            Write::PutAccessKey(k),
            Write::PutAccessKey(sealed),
            Write::PutAuditCheckpoint(fixtures::audit_checkpoint(None, 1)),
        ])
        .await
        .unwrap();
    store
        .append_audit(&mut vec![tenant_record.clone(), operator_record])
        .await
        .unwrap();
    let conn = raw(&path);
    let text = |sql: &str| -> Option<String> { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let (sealed_len, salt_null): (i64, bool) = conn
        .query_row(
            "SELECT length(sealed_secret), secret_salt IS NULL FROM access_keys
             WHERE id = 'KCMFORMS000000000001'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((sealed_len, salt_null), (0, false));
    let salt_null: bool = conn
        .query_row(
            "SELECT secret_salt IS NULL AND secret_verifier IS NULL FROM access_keys
             WHERE id = 'KCMFORMS000000000002'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(salt_null);
    let mut chains: Vec<String> = conn
        .prepare("SELECT chain FROM audit_records ORDER BY chain")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    chains.sort();
    assert_eq!(chains, ["".to_string(), t.to_string()]);
    let ids = tenant_record
        .keys
        .iter()
        .map(|k| k.id.to_string())
        .collect::<Vec<_>>();
    let tenant_key_ids = format!(",{},{},", ids[0], ids[1]);
    // Each stored form as its column holds it.
    for (sql, stored) in [
        // Operations in `OpSet` order (declaration order), by name.
        (
            "SELECT operations FROM grants",
            "RetireGrant,Encrypt,Decrypt",
        ),
        (
            "SELECT operations FROM access_keys WHERE id = 'KCMFORMS000000000001'",
            "Encrypt,DescribeKey",
        ),
        (
            "SELECT key_ids FROM audit_records WHERE chain != ''",
            tenant_key_ids.as_str(),
        ),
        ("SELECT key_ids FROM audit_records WHERE chain = ''", ","),
        ("SELECT chain FROM audit_checkpoints", ""),
    ] {
        assert_eq!(text(sql).as_deref(), Some(stored), "{sql}");
    }
}

/// A managed object's columns: kind and state by name, the attributes as one JSON
/// object, the payload's two columns both NULL without one; the table refuses a
/// half payload (written from outside kcm).
#[tokio::test]
async fn managed_object_stored_forms_are_as_documented() {
    let (_dir, path) = db();
    let store = SqliteStore::open(&path).unwrap();
    let (t, s) = (TenantId::new_random(), SystemId::new_random());
    let full = fixtures::managed_object(t, s, 1);
    let bare = fixtures::bare_managed_object(t, s, 2);
    store
        .commit(vec![
            Write::PutManagedObject(full.clone()),
            Write::PutManagedObject(bare.clone()),
        ])
        .await
        .unwrap();
    let conn = raw(&path);
    let row = |id: ObjectId| -> (String, String, String, Option<i64>, Option<Vec<u8>>) {
        conn.query_row(
            "SELECT kind, state, attributes, system_key_version, sealed_payload
             FROM managed_objects WHERE id = ?1",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap()
    };
    let (kind, state, attributes, version, sealed) = row(full.id);
    assert_eq!((kind.as_str(), state.as_str()), ("symmetric", "active"));
    let json: serde_json::Value = serde_json::from_str(&attributes).unwrap();
    assert_eq!(json["name"], full.attributes.name.as_str(), "{json}");
    assert_eq!(json["acl"]["project_access"], false, "{json}");
    let payload = full.payload.unwrap();
    assert_eq!(version, Some(i64::from(payload.system_key_version)));
    assert_eq!(sealed, Some(payload.sealed));
    let (kind, state, _, version, sealed) = row(bare.id);
    assert_eq!((kind.as_str(), state.as_str()), ("opaque", "pre-active"));
    assert_eq!((version, sealed), (None, None));
    let half = conn.execute(
        "UPDATE managed_objects SET sealed_payload = NULL WHERE id = ?1",
        [full.id.to_string()],
    );
    assert!(half.is_err(), "a half payload must be refused");
}

/// Rows the decoder cannot make sense of are reported as corrupt, naming the value.
#[tokio::test]
async fn undecodable_new_rows_are_corrupt() {
    let (_dir, path) = db();
    let store = SqliteStore::open(&path).unwrap();
    let t = TenantId::new_random();
    let key = KeyId::new_random();
    store
        .commit(vec![
            Write::PutGrant(fixtures::grant(t, key, "g1", 1)),
            Write::PutAccessKey(fixtures::access_key("KCMHALF0000000000001", Some(t))),
        ])
        .await
        .unwrap();
    store
        .append_audit(&mut vec![fixtures::audit_record(Some(t), 1)])
        .await
        .unwrap();
    let conn = raw(&path);
    let corrupt = |err: StoreError, needle: &str| {
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
    };

    conn.execute("UPDATE grants SET operations = 'Encrypt,Fly'", [])
        .unwrap();
    corrupt(store.grant("g1").await.unwrap_err(), "Fly");
    corrupt(store.grants(key).await.unwrap_err(), "Fly");

    conn.execute("UPDATE access_keys SET secret_verifier = NULL", [])
        .unwrap();
    corrupt(
        store.access_key("KCMHALF0000000000001").await.unwrap_err(),
        "salt and verifier",
    );

    conn.execute("UPDATE audit_records SET outcome = 'maybe'", [])
        .unwrap();
    let query = AuditQuery {
        tenant: Some(t),
        limit: 10,
        ..AuditQuery::default()
    };
    corrupt(store.audit_records(&query).await.unwrap_err(), "maybe");
    conn.execute(
        "UPDATE audit_records SET outcome = 'success', keys = 'not json'",
        [],
    )
    .unwrap();
    corrupt(store.audit_records(&query).await.unwrap_err(), "audit keys");

    conn.execute("UPDATE audit_records SET chain = 'no-tenant'", [])
        .unwrap();
    corrupt(store.audit_chains().await.unwrap_err(), "no-tenant");

    let system = SystemId::new_random();
    let object = fixtures::managed_object(t, system, 1);
    store
        .commit(vec![Write::PutManagedObject(object.clone())])
        .await
        .unwrap();
    conn.execute("UPDATE managed_objects SET attributes = 'not json'", [])
        .unwrap();
    corrupt(
        store.managed_object(object.id).await.unwrap_err(),
        "object attributes",
    );
    corrupt(
        store.managed_objects(system).await.unwrap_err(),
        "object attributes",
    );
    conn.execute(
        "UPDATE managed_objects SET attributes = '{}', kind = 'cheese'",
        [],
    )
    .unwrap();
    corrupt(store.managed_object(object.id).await.unwrap_err(), "cheese");
}

/// An operation name that could not be read back as written fails the commit, and
/// nothing of it is written.
#[tokio::test]
async fn unstorable_operation_names_fail_the_commit() {
    let (_dir, path) = db();
    let store = SqliteStore::open(&path).unwrap();
    for bad in ["Encrypt,Decrypt", ""] {
        let k = AccessKeyRecord {
            operations: Some(vec!["DescribeKey".into(), bad.into()]),
            ..fixtures::access_key("KCMBADOPS00000000001", None)
        };
        let writes = vec![
            Write::PutMeta {
                key: "m".into(),
                value: "v".into(),
            },
            Write::PutAccessKey(k),
        ];
        let err = store.commit(writes).await.unwrap_err();
        assert!(err.to_string().contains("cannot be stored"), "{err}");
        assert_eq!(store.meta("m").await.unwrap(), None);
        assert_eq!(
            store.access_key("KCMBADOPS00000000001").await.unwrap(),
            None
        );
    }
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
    kcm_test_support::store_conformance::run_all(|| async {
        let (dir, path) = db();
        (SqliteStore::open(&path).unwrap(), dir)
    })
    .await;
}
