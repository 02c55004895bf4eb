//! PostgreSQL-specific behaviour: concurrent migrations, outage and recovery,
//! durability of commits, conflicts between nodes, password privacy, and snapshot
//! portability between SQLite and PostgreSQL.

mod support;

use std::time::{Duration, Instant};

use kcm_core::lifecycle::{KeyState, Lifecycle};
use kcm_core::model::*;
use kcm_core::store::{Snapshot, Store, StoreError, Write};
use kcm_store_postgres::{PostgresOptions, PostgresStore};
use kcm_store_sqlite::SqliteStore;
use kcm_test_support::store_conformance::fixtures;
use sqlx::{Connection, PgConnection, Row};
use support::shared;

/// Runs `call` on a clone of `store` in a task of its own, so the test can act on
/// the database (plant a row, hold a lock, end a session) while the call waits.
fn in_background<T, F>(
    store: &PostgresStore,
    call: impl FnOnce(PostgresStore) -> F,
) -> tokio::task::JoinHandle<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(call(store.clone()))
}

async fn raw(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("raw connection")
}

/// Runs `sql` on `conn` until it returns a row (it watches another session reach
/// a state, or acts on it once it has); fails after two seconds, naming `what`.
async fn until_a_row(conn: &mut PgConnection, sql: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn migration_rows(url: &str) -> (i64, i64) {
    let row = sqlx::query("SELECT COUNT(*), MAX(version) FROM schema_migrations")
        .fetch_one(&mut raw(url).await)
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Four nodes opening one fresh database at once all succeed; each migration is
/// applied exactly once; opening again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_migrate_once() {
    let server = shared();
    let name = server.create_database().await;
    let url = server.url(&name);
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::open(&url, PostgresOptions::default()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("concurrent open"));
    }
    let rows = migration_rows(&url).await;
    assert_eq!(rows, (10, 10), "one row per migration, versions 1..=10");
    for s in &stores {
        s.ping().await.unwrap();
        assert_eq!(s.snapshot().await.unwrap().schema_version, 10);
    }
    // Nodes see each other's writes.
    let t = fixtures::tenant("alpha", "000000000001");
    stores[0]
        .commit(vec![Write::PutTenant(t.clone())])
        .await
        .unwrap();
    assert_eq!(stores[3].tenant(t.id).await.unwrap(), Some(t));
    drop(stores);
    let again = PostgresStore::open(&url, PostgresOptions::default())
        .await
        .unwrap();
    again.ping().await.unwrap();
    assert_eq!(migration_rows(&url).await, rows);
}

#[tokio::test]
async fn refuses_a_newer_schema() {
    let server = shared();
    let name = server.create_database().await;
    let url = server.url(&name);
    drop(
        PostgresStore::open(&url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        .execute(&mut raw(&url).await)
        .await
        .unwrap();
    let err = PostgresStore::open(&url, PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("newer"), "{err}");
}

/// A batch that fails part-way for a reason other than a conflict (a value
/// PostgreSQL cannot store; an operation name that could not be read back) writes
/// nothing, nor does an audit append whose last record cannot be stored; and the
/// store goes on working.
#[tokio::test]
async fn a_commit_failing_midway_leaves_nothing_written() {
    let (store, _db) = support::make_store().await;
    let t = fixtures::tenant("alpha", "000000000001");
    let key = fixtures::service_key(t.id);
    let meta = |k: &str, v: &str| Write::PutMeta {
        key: k.into(),
        value: v.into(),
    };
    let batch = vec![
        meta("m", "v"),
        Write::PutTenant(t.clone()),
        Write::PutServiceKey(key.clone()),
        // PostgreSQL text cannot hold a NUL character.
        meta("nul", "a\0b"),
        meta("after", "v"),
    ];
    let err = store.commit(batch).await.unwrap_err();
    assert!(!matches!(err, StoreError::Conflict(_)), "{err:?}");
    let bad_ops = AccessKeyRecord {
        operations: Some(vec!["Encrypt,Decrypt".into()]),
        ..fixtures::access_key("KCMBADOPS00000000001", None)
    };
    let err = store
        .commit(vec![meta("m", "v"), Write::PutAccessKey(bad_ops)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be stored"), "{err}");
    let mut records = vec![
        fixtures::audit_record(Some(t.id), 1),
        fixtures::bare_audit_record(None, 1),
        AuditRecord {
            principal: "a\0b".into(),
            ..fixtures::bare_audit_record(Some(t.id), 2)
        },
    ];
    let err = store.append_audit(&mut records).await.unwrap_err();
    assert!(!matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.snapshot().await.unwrap().total_rows(), 0);
    assert_eq!(store.meta("m").await.unwrap(), None);
    store
        .commit(vec![Write::PutTenant(t.clone())])
        .await
        .unwrap();
    assert_eq!(store.tenants().await.unwrap(), vec![t]);
}

/// Two nodes racing for the same alias name: exactly one wins, the other gets a
/// conflict. (Nodes appending to one audit chain never race for a `seq`: see
/// `nodes_appending_to_one_audit_chain_take_turns`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_racing_get_one_winner_and_conflicts() {
    let server = shared();
    let (a, b, _db) = server.two_nodes().await;
    let t = TenantId::new_random();
    for round in 0..10u64 {
        let name = format!("alias/race-{round}");
        let (ra, rb) = tokio::join!(
            a.commit(vec![Write::InsertAlias(fixtures::alias(
                t,
                &name,
                KeyId::new_random()
            ))]),
            b.commit(vec![Write::InsertAlias(fixtures::alias(
                t,
                &name,
                KeyId::new_random()
            ))]),
        );
        let conflicts = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
            .count();
        assert!(ra.is_ok() != rb.is_ok() && conflicts == 1, "{ra:?} {rb:?}");
    }
    assert_eq!(b.aliases(t, None).await.unwrap().len(), 10);
}

/// A row put at a `seq` by a writer that does not take the chain lock (plain SQL
/// here; a restore committing meanwhile would do the same) while an append inserts
/// makes the append a conflict, never a forked chain: its one multi-row INSERT
/// waits for that row, then fails. The conflict names the record it tripped on
/// (here the third, not the first, of the batch), and nothing of the batch is
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_meeting_a_row_from_outside_the_chain_lock_conflicts_naming_it() {
    let server = shared();
    let (store, db) = server.fresh_store().await;
    let url = server.url(&db.name);
    let (t, other) = (TenantId::new_random(), TenantId::new_random());
    let mut first = (1..=3)
        .map(|seq| fixtures::audit_record(Some(t), seq))
        .collect();
    store.append_audit(&mut first).await.unwrap();
    let mut planter = raw(&url).await;
    sqlx::raw_sql("BEGIN").execute(&mut planter).await.unwrap();
    sqlx::query(
        "INSERT INTO audit_records (chain, seq, time, principal, front_door, operation,
                                    keys, key_ids, outcome, request_id, prev_hash, hash)
         VALUES ($1, 5, 0, 'planted', 'aws', 'Encrypt', '[]', ',', 'success', 'planted',
                 '', 'planted')",
    )
    .bind(t.to_string())
    .execute(&mut planter)
    .await
    .unwrap();
    // Linked after the committed tail (3): t's 4, other's 1, t's 5 — the planted seq.
    let append = in_background(&store, |store| async move {
        store
            .append_audit(&mut vec![
                fixtures::audit_record(Some(t), 0),
                fixtures::audit_record(Some(other), 0),
                fixtures::bare_audit_record(Some(t), 0),
            ])
            .await
    });
    let mut admin = raw(&url).await;
    let waiting = "SELECT pid FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'
                     AND query ILIKE 'INSERT INTO audit_records%'";
    until_a_row(
        &mut admin,
        waiting,
        "the append waiting for the planted row",
    )
    .await;
    sqlx::raw_sql("COMMIT").execute(&mut planter).await.unwrap();
    match append.await.unwrap() {
        Err(StoreError::Conflict(msg)) => {
            assert!(
                msg.contains(&format!("tenant {t}")) && msg.contains("seq 5"),
                "{msg}"
            )
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let chain = store
        .audit_records(&AuditQuery {
            tenant: Some(t),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let seqs: Vec<u64> = chain.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 5]);
    assert_eq!(store.audit_tail(Some(other)).await.unwrap(), None);
}

/// Nodes appending to one audit chain at once never conflict: each append locks
/// the chain and links after the tail it reads inside its transaction. Six
/// appenders on two nodes make one whole chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_appending_to_one_audit_chain_take_turns() {
    use kcm_core::audit::hash::{record_hash, GENESIS_HASH};
    let server = shared();
    let (a, b, _db) = server.two_nodes().await;
    let t = Some(TenantId::new_random());
    let mut appenders = Vec::new();
    for node in [
        a.clone(),
        b.clone(),
        a.clone(),
        b.clone(),
        a.clone(),
        b.clone(),
    ] {
        appenders.push(tokio::spawn(async move {
            for i in 0..20 {
                let mut batch = (0..4).map(|_| fixtures::bare_audit_record(t, i)).collect();
                node.append_audit(&mut batch)
                    .await
                    .expect("no conflict between nodes");
            }
        }));
    }
    for appender in appenders {
        appender.await.unwrap();
    }
    let records = b
        .audit_records(&AuditQuery {
            tenant: t,
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 6 * 20 * 4);
    let mut prev = GENESIS_HASH.to_string();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.prev_hash, prev, "seq {}", r.seq);
        assert_eq!(r.hash, record_hash(r), "seq {}", r.seq);
        prev = r.hash.clone();
    }
}

/// The change lock is cluster-wide: while one node holds it, another node's
/// `lock_changes` waits; once it is dropped, the other gets it at once. Commits
/// made under it are ordinary commits (durable, visible to every node).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_change_lock_is_held_by_one_node_at_a_time() {
    let server = shared();
    let (a, b, _db) = server.two_nodes().await;
    let mut held = a.lock_changes().await.unwrap().expect("a cluster lock");
    let waiter = in_background(&b, |b| async move {
        let mut lock = b.lock_changes().await.unwrap().expect("a cluster lock");
        let got_at = Instant::now();
        lock.commit(vec![Write::PutMeta {
            key: "order".into(),
            value: "b".into(),
        }])
        .await
        .unwrap();
        got_at
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "B took the lock while A held it");
    held.commit(vec![Write::PutMeta {
        key: "order".into(),
        value: "a".into(),
    }])
    .await
    .unwrap();
    assert_eq!(b.meta("order").await.unwrap().as_deref(), Some("a"));
    let released_at = Instant::now();
    drop(held);
    let got_at = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("B got the lock once A dropped it")
        .unwrap();
    assert!(got_at >= released_at);
    assert_eq!(a.meta("order").await.unwrap().as_deref(), Some("b"));
}

/// A node whose lock connection breaks (a network cut, the database ending its
/// session) has lost the lock: its commit fails and writes nothing, and another
/// node can take the lock at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_change_lock_commits_nothing() {
    let server = shared();
    let (a, b, db) = server.two_nodes().await;
    let url = server.url(&db.name);
    let mut held = a.lock_changes().await.unwrap().expect("a cluster lock");
    let killed = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND database =
               (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&mut raw(&url).await)
    .await
    .unwrap();
    assert_eq!(killed.len(), 1, "exactly one session holds the lock");
    let mut other = tokio::time::timeout(Duration::from_secs(5), b.lock_changes())
        .await
        .expect("the lock was released with the session")
        .unwrap()
        .unwrap();
    let write = || {
        vec![Write::PutMeta {
            key: "who".into(),
            value: "a".into(),
        }]
    };
    match held.commit(write()).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("lock"), "{msg}"),
        other => panic!("a commit under a lost lock must fail, got {other:?}"),
    }
    match held.commit(write()).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("nothing was written"), "{msg}"),
        other => panic!("a lost lock stays lost, got {other:?}"),
    }
    assert_eq!(a.meta("who").await.unwrap(), None);
    other
        .commit(vec![Write::PutMeta {
            key: "who".into(),
            value: "b".into(),
        }])
        .await
        .unwrap();
    assert_eq!(a.meta("who").await.unwrap().as_deref(), Some("b"));
}

/// A connection lost while COMMIT is in flight is reported as `Unavailable` (the
/// outcome is unknown) and not retried; a connection lost before COMMIT is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_commit_is_unavailable_never_ok() {
    let server = shared();
    let (store, db) = server.fresh_store().await;
    let url = server.url(&db.name);
    let mut admin = raw(&url).await;
    // A deferred trigger makes COMMIT itself take a while.
    sqlx::raw_sql(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON meta
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let commit = in_background(&store, |store| async move {
        store
            .commit(vec![Write::PutMeta {
                key: "slow".into(),
                value: "v".into(),
            }])
            .await
    });
    let kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND query ILIKE 'COMMIT%' AND state = 'active'";
    until_a_row(&mut admin, kill, "the COMMIT running").await;
    match commit.await.unwrap() {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("unknown"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Terminated mid-COMMIT, the transaction was not committed, nor tried again.
    assert_eq!(store.meta("slow").await.unwrap(), None);

    // Before COMMIT: a write waiting for a lock loses its connection; the commit is
    // tried again and succeeds once the lock is released.
    sqlx::raw_sql("DROP TRIGGER slow_commit ON meta")
        .execute(&mut admin)
        .await
        .unwrap();
    let mut locker = raw(&url).await;
    sqlx::raw_sql("BEGIN; LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE;")
        .execute(&mut locker)
        .await
        .unwrap();
    let t = fixtures::tenant("alpha", "000000000001");
    let writes = vec![Write::PutTenant(t.clone())];
    let commit = in_background(&store, |store| async move { store.commit(writes).await });
    let waiting = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'
                     AND query ILIKE 'INSERT INTO tenants%'";
    until_a_row(&mut admin, waiting, "the INSERT waiting").await;
    sqlx::raw_sql("COMMIT").execute(&mut locker).await.unwrap();
    commit
        .await
        .unwrap()
        .expect("retried after the lost connection");
    assert_eq!(store.tenant(t.id).await.unwrap(), Some(t));
}

/// The URL's password appears neither in `Debug` output nor in any error.
#[tokio::test]
async fn the_password_never_shows() {
    let server = shared();
    let (store, db) = server.fresh_store().await;
    let password = server.password();
    assert!(!password.is_empty());
    let debug = format!("{store:?}");
    assert!(!debug.contains(&password), "{debug}");
    assert!(debug.contains(&db.name), "{debug}");

    let wrong = "Wr0ng-p%40ss-Secret";
    let mut url = url::Url::parse(&server.url(&db.name)).unwrap();
    url.set_password(Some(wrong)).unwrap();
    let quick = PostgresOptions {
        acquire_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let err = PostgresStore::open(url.as_str(), quick.clone())
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, StoreError::Unavailable(_)), "{text}");
    assert!(
        !text.contains("Wr0ng") && !text.contains("Secret"),
        "{text}"
    );

    // Nothing listens on port 1; the message names the server, not the password.
    let unreachable = format!("postgres://kcm:{password}@127.0.0.1:1/kcm");
    let err = PostgresStore::open(&unreachable, quick.clone())
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&password), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    let shown = err.to_string();
    assert_eq!(shown.matches("store unavailable").count(), 1, "{shown}");

    let garbled = format!("postgres://kcm:{password}@[::1/kcm");
    let err = PostgresStore::open(&garbled, quick).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&password), "{text}");
}

/// While PostgreSQL is down, calls fail with `Unavailable` within a bound; when it
/// is back (same port, same data), the same store works again without reopening,
/// and what was committed before the outage is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_and_recovery_without_reopening() {
    // Its own server: stopping the shared one would break the other tests.
    let server = support::Server::start_private();
    let name = server.create_database().await;
    let options = PostgresOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(1),
    };
    let store = PostgresStore::open(&server.url(&name), options)
        .await
        .unwrap();
    let before = fixtures::tenant("before", "000000000001");
    store
        .commit(vec![Write::PutTenant(before.clone())])
        .await
        .unwrap();

    server.stop();
    let started = Instant::now();
    let err = store.tenant(before.id).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        took < Duration::from_secs(4),
        "a read took {took:?} to fail"
    );
    let started = Instant::now();
    let during = fixtures::tenant("during", "000000000002");
    let err = store
        .commit(vec![Write::PutTenant(during.clone())])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    server.start();
    // The same store serves again without being reopened (after at most the short
    // pause in which it fails fast, having found the database down).
    let deadline = Instant::now() + Duration::from_secs(5);
    let back = loop {
        match store.tenant(before.id).await {
            Ok(found) => break found,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "not back 5 s after the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(back, Some(before.clone()));
    let after = fixtures::tenant("after", "000000000003");
    store
        .commit(vec![Write::PutTenant(after.clone())])
        .await
        .unwrap();
    assert_eq!(store.tenants().await.unwrap(), vec![after, before]);
    store.ping().await.unwrap();
}

/// At least one row of every table, with every optional column both set and unset:
/// the writes to commit and the audit records to append (see [`write_rows`]).
fn every_kind_of_row() -> (Vec<Write>, Vec<AuditRecord>) {
    let alpha = fixtures::tenant("alpha", "000000000001");
    let bravo = fixtures::tenant("bravo", "000000000002");
    let system = fixtures::system(alpha.id, "default");
    let bare_key = fixtures::service_key(alpha.id);
    let full_key = fixtures::full_service_key(alpha.id);
    let mut writes = vec![
        Write::PutMeta {
            key: "ünïcødé".into(),
            value: "välue — \"quoted\"".into(),
        },
        Write::PutMeta {
            key: "Zed".into(),
            value: String::new(),
        },
        Write::PutTenant(alpha.clone()),
        Write::PutTenant(bravo.clone()),
        Write::PutAccessKey(fixtures::access_key("KCMOPERATOR000000001", None)),
        Write::PutAccessKey(AccessKeyRecord {
            enabled: false,
            secret: StoredSecret::Sealed(fixtures::blob(9)),
            operations: Some(vec!["Encrypt".into(), "Decrypt".into()]),
            ..fixtures::access_key("KCMALPHA000000000001", Some(alpha.id))
        }),
        Write::PutAccessKey(AccessKeyRecord {
            operations: Some(vec![]),
            ..fixtures::access_key("kcmlower000000000001", Some(bravo.id))
        }),
        Write::PutRootKey(fixtures::root_key(None, 1)),
        Write::PutRootKey(RootKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::Suspended),
            origin: RootKeyOrigin::External,
            ..fixtures::root_key(Some(alpha.id), 2)
        }),
        Write::PutSystem(system.clone()),
        Write::PutSystem(SystemRecord {
            labels: Default::default(),
            region: String::new(),
            active_key_version: 0,
            ..fixtures::system(alpha.id, "Unlinked")
        }),
        Write::PutSystemKey(fixtures::system_key(system.id, 1)),
        Write::PutSystemKey(fixtures::system_key(system.id, 2)),
        Write::PutServiceKey(bare_key.clone()),
        Write::PutServiceKey(full_key.clone()),
        Write::PutKeyVersion(fixtures::key_version(
            bare_key.id,
            1,
            VersionOrigin::Creation,
        )),
        Write::PutKeyVersion(fixtures::key_version(
            full_key.id,
            2,
            VersionOrigin::AutomaticRotation,
        )),
        Write::InsertAlias(fixtures::alias(alpha.id, "alias/b", bare_key.id)),
        Write::InsertAlias(fixtures::alias(alpha.id, "alias/A", full_key.id)),
        Write::InsertAlias(fixtures::alias(alpha.id, "alias/_x", full_key.id)),
        Write::PutGrant(fixtures::grant(alpha.id, full_key.id, "g-1", 10)),
        Write::PutGrant(kcm_core::policy::GrantRecord {
            retiring_principal: None,
            name: None,
            ..fixtures::grant(alpha.id, full_key.id, "g-2", 11)
        }),
        Write::PutAuditCheckpoint(fixtures::audit_checkpoint(Some(alpha.id), 2)),
        Write::PutAuditCheckpoint(fixtures::audit_checkpoint(None, 1)),
        Write::PutManagedObject(fixtures::managed_object(alpha.id, system.id, 30)),
        Write::PutManagedObject(fixtures::bare_managed_object(alpha.id, system.id, 10)),
        Write::PutManagedObject(ManagedObjectRecord {
            kind: ObjectKind::Container,
            payload: None,
            ..fixtures::managed_object(alpha.id, system.id, 10)
        }),
    ];
    for i in 0..12 {
        writes.push(Write::PutServiceKey(ServiceKeyRecord {
            description: format!("bulk {i}"),
            ..fixtures::service_key(bravo.id)
        }));
    }
    let records = vec![
        fixtures::audit_record(Some(alpha.id), 1),
        fixtures::bare_audit_record(Some(alpha.id), 2),
        fixtures::audit_record(None, 1),
    ];
    (writes, records)
}

/// Writes [`every_kind_of_row`]'s rows through the trait. Appends link the same
/// records the same way in every empty store, so the stored rows match too.
async fn write_rows(store: &dyn Store, (writes, records): &(Vec<Write>, Vec<AuditRecord>)) {
    store.commit(writes.clone()).await.unwrap();
    store.append_audit(&mut records.clone()).await.unwrap();
}

/// Every read of the trait that the rows above touch gives the same answer.
async fn assert_same_reads(a: &dyn Store, b: &dyn Store) {
    assert_eq!(a.tenants().await.unwrap(), b.tenants().await.unwrap());
    assert_eq!(
        a.meta("ünïcødé").await.unwrap(),
        b.meta("ünïcødé").await.unwrap()
    );
    assert_eq!(
        a.access_keys(None).await.unwrap(),
        b.access_keys(None).await.unwrap()
    );
    for t in a.tenants().await.unwrap() {
        assert_eq!(
            a.access_keys(Some(t.id)).await.unwrap(),
            b.access_keys(Some(t.id)).await.unwrap()
        );
        assert_eq!(
            a.root_keys(Some(t.id)).await.unwrap(),
            b.root_keys(Some(t.id)).await.unwrap()
        );
        let systems = a.systems(t.id).await.unwrap();
        assert_eq!(systems, b.systems(t.id).await.unwrap());
        for s in &systems {
            let objects = a.managed_objects(s.id).await.unwrap();
            assert_eq!(objects, b.managed_objects(s.id).await.unwrap());
            for o in &objects {
                assert_eq!(
                    a.managed_object(o.id).await.unwrap(),
                    b.managed_object(o.id).await.unwrap()
                );
            }
            for v in 1..=2 {
                assert_eq!(
                    a.system_key(s.id, v).await.unwrap(),
                    b.system_key(s.id, v).await.unwrap()
                );
            }
        }
        let keys = a.service_keys(t.id, None, 100).await.unwrap();
        assert_eq!(keys, b.service_keys(t.id, None, 100).await.unwrap());
        for k in &keys {
            assert_eq!(
                a.key_versions(k.id).await.unwrap(),
                b.key_versions(k.id).await.unwrap()
            );
            assert_eq!(a.grants(k.id).await.unwrap(), b.grants(k.id).await.unwrap());
        }
        assert_eq!(
            a.aliases(t.id, None).await.unwrap(),
            b.aliases(t.id, None).await.unwrap()
        );
        let chain = AuditQuery {
            tenant: Some(t.id),
            limit: 100,
            ..AuditQuery::default()
        };
        assert_eq!(
            a.audit_records(&chain).await.unwrap(),
            b.audit_records(&chain).await.unwrap()
        );
        assert_eq!(
            a.last_audit_checkpoint(Some(t.id)).await.unwrap(),
            b.last_audit_checkpoint(Some(t.id)).await.unwrap()
        );
    }
    assert_eq!(
        a.root_keys(None).await.unwrap(),
        b.root_keys(None).await.unwrap()
    );
    assert_eq!(
        a.audit_chains().await.unwrap(),
        b.audit_chains().await.unwrap()
    );
}

/// The same rows written through each backend give identical snapshots; a SQLite
/// snapshot restores into PostgreSQL (and back) and reads back equal.
#[tokio::test]
async fn snapshots_are_portable_between_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("kcm.db")).unwrap();
    let rows = every_kind_of_row();
    write_rows(&sqlite, &rows).await;
    let from_sqlite = sqlite.snapshot().await.unwrap();
    assert!(
        from_sqlite.total_rows() > 30,
        "{:?}",
        from_sqlite.row_counts()
    );
    assert!(
        from_sqlite
            .row_counts()
            .contains(&("managed_objects".to_owned(), 3)),
        "{:?}",
        from_sqlite.row_counts()
    );

    // Both backends describe the same schema (tables, columns in order).
    let (empty_pg, _g0) = support::make_store().await;
    let empty = empty_pg.snapshot().await.unwrap();
    let shape = |s: &Snapshot| {
        s.tables
            .iter()
            .map(|t| (t.name.clone(), t.columns.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&empty), shape(&from_sqlite));
    assert_eq!(empty.schema_version, from_sqlite.schema_version);

    // The same writes give the same snapshot.
    let (written, _g1) = support::make_store().await;
    write_rows(&written, &rows).await;
    assert_eq!(written.snapshot().await.unwrap(), from_sqlite);

    // SQLite → PostgreSQL.
    let (restored, _g2) = support::make_store().await;
    restored
        .restore_snapshot(from_sqlite.clone())
        .await
        .unwrap();
    assert_eq!(restored.snapshot().await.unwrap(), from_sqlite);
    assert_same_reads(&sqlite, &restored).await;

    // PostgreSQL → SQLite.
    let dir2 = tempfile::tempdir().unwrap();
    let back = SqliteStore::open(&dir2.path().join("kcm.db")).unwrap();
    back.restore_snapshot(restored.snapshot().await.unwrap())
        .await
        .unwrap();
    assert_eq!(back.snapshot().await.unwrap(), from_sqlite);
    assert_same_reads(&restored, &back).await;

    // A value a column cannot hold is refused, and nothing is written.
    let mut wrong = from_sqlite.clone();
    let tenants = wrong
        .tables
        .iter_mut()
        .find(|t| t.name == "tenants")
        .unwrap();
    let created = tenants
        .columns
        .iter()
        .position(|c| c == "created_at")
        .unwrap();
    tenants.rows[0][created] = kcm_core::store::Value::Text("yesterday".into());
    let (target, _g3) = support::make_store().await;
    match target.restore_snapshot(wrong).await {
        Err(StoreError::Refused(msg)) => assert!(msg.contains("created_at"), "{msg}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(target.snapshot().await.unwrap().total_rows(), 0);
}
