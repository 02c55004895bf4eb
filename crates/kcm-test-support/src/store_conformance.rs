//! The shared conformance suite every [`Store`] implementation must pass.
//!
//! The suite tests behaviour through the trait only, so it runs unchanged against
//! SQLite, PostgreSQL or an in-memory store. Each check starts from an **empty**
//! store and panics (with a message) on the first deviation.
//!
//! Preferred use, from a backend crate's `tests/` (needs `tokio` with `macros` and
//! `rt`, and this crate, as dev-dependencies):
//!
//! ```text
//! kcm_test_support::store_conformance_tests!(|| async { make_store().await });
//! ```
//!
//! This generates one `#[tokio::test]` per check, named after the check, calling
//! the constructor afresh for each. The constructor returns a [`StoreFixture`]:
//! either a boxed store, or a `(store, guard)` pair whose guard (a temporary
//! directory, a database handle, …) lives as long as the check runs.
//!
//! Without the macro, [`run_all`] runs every check in sequence, one fresh store each.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use kcm_core::authz::{Op, OpSet, ALL_OPS};
use kcm_core::keyspec::{KeyOrigin, KeySpec, KeyUsage};
use kcm_core::lifecycle::{KeyState, Lifecycle, ALL_STATES};
use kcm_core::model::*;
use kcm_core::policy::{GrantConstraints, GrantRecord};
use kcm_core::store::{Snapshot, Store, StoreError, TableDump, Value, Write};

/// What a conformance constructor returns: something that lends a store.
pub trait StoreFixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

// Not `impl<S: Store> StoreFixture for S`: with `Store` a foreign trait that would
// overlap the pair below (kcm-core could implement `Store` for a pair).
impl StoreFixture for Box<dyn Store> {
    fn store(&self) -> &dyn Store {
        self.as_ref()
    }
}

impl<S: Store, G> StoreFixture for (S, G) {
    fn store(&self) -> &dyn Store {
        &self.0
    }
}

/// Lists every check, calling back the macro named `$callback` (an exported macro of
/// this crate) with `{ $args } check_a, check_b, …`. The single source of the list.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_checks {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { { $($args)* }
            ping_succeeds,
            empty_commit_succeeds,
            meta_round_trip,
            insert_meta_conflicts,
            replace_meta_is_compare_and_set,
            change_lock_commits_and_is_given_up,
            tenant_round_trip,
            tenant_upsert_replaces,
            tenant_name_is_unique,
            tenant_account_id_is_unique,
            access_key_round_trip,
            access_keys_are_listed_per_owner,
            access_key_upsert_and_delete,
            access_key_secret_forms_round_trip,
            access_key_operations_round_trip,
            root_key_round_trip,
            root_keys_are_listed_per_owner,
            system_round_trip,
            system_name_is_unique_within_tenant,
            system_key_round_trip,
            service_key_round_trip,
            service_key_upsert_replaces,
            service_key_policy_round_trip,
            service_keys_page_by_id,
            service_keys_are_tenant_isolated,
            key_versions_round_trip,
            delete_key_versions_erases_one_key,
            keys_due_for_deletion,
            keys_due_for_rotation,
            keys_with_expired_material,
            alias_round_trip,
            insert_alias_conflicts,
            put_alias_replaces,
            delete_alias,
            delete_aliases_of_key,
            grant_round_trip,
            grants_list_by_key,
            grants_retirable_by_principal,
            delete_grant,
            delete_grants_of_key,
            managed_object_round_trip,
            managed_object_upsert_replaces,
            delete_managed_object,
            managed_objects_are_listed_per_system_oldest_first,
            audit_record_round_trip,
            append_audit_never_reuses_a_taken_seq,
            append_audit_links_after_the_stored_tail,
            concurrent_audit_appends_form_one_chain,
            audit_tail_is_last_record,
            audit_chains_lists_every_chain,
            audit_records_filters,
            audit_records_page_by_seq,
            audit_checkpoints_round_trip,
            commit_is_atomic,
            commit_conflict_within_batch_is_atomic,
            writes_apply_in_order,
            concurrent_commits_all_apply,
            snapshot_of_an_empty_store_has_no_rows,
            restore_refuses_a_non_empty_store,
            restore_refuses_another_schema_version,
        }
    };
}

/// Lists every check that needs two fresh stores (snapshot one, restore into the
/// other), in the same callback style as the single-store list.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_pair_checks {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { { $($args)* }
            snapshot_restores_every_record_into_a_fresh_store,
            restore_is_all_or_nothing,
            snapshot_during_concurrent_writes_is_consistent,
            snapshot_carries_managed_objects,
        }
    };
}

/// Generates one `#[tokio::test]` per conformance check for a store constructor.
///
/// `$make` is anything callable with no arguments that returns a future of a
/// [`StoreFixture`]: an async closure, a
/// closure returning an async block, or the path of an `async fn`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::__store_conformance_checks!(__store_conformance_emit_tests { $make });
        $crate::__store_conformance_pair_checks!(__store_conformance_emit_pair_tests { $make });
    };
}

/// Emits the tests for [`store_conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_emit_tests {
    ({ $make:expr } $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = ($make)().await;
                $crate::store_conformance::checks::$name(
                    $crate::store_conformance::StoreFixture::store(&fixture),
                )
                .await;
            }
        )*
    };
}

/// Emits the two-store tests for [`store_conformance_tests!`]: the constructor is
/// called twice, and the check gets both stores.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_emit_pair_tests {
    ({ $make:expr } $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let first = ($make)().await;
                let second = ($make)().await;
                $crate::store_conformance::pair_checks::$name(
                    $crate::store_conformance::StoreFixture::store(&first),
                    $crate::store_conformance::StoreFixture::store(&second),
                )
                .await;
            }
        )*
    };
}

/// Emits [`run_all`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_emit_run_all {
    ({} $($name:ident),* $(,)?) => {
        /// Runs every check in sequence, each on a fresh store from `make` (two
        /// fresh stores for the snapshot-and-restore checks).
        pub async fn run_all<F, Fut, X>(make: F)
        where
            F: Fn() -> Fut,
            Fut: Future<Output = X>,
            X: StoreFixture,
        {
            $(
                {
                    let fixture = make().await;
                    checks::$name(fixture.store()).await;
                }
            )*
            run_all_pairs(make).await;
        }
    };
}

/// Emits `run_all_pairs`.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_emit_run_all_pairs {
    ({} $($name:ident),* $(,)?) => {
        /// Runs every two-store check in sequence, each on two fresh stores from `make`.
        pub async fn run_all_pairs<F, Fut, X>(make: F)
        where
            F: Fn() -> Fut,
            Fut: Future<Output = X>,
            X: StoreFixture,
        {
            $(
                {
                    let first = make().await;
                    let second = make().await;
                    pair_checks::$name(first.store(), second.store()).await;
                }
            )*
        }
    };
}

crate::__store_conformance_checks!(__store_conformance_emit_run_all {});
crate::__store_conformance_pair_checks!(__store_conformance_emit_run_all_pairs {});

/// Record builders with every field set to something distinctive.
pub mod fixtures {
    use super::*;

    /// Every byte value, so blob columns are checked for binary safety.
    pub fn blob(seed: u8) -> Vec<u8> {
        (0..=255u8).map(|b| b.wrapping_add(seed)).collect()
    }

    /// A tenant with random ids.
    pub fn tenant(name: &str, account_id: &str) -> TenantRecord {
        TenantRecord {
            id: TenantId::new_random(),
            name: name.to_owned(),
            account_id: account_id.to_owned(),
            default_root_key_id: RootKeyId::new_random(),
            default_system_id: SystemId::new_random(),
            created_at: 1_700_000_000_123,
        }
    }

    /// A derived access key secret (salt and verifier binary, distinct).
    pub fn derived_secret(seed: u8) -> StoredSecret {
        StoredSecret::Derived {
            kind: CredentialKind::SigV4,
            salt: blob(seed)[..16].to_vec(),
            verifier: blob(seed.wrapping_add(100)),
        }
    }

    /// An access key with a derived secret and no operation limit.
    pub fn access_key(id: &str, tenant: Option<TenantId>) -> AccessKeyRecord {
        AccessKeyRecord {
            id: id.to_owned(),
            tenant_id: tenant,
            role: if tenant.is_some() {
                Role::KeyUser
            } else {
                Role::SystemAdmin
            },
            system_id: tenant.map(|_| SystemId::new_random()),
            secret: derived_secret(7),
            operations: None,
            description: format!("key {id} — ünïcødé"),
            enabled: true,
            created_at: 1_700_000_000_456,
        }
    }

    /// A root key.
    pub fn root_key(tenant: Option<TenantId>, created_at: UnixMillis) -> RootKeyRecord {
        RootKeyRecord {
            id: RootKeyId::new_random(),
            tenant_id: tenant,
            keystore: "software".to_owned(),
            handle: blob(3),
            origin: RootKeyOrigin::Generated,
            lifecycle: Lifecycle::stored(KeyState::Active),
            description: "root".to_owned(),
            created_at,
        }
    }

    /// A system.
    pub fn system(tenant: TenantId, name: &str) -> SystemRecord {
        SystemRecord {
            id: SystemId::new_random(),
            tenant_id: tenant,
            name: name.to_owned(),
            kind: "kubernetes".to_owned(),
            description: format!("system {name}"),
            region: "eu-west-1".to_owned(),
            labels: [("team".to_owned(), name.to_owned())].into(),
            active_key_version: 1,
            created_at: 1_700_000_000_789,
        }
    }

    /// A system key version.
    pub fn system_key(system: SystemId, version: u32) -> SystemKeyRecord {
        SystemKeyRecord {
            system_id: system,
            version,
            root_key_id: RootKeyId::new_random(),
            wrapped: blob(version as u8),
            lifecycle: Lifecycle::stored(KeyState::Active),
            created_at: 1_700_000_001_000 + i64::from(version),
        }
    }

    /// An active service key without deletion date, rotation or tags.
    pub fn service_key(tenant: TenantId) -> ServiceKeyRecord {
        ServiceKeyRecord {
            id: KeyId::new_random(),
            tenant_id: tenant,
            system_id: SystemId::new_random(),
            description: String::new(),
            usage: KeyUsage::EncryptDecrypt,
            spec: KeySpec::SymmetricDefault,
            origin: KeyOrigin::AwsKms,
            lifecycle: Lifecycle::stored(KeyState::Active),
            created_at: 1_700_000_002_000,
            deletion_at: None,
            rotation: None,
            primary_version: 1,
            tags: BTreeMap::new(),
            policy: None,
            import_check: None,
            material_expires_at: None,
        }
    }

    /// A service key with every optional field set.
    pub fn full_service_key(tenant: TenantId) -> ServiceKeyRecord {
        let mut tags = BTreeMap::new();
        tags.insert("env".to_owned(), "prod".to_owned());
        tags.insert("owner".to_owned(), "team \"a\" / ü".to_owned());
        tags.insert("empty".to_owned(), String::new());
        ServiceKeyRecord {
            description: "all fields".to_owned(),
            lifecycle: Lifecycle::stored(KeyState::PendingDeletion),
            deletion_at: Some(1_800_000_000_000),
            rotation: Some(RotationSchedule {
                period_days: 365,
                next_rotation_at: 1_750_000_000_000,
            }),
            primary_version: 3,
            tags,
            policy: Some(policy_document()),
            origin: KeyOrigin::External,
            import_check: Some("5f".repeat(32)),
            material_expires_at: Some(1_790_000_000_000),
            ..service_key(tenant)
        }
    }

    /// A key version.
    pub fn key_version(key: KeyId, version: u32, origin: VersionOrigin) -> KeyVersionRecord {
        KeyVersionRecord {
            key_id: key,
            version,
            system_key_version: version + 10,
            wrapped: blob(version as u8 + 100),
            origin,
            created_at: 1_700_000_003_000 + i64::from(version),
            // Imported material's check on even versions: both forms round-trip.
            import_check: version
                .is_multiple_of(2)
                .then(|| format!("{version:02x}").repeat(32)),
        }
    }

    /// A key policy document (not parsed by the store; quotes and non-ASCII included).
    pub fn policy_document() -> String {
        r#"{"Version":"kcm-2026-11","Statement":[{"Sid":"apps — ü","Effect":"Allow","Principal":["KCMAPPAAAAAAAAAAAAAA","role:key-admin"],"Action":["Encrypt","kms:Decrypt"]}]}"#
            .to_owned()
    }

    /// A grant with every optional field set and several operations.
    pub fn grant(tenant: TenantId, key: KeyId, id: &str, created_at: UnixMillis) -> GrantRecord {
        GrantRecord {
            id: id.to_owned(),
            tenant_id: tenant,
            key_id: key,
            grantee: "KCMGRANTEE0000000001".to_owned(),
            retiring_principal: Some("KCMRETIRER0000000001".to_owned()),
            operations: [Op::Encrypt, Op::Decrypt, Op::RetireGrant]
                .into_iter()
                .collect(),
            name: Some("grant — ü, \"quoted\"".to_owned()),
            issuing_principal: "KCMISSUER00000000001".to_owned(),
            created_at,
            constraints: GrantConstraints {
                encryption_context_equals: Some(
                    [("App".to_owned(), "orders — ü".to_owned())].into(),
                ),
                encryption_context_subset: Some(
                    [
                        ("a".to_owned(), "1".to_owned()),
                        ("b".to_owned(), String::new()),
                    ]
                    .into(),
                ),
            },
        }
    }

    /// An audit record of `chain` with every optional field set. `seq` sets its
    /// time and request id; its `seq`, `prev_hash` and `hash` are placeholders,
    /// which [`Store::append_audit`] replaces when it links the record.
    pub fn audit_record(chain: AuditChain, seq: u64) -> AuditRecord {
        AuditRecord {
            seq,
            time: 1_700_000_010_000 + seq as i64 * 1000,
            tenant: chain,
            principal: "KCMPRINCIPAL00000001".to_owned(),
            role: Some(Role::KeyUser),
            front_door: "aws".to_owned(),
            operation: "Decrypt".to_owned(),
            keys: vec![
                AuditKey {
                    id: KeyId::new_random(),
                    version: Some(3),
                    compromised: false,
                },
                AuditKey {
                    id: KeyId::new_random(),
                    version: None,
                    compromised: true,
                },
            ],
            system: Some(SystemId::new_random()),
            outcome: AuditOutcome::Denied,
            error: Some("AccessDeniedException: ü, \"quoted\"".to_owned()),
            request_id: format!("req-{seq}"),
            source: Some("192.0.2.7:4431".to_owned()),
            client_request_id: Some("6b0c1c6e-uid".to_owned()),
            detail: Some(
                [
                    (
                        "awsPrincipalArn",
                        "arn:aws:iam::123456789012:role/ünïcødé \"x\"",
                    ),
                    ("kmsOperation", "GenerateDataKey"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ),
            prev_hash: format!("{:064x}", seq.saturating_sub(1)),
            hash: format!("{seq:064x}"),
        }
    }

    /// An audit record of `chain` with every optional field unset (see
    /// [`audit_record`] for what `seq` means).
    pub fn bare_audit_record(chain: AuditChain, seq: u64) -> AuditRecord {
        AuditRecord {
            role: None,
            keys: vec![],
            system: None,
            outcome: AuditOutcome::Success,
            error: None,
            source: None,
            client_request_id: None,
            ..audit_record(chain, seq)
        }
    }

    /// An audit checkpoint of `chain` at `seq`.
    pub fn audit_checkpoint(chain: AuditChain, seq: u64) -> AuditCheckpoint {
        AuditCheckpoint {
            tenant: chain,
            seq,
            hash: format!("{seq:064x}"),
            time: 1_700_000_020_000 + seq as i64,
            signature: "ab".repeat(64),
        }
    }

    /// A managed object of `system` with a payload (every byte value) and every
    /// attribute set (quotes, non-ASCII and control characters in the JSON).
    pub fn managed_object(
        tenant: TenantId,
        system: SystemId,
        created_at: UnixMillis,
    ) -> ManagedObjectRecord {
        ManagedObjectRecord {
            id: ObjectId::new_random(),
            tenant_id: tenant,
            system_id: system,
            kind: ObjectKind::SymmetricKey,
            lifecycle: Lifecycle::stored(KeyState::Active),
            attributes: ObjectAttributes {
                name: "secret — ü, \"quoted\"\n\t".to_owned(),
                algorithm: Some("aes".to_owned()),
                bit_length: Some(256),
                mode: Some("cbc".to_owned()),
                content_type: Some("application/octet-stream".to_owned()),
                subtype: Some("generic".to_owned()),
                expiration: Some(1_800_000_000_000),
                metadata: [
                    ("owner".to_owned(), "team \"a\" / ü".to_owned()),
                    ("empty".to_owned(), String::new()),
                ]
                .into(),
                links: vec![ObjectLink {
                    name: "private_key".to_owned(),
                    object: ObjectId::new_random(),
                }],
                creator: "keystone:user-1".to_owned(),
                acl: ObjectAcl {
                    project_access: false,
                    users: vec![
                        "keystone:user-2".to_owned(),
                        "KCMREADER00000000001".to_owned(),
                    ],
                },
                consumers: vec![ObjectConsumer {
                    service: "image".to_owned(),
                    resource_type: "image".to_owned(),
                    resource_id: "6f0c-ü".to_owned(),
                }],
            },
            payload: Some(SealedPayload {
                system_key_version: 2,
                sealed: blob(11),
            }),
            created_at,
            updated_at: created_at + 500,
        }
    }

    /// A managed object of `system` awaiting its payload: none, and every attribute
    /// at its default.
    pub fn bare_managed_object(
        tenant: TenantId,
        system: SystemId,
        created_at: UnixMillis,
    ) -> ManagedObjectRecord {
        ManagedObjectRecord {
            kind: ObjectKind::OpaqueData,
            lifecycle: Lifecycle::stored(KeyState::PreActive),
            attributes: ObjectAttributes::default(),
            payload: None,
            updated_at: created_at,
            ..managed_object(tenant, system, created_at)
        }
    }

    /// An alias.
    pub fn alias(tenant: TenantId, name: &str, key: KeyId) -> AliasRecord {
        AliasRecord {
            tenant_id: tenant,
            name: name.to_owned(),
            key_id: key,
            created_at: 1_700_000_004_000,
            updated_at: 1_700_000_004_500,
        }
    }
}

/// Commits, panicking with context on failure.
async fn ok(store: &dyn Store, writes: Vec<Write>) {
    if let Err(e) = store.commit(writes).await {
        panic!("commit failed: {e}");
    }
}

/// Commits, asserting the result is [`StoreError::Conflict`].
async fn conflict(store: &dyn Store, writes: Vec<Write>, what: &str) {
    match store.commit(writes).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

/// One `make` write per record, in the order given.
fn puts<'a, T: Clone + 'a>(
    make: fn(T) -> Write,
    records: impl IntoIterator<Item = &'a T>,
) -> Vec<Write> {
    records.into_iter().cloned().map(make).collect()
}

/// What each audit chain of the store under test must hold, worked out apart from
/// the store: [`Chains::append`] appends through [`Store::append_audit`] and returns
/// the records linked by the core's own
/// [`link_all`](kcm_core::audit::hash::link_all) after the tails of the records
/// appended before, which is what the store must now hold.
#[derive(Default)]
struct Chains {
    tails: HashMap<AuditChain, (u64, String)>,
}

impl Chains {
    /// Appends `records` (whatever `seq` and hashes they carry) and returns them as
    /// stored: each linked after its chain's last record. Checks that the store left
    /// the batch as it committed it (the audit writer relies on that).
    async fn append(&mut self, store: &dyn Store, records: Vec<AuditRecord>) -> Vec<AuditRecord> {
        let mut linked = records.clone();
        kcm_core::audit::hash::link_all(&mut linked, self.tails.clone());
        for r in &linked {
            self.tails.insert(r.tenant, (r.seq, r.hash.clone()));
        }
        let mut batch = records;
        if let Err(e) = store.append_audit(&mut batch).await {
            panic!("append_audit failed: {e}");
        }
        assert_eq!(
            batch, linked,
            "append_audit leaves the batch as it was committed"
        );
        linked
    }
}

/// Asserts that a new record taking a name in use (`new`) and a record renamed onto
/// one (`renamed`) are both conflicts.
async fn taken_name_conflicts(store: &dyn Store, new: Write, renamed: Write) {
    conflict(store, vec![new], "new record, taken name").await;
    conflict(store, vec![renamed], "rename onto a taken name").await;
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// The individual checks; each expects an empty store.
pub mod checks {
    use super::fixtures::*;
    use super::*;

    /// `ping` answers on a healthy store.
    pub async fn ping_succeeds(store: &dyn Store) {
        store.ping().await.expect("ping");
    }

    /// An empty batch is a no-op that succeeds.
    pub async fn empty_commit_succeeds(store: &dyn Store) {
        ok(store, vec![]).await;
        assert!(store.tenants().await.unwrap().is_empty());
    }

    /// Meta settings: missing → `None`, put, overwrite.
    pub async fn meta_round_trip(store: &dyn Store) {
        assert_eq!(store.meta("k").await.unwrap(), None);
        let put = |v: &str| Write::PutMeta {
            key: "k".into(),
            value: v.into(),
        };
        ok(store, vec![put("v1")]).await;
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v1"));
        ok(store, vec![put("v2 — ü")]).await;
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v2 — ü"));
        assert_eq!(store.meta("other").await.unwrap(), None);
    }

    /// A store says in two places whether several nodes share it (`Store` docs):
    /// `lock_changes` and `changes` are both `None` for a store only one node uses,
    /// and both present for a shared one; the two must agree.
    ///
    /// A single-node store has no change lock (the node's own lock is enough there,
    /// and `kcm-core`'s service tests check that it serialises changes): asking for
    /// one answers `None` at once, every time, also while another caller asks. A
    /// shared store's lock commits like `commit` (a conflict included, which leaves
    /// the lock usable) and is given up when dropped, so it can be taken again at once.
    pub async fn change_lock_commits_and_is_given_up(store: &dyn Store) {
        // Not a timing assertion: a bound generous enough for a loaded machine, so
        // that a lock which is never given up fails the check instead of hanging it.
        const BOUND: std::time::Duration = std::time::Duration::from_secs(10);
        let lock = tokio::time::timeout(BOUND, store.lock_changes())
            .await
            .expect("lock_changes answers")
            .expect("lock_changes");
        assert_eq!(
            lock.is_some(),
            store.changes().is_some(),
            "lock_changes and changes disagree on whether the store is shared"
        );
        let Some(mut lock) = lock else {
            // Single-node: no lock is held, so asking again (twice at once) answers
            // `None` again rather than waiting, and commits go straight to the store.
            let (a, b) = tokio::time::timeout(BOUND, async {
                tokio::join!(store.lock_changes(), store.lock_changes())
            })
            .await
            .expect("a single-node store's lock_changes never waits");
            assert!(a.expect("lock_changes").is_none());
            assert!(b.expect("lock_changes").is_none());
            assert!(store.changes().is_none());
            ok(
                store,
                vec![Write::InsertMeta {
                    key: "unlocked".into(),
                    value: "v1".into(),
                }],
            )
            .await;
            assert_eq!(store.meta("unlocked").await.unwrap().as_deref(), Some("v1"));
            return;
        };
        let insert = |v: &str| Write::InsertMeta {
            key: "locked".into(),
            value: v.into(),
        };
        lock.commit(vec![]).await.expect("an empty commit");
        lock.commit(vec![insert("v1")])
            .await
            .expect("commit under the lock");
        assert!(matches!(
            lock.commit(vec![insert("v2")]).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.meta("locked").await.unwrap().as_deref(), Some("v1"));
        drop(lock);
        let again = tokio::time::timeout(BOUND, store.lock_changes())
            .await
            .expect("the lock was given up when dropped");
        assert!(again.expect("lock_changes").is_some());
    }

    /// `ReplaceMeta` changes a setting only from the value it holds: a stale
    /// expectation, or a setting that does not exist, is a conflict that leaves the
    /// setting (and the rest of its batch) unwritten.
    pub async fn replace_meta_is_compare_and_set(store: &dyn Store) {
        let replace = |k: &str, expected: &str, v: &str| Write::ReplaceMeta {
            key: k.into(),
            expected: expected.into(),
            value: v.into(),
        };
        conflict(
            store,
            vec![replace("lease", "", "a")],
            "replacing a missing setting",
        )
        .await;
        assert_eq!(store.meta("lease").await.unwrap(), None);
        ok(
            store,
            vec![Write::InsertMeta {
                key: "lease".into(),
                value: "node-a 1".into(),
            }],
        )
        .await;
        ok(store, vec![replace("lease", "node-a 1", "node-a 2")]).await;
        assert_eq!(
            store.meta("lease").await.unwrap().as_deref(),
            Some("node-a 2")
        );
        // Node B read "node-a 1" before A renewed: its takeover must fail.
        conflict(
            store,
            vec![
                Write::PutMeta {
                    key: "side".into(),
                    value: "x".into(),
                },
                replace("lease", "node-a 1", "node-b 9"),
            ],
            "stale compare-and-set",
        )
        .await;
        assert_eq!(
            store.meta("lease").await.unwrap().as_deref(),
            Some("node-a 2")
        );
        assert_eq!(store.meta("side").await.unwrap(), None);
        // Two takeovers from the same value in one batch: only the first can apply.
        conflict(
            store,
            vec![
                replace("lease", "node-a 2", "node-b 3"),
                replace("lease", "node-a 2", "node-c 3"),
            ],
            "second compare-and-set of a batch",
        )
        .await;
        assert_eq!(
            store.meta("lease").await.unwrap().as_deref(),
            Some("node-a 2")
        );
    }

    /// `InsertMeta` creates a setting once; a second insert is a conflict that
    /// leaves the first value (and the rest of its batch) unwritten.
    pub async fn insert_meta_conflicts(store: &dyn Store) {
        let insert = |k: &str, v: &str| Write::InsertMeta {
            key: k.into(),
            value: v.into(),
        };
        ok(store, vec![insert("k", "v1")]).await;
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v1"));
        conflict(store, vec![insert("k", "v2")], "setting inserted twice").await;
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v1"));
        conflict(
            store,
            vec![insert("fresh", "x"), insert("k", "v3")],
            "batch ending in a taken setting",
        )
        .await;
        assert_eq!(store.meta("fresh").await.unwrap(), None);
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v1"));
        conflict(
            store,
            vec![insert("twice", "a"), insert("twice", "b")],
            "one setting inserted twice in a batch",
        )
        .await;
        assert_eq!(store.meta("twice").await.unwrap(), None);
        // `PutMeta` still overwrites, and a free name can be inserted.
        let put = Write::PutMeta {
            key: "k".into(),
            value: "v4".into(),
        };
        ok(store, vec![put, insert("fresh", "y")]).await;
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v4"));
        assert_eq!(store.meta("fresh").await.unwrap().as_deref(), Some("y"));
    }

    /// Tenants round-trip by id and name, and list by name.
    pub async fn tenant_round_trip(store: &dyn Store) {
        let b = tenant("bravo", "000000000002");
        let a = tenant("alpha", "000000000001");
        ok(
            store,
            vec![Write::PutTenant(b.clone()), Write::PutTenant(a.clone())],
        )
        .await;
        assert_eq!(store.tenant(a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(
            store.tenant_by_name("bravo").await.unwrap(),
            Some(b.clone())
        );
        assert_eq!(store.tenants().await.unwrap(), vec![a, b]);
        assert_eq!(store.tenant(TenantId::new_random()).await.unwrap(), None);
        assert_eq!(store.tenant_by_name("charlie").await.unwrap(), None);
    }

    /// Putting a tenant with an existing id replaces it (including its name).
    pub async fn tenant_upsert_replaces(store: &dyn Store) {
        let t = tenant("old", "000000000001");
        ok(store, vec![Write::PutTenant(t.clone())]).await;
        let renamed = TenantRecord {
            name: "new".into(),
            account_id: "000000000009".into(),
            default_root_key_id: RootKeyId::new_random(),
            created_at: t.created_at + 1,
            ..t.clone()
        };
        ok(store, vec![Write::PutTenant(renamed.clone())]).await;
        assert_eq!(store.tenant(t.id).await.unwrap(), Some(renamed.clone()));
        assert_eq!(store.tenant_by_name("old").await.unwrap(), None);
        assert_eq!(store.tenants().await.unwrap(), vec![renamed]);
    }

    /// A second tenant with a taken name (new or renamed) is a conflict.
    pub async fn tenant_name_is_unique(store: &dyn Store) {
        let a = tenant("alpha", "000000000001");
        let b = tenant("bravo", "000000000002");
        ok(
            store,
            vec![Write::PutTenant(a.clone()), Write::PutTenant(b.clone())],
        )
        .await;
        let dup = tenant("alpha", "000000000003");
        let rename = TenantRecord {
            name: "alpha".into(),
            ..b.clone()
        };
        let (dup_write, rename_write) = (Write::PutTenant(dup.clone()), Write::PutTenant(rename));
        taken_name_conflicts(store, dup_write, rename_write).await;
        assert_eq!(store.tenant(dup.id).await.unwrap(), None);
        assert_eq!(store.tenants().await.unwrap(), vec![a, b]);
    }

    /// A second tenant with a taken account id is a conflict.
    pub async fn tenant_account_id_is_unique(store: &dyn Store) {
        let a = tenant("alpha", "000000000001");
        ok(store, vec![Write::PutTenant(a.clone())]).await;
        let dup = tenant("bravo", "000000000001");
        conflict(
            store,
            vec![Write::PutTenant(dup.clone())],
            "taken account id",
        )
        .await;
        assert_eq!(store.tenants().await.unwrap(), vec![a]);
    }

    /// Access keys round-trip with optional fields set and unset.
    pub async fn access_key_round_trip(store: &dyn Store) {
        let t = TenantId::new_random();
        let tenant_key = access_key("KCMTENANT00000000001", Some(t));
        let operator_key = AccessKeyRecord {
            enabled: false,
            description: String::new(),
            secret: StoredSecret::Sealed(vec![]),
            ..access_key("KCMOPERATOR000000001", None)
        };
        assert!(tenant_key.system_id.is_some() && operator_key.system_id.is_none());
        ok(
            store,
            vec![
                Write::PutAccessKey(tenant_key.clone()),
                Write::PutAccessKey(operator_key.clone()),
            ],
        )
        .await;
        assert_eq!(
            store.access_key(&tenant_key.id).await.unwrap(),
            Some(tenant_key)
        );
        assert_eq!(
            store.access_key(&operator_key.id).await.unwrap(),
            Some(operator_key)
        );
        assert_eq!(
            store.access_key("KCMMISSING0000000000").await.unwrap(),
            None
        );
        for role in ALL_ROLES {
            let k = AccessKeyRecord {
                role,
                ..access_key(&format!("KCMROLE-{role}"), Some(t))
            };
            ok(store, vec![Write::PutAccessKey(k.clone())]).await;
            assert_eq!(store.access_key(&k.id).await.unwrap(), Some(k));
        }
    }

    /// `access_keys(None)` lists the operator's keys, `Some(t)` only t's, by id.
    pub async fn access_keys_are_listed_per_owner(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let keys = [
            access_key("KCMC", Some(t1)),
            access_key("KCMA", Some(t1)),
            access_key("KCMB", Some(t2)),
            access_key("KCMZ", None),
            access_key("KCMY", None),
        ];
        ok(store, puts(Write::PutAccessKey, &keys)).await;
        let ids = |v: Vec<AccessKeyRecord>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.access_keys(Some(t1)).await.unwrap()),
            ["KCMA", "KCMC"]
        );
        assert_eq!(ids(store.access_keys(Some(t2)).await.unwrap()), ["KCMB"]);
        assert_eq!(
            ids(store.access_keys(None).await.unwrap()),
            ["KCMY", "KCMZ"]
        );
        let none = store.access_keys(Some(TenantId::new_random())).await;
        assert!(none.unwrap().is_empty());
    }

    /// Putting an access key again replaces it; deleting removes it.
    pub async fn access_key_upsert_and_delete(store: &dyn Store) {
        let t = TenantId::new_random();
        let k = access_key("KCMKEY", Some(t));
        let other = access_key("KCMOTHER", Some(t));
        ok(
            store,
            vec![
                Write::PutAccessKey(k.clone()),
                Write::PutAccessKey(other.clone()),
            ],
        )
        .await;
        let changed = AccessKeyRecord {
            enabled: false,
            role: Role::Auditor,
            system_id: None,
            description: "changed".into(),
            ..k.clone()
        };
        ok(store, vec![Write::PutAccessKey(changed.clone())]).await;
        assert_eq!(store.access_key("KCMKEY").await.unwrap(), Some(changed));
        ok(store, vec![Write::DeleteAccessKey("KCMKEY".into())]).await;
        assert_eq!(store.access_key("KCMKEY").await.unwrap(), None);
        assert_eq!(store.access_keys(Some(t)).await.unwrap(), vec![other]);
    }

    /// Both forms of a stored secret round-trip (binary-safe), a derived one with
    /// its kind, and an upsert can switch a key from one form to the other.
    pub async fn access_key_secret_forms_round_trip(store: &dyn Store) {
        let t = TenantId::new_random();
        let derived = access_key("KCMDERIVED0000000001", Some(t));
        assert!(matches!(derived.secret, StoredSecret::Derived { .. }));
        let sealed = AccessKeyRecord {
            secret: StoredSecret::Sealed(blob(42)),
            ..access_key("KCMSEALED00000000001", Some(t))
        };
        let empty_salt = AccessKeyRecord {
            secret: StoredSecret::Derived {
                kind: CredentialKind::SigV4,
                salt: vec![],
                verifier: vec![0; 32],
            },
            ..access_key("KCMEMPTYSALT00000001", None)
        };
        let xks = AccessKeyRecord {
            secret: StoredSecret::Derived {
                kind: CredentialKind::Xks,
                salt: vec![7; 16],
                verifier: vec![8; 32],
            },
            ..access_key("KCMXKSKEY00000000001", None)
        };
        let vault = AccessKeyRecord {
            secret: StoredSecret::Derived {
                kind: CredentialKind::Vault,
                salt: vec![9; 16],
                verifier: vec![10; 32],
            },
            ..access_key("KCMVAULTTOKEN0000001", None)
        };
        let keys = [&derived, &sealed, &empty_salt, &xks, &vault];
        ok(store, puts(Write::PutAccessKey, keys)).await;
        for k in keys {
            assert_eq!(store.access_key(&k.id).await.unwrap().as_ref(), Some(k));
        }
        assert_eq!(
            store.access_keys(Some(t)).await.unwrap(),
            vec![derived.clone(), sealed.clone()]
        );
        let now_sealed = AccessKeyRecord {
            secret: StoredSecret::Sealed(blob(1)),
            ..derived.clone()
        };
        ok(store, vec![Write::PutAccessKey(now_sealed.clone())]).await;
        assert_eq!(
            store.access_key(&derived.id).await.unwrap(),
            Some(now_sealed)
        );
        let now_derived = AccessKeyRecord {
            secret: derived_secret(9),
            ..sealed.clone()
        };
        ok(store, vec![Write::PutAccessKey(now_derived.clone())]).await;
        assert_eq!(
            store.access_key(&sealed.id).await.unwrap(),
            Some(now_derived)
        );
    }

    /// An access key's operation limit round-trips: none, one, several (in order),
    /// and an empty list; an upsert can set and clear it.
    pub async fn access_key_operations_round_trip(store: &dyn Store) {
        let t = TenantId::new_random();
        let limited = |id: &str, ops: Option<&[&str]>| AccessKeyRecord {
            operations: ops.map(|ops| ops.iter().map(|s| (*s).to_owned()).collect()),
            ..access_key(id, Some(t))
        };
        let all_ops: Vec<&str> = ALL_OPS.iter().map(|op| op.as_str()).collect();
        let keys = [
            limited("KCMOPSNONE0000000001", None),
            limited("KCMOPSONE00000000001", Some(&["Encrypt"])),
            limited(
                "KCMOPSMANY0000000001",
                Some(&["GenerateDataKey", "Decrypt", "Encrypt"]),
            ),
            limited("KCMOPSALL00000000001", Some(&all_ops)),
            limited("KCMOPSEMPTY000000001", Some(&[])),
        ];
        ok(store, puts(Write::PutAccessKey, &keys)).await;
        for k in &keys {
            assert_eq!(store.access_key(&k.id).await.unwrap().as_ref(), Some(k));
        }
        let cleared = AccessKeyRecord {
            operations: None,
            ..keys[2].clone()
        };
        ok(store, vec![Write::PutAccessKey(cleared.clone())]).await;
        assert_eq!(store.access_key(&cleared.id).await.unwrap(), Some(cleared));
        let set = AccessKeyRecord {
            operations: Some(vec!["DescribeKey".into()]),
            ..keys[0].clone()
        };
        ok(store, vec![Write::PutAccessKey(set.clone())]).await;
        assert_eq!(store.access_key(&set.id).await.unwrap(), Some(set));
    }

    /// Root keys round-trip with every origin and state.
    pub async fn root_key_round_trip(store: &dyn Store) {
        let t = TenantId::new_random();
        let origins = [
            RootKeyOrigin::Generated,
            RootKeyOrigin::Imported,
            RootKeyOrigin::External,
        ];
        for (i, state) in ALL_STATES.into_iter().enumerate() {
            let k = RootKeyRecord {
                origin: origins[i % origins.len()],
                lifecycle: Lifecycle::stored(state),
                tenant_id: (i % 2 == 0).then_some(t),
                ..root_key(None, i as i64)
            };
            ok(store, vec![Write::PutRootKey(k.clone())]).await;
            assert_eq!(store.root_key(k.id).await.unwrap(), Some(k.clone()));
            let replaced = RootKeyRecord {
                lifecycle: Lifecycle::stored(KeyState::Disabled),
                description: "replaced".into(),
                ..k.clone()
            };
            ok(store, vec![Write::PutRootKey(replaced.clone())]).await;
            assert_eq!(store.root_key(k.id).await.unwrap(), Some(replaced));
        }
        assert_eq!(store.root_key(RootKeyId::new_random()).await.unwrap(), None);
    }

    /// `root_keys(None)` lists the service's roots, `Some(t)` only t's, by creation.
    pub async fn root_keys_are_listed_per_owner(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let late = root_key(Some(t1), 300);
        let early = root_key(Some(t1), 100);
        let other = root_key(Some(t2), 200);
        let service = root_key(None, 50);
        ok(
            store,
            puts(Write::PutRootKey, [&late, &early, &other, &service]),
        )
        .await;
        assert_eq!(store.root_keys(Some(t1)).await.unwrap(), vec![early, late]);
        assert_eq!(store.root_keys(Some(t2)).await.unwrap(), vec![other]);
        assert_eq!(store.root_keys(None).await.unwrap(), vec![service]);
    }

    /// Systems round-trip by id and by (tenant, name), list by name per tenant.
    pub async fn system_round_trip(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let zulu = system(t1, "zulu");
        let alpha = system(t1, "alpha");
        let foreign = system(t2, "alpha");
        ok(store, puts(Write::PutSystem, [&zulu, &alpha, &foreign])).await;
        assert_eq!(store.system(zulu.id).await.unwrap(), Some(zulu.clone()));
        assert_eq!(
            store.system_by_name(t1, "alpha").await.unwrap(),
            Some(alpha.clone())
        );
        assert_eq!(
            store.system_by_name(t2, "alpha").await.unwrap(),
            Some(foreign.clone())
        );
        assert_eq!(store.system_by_name(t2, "zulu").await.unwrap(), None);
        assert_eq!(store.systems(t1).await.unwrap(), vec![alpha, zulu.clone()]);
        assert_eq!(store.systems(t2).await.unwrap(), vec![foreign]);
        assert_eq!(store.system(SystemId::new_random()).await.unwrap(), None);
        let bumped = SystemRecord {
            active_key_version: 2,
            name: "yankee".into(),
            ..zulu.clone()
        };
        ok(store, vec![Write::PutSystem(bumped.clone())]).await;
        assert_eq!(store.system(zulu.id).await.unwrap(), Some(bumped));
        assert_eq!(store.system_by_name(t1, "zulu").await.unwrap(), None);
    }

    /// A system name is unique within its tenant only.
    pub async fn system_name_is_unique_within_tenant(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let a = system(t1, "default");
        let b = system(t1, "other");
        ok(
            store,
            vec![Write::PutSystem(a.clone()), Write::PutSystem(b.clone())],
        )
        .await;
        let dup = system(t1, "default");
        let rename = SystemRecord {
            name: "default".into(),
            ..b.clone()
        };
        let (dup_write, rename_write) = (Write::PutSystem(dup.clone()), Write::PutSystem(rename));
        taken_name_conflicts(store, dup_write, rename_write).await;
        assert_eq!(store.system(dup.id).await.unwrap(), None);
        assert_eq!(store.systems(t1).await.unwrap(), vec![a, b]);
        ok(store, vec![Write::PutSystem(system(t2, "default"))]).await;
    }

    /// System key versions round-trip and replace by (system, version).
    pub async fn system_key_round_trip(store: &dyn Store) {
        let s = SystemId::new_random();
        let v1 = system_key(s, 1);
        let v2 = system_key(s, 2);
        let other = system_key(SystemId::new_random(), 1);
        ok(store, puts(Write::PutSystemKey, [&v1, &v2, &other])).await;
        assert_eq!(store.system_key(s, 1).await.unwrap(), Some(v1.clone()));
        assert_eq!(store.system_key(s, 2).await.unwrap(), Some(v2));
        assert_eq!(store.system_key(s, 3).await.unwrap(), None);
        assert_eq!(
            store.system_key(other.system_id, 1).await.unwrap(),
            Some(other)
        );
        let suspended = SystemKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::Suspended),
            wrapped: vec![0],
            ..v1
        };
        ok(store, vec![Write::PutSystemKey(suspended.clone())]).await;
        assert_eq!(store.system_key(s, 1).await.unwrap(), Some(suspended));
    }

    /// Service keys round-trip with optional fields unset and set (tags, rotation).
    pub async fn service_key_round_trip(store: &dyn Store) {
        let t = TenantId::new_random();
        let bare = service_key(t);
        let full = full_service_key(t);
        ok(
            store,
            vec![
                Write::PutServiceKey(bare.clone()),
                Write::PutServiceKey(full.clone()),
            ],
        )
        .await;
        assert_eq!(store.service_key(bare.id).await.unwrap(), Some(bare));
        assert_eq!(store.service_key(full.id).await.unwrap(), Some(full));
        assert_eq!(store.service_key(KeyId::new_random()).await.unwrap(), None);
        for state in ALL_STATES {
            let k = ServiceKeyRecord {
                lifecycle: Lifecycle::stored(state),
                ..service_key(t)
            };
            ok(store, vec![Write::PutServiceKey(k.clone())]).await;
            assert_eq!(store.service_key(k.id).await.unwrap(), Some(k));
        }
    }

    /// Putting a service key again replaces every field, including clearing options.
    pub async fn service_key_upsert_replaces(store: &dyn Store) {
        let t = TenantId::new_random();
        let full = full_service_key(t);
        ok(store, vec![Write::PutServiceKey(full.clone())]).await;
        let cleared = ServiceKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::Active),
            deletion_at: None,
            rotation: None,
            tags: BTreeMap::new(),
            primary_version: 4,
            ..full.clone()
        };
        ok(store, vec![Write::PutServiceKey(cleared.clone())]).await;
        assert_eq!(
            store.service_key(full.id).await.unwrap(),
            Some(cleared.clone())
        );
        ok(store, vec![Write::PutServiceKey(full.clone())]).await;
        assert_eq!(store.service_key(full.id).await.unwrap(), Some(full));
        assert_eq!(store.service_keys(t, None, 10).await.unwrap().len(), 1);
    }

    /// A key policy round-trips as written; an upsert sets, replaces and clears it.
    pub async fn service_key_policy_round_trip(store: &dyn Store) {
        let t = TenantId::new_random();
        let bare = service_key(t);
        let with_policy = ServiceKeyRecord {
            policy: Some(policy_document()),
            ..service_key(t)
        };
        assert!(bare.policy.is_none());
        ok(
            store,
            vec![
                Write::PutServiceKey(bare.clone()),
                Write::PutServiceKey(with_policy.clone()),
            ],
        )
        .await;
        assert_eq!(
            store.service_key(bare.id).await.unwrap(),
            Some(bare.clone())
        );
        assert_eq!(
            store.service_key(with_policy.id).await.unwrap(),
            Some(with_policy.clone())
        );
        let replaced = ServiceKeyRecord {
            policy: Some(format!("{}\n", policy_document().replace("Allow", "Deny"))),
            ..with_policy.clone()
        };
        ok(store, vec![Write::PutServiceKey(replaced.clone())]).await;
        assert_eq!(
            store.service_key(with_policy.id).await.unwrap(),
            Some(replaced)
        );
        let cleared = ServiceKeyRecord {
            policy: None,
            ..with_policy.clone()
        };
        ok(store, vec![Write::PutServiceKey(cleared.clone())]).await;
        assert_eq!(
            store.service_key(with_policy.id).await.unwrap(),
            Some(cleared)
        );
        let set = ServiceKeyRecord {
            policy: Some(policy_document()),
            ..bare.clone()
        };
        ok(store, vec![Write::PutServiceKey(set.clone())]).await;
        assert_eq!(store.service_keys(t, None, 10).await.unwrap().len(), 2);
        assert_eq!(store.service_key(bare.id).await.unwrap(), Some(set));
    }

    /// `service_keys` pages by id: `after` is exclusive, `limit` caps the page.
    pub async fn service_keys_page_by_id(store: &dyn Store) {
        let t = TenantId::new_random();
        let keys: Vec<_> = (0..7).map(|_| service_key(t)).collect();
        ok(store, puts(Write::PutServiceKey, &keys)).await;
        let expected = sorted(keys.iter().map(|k| k.id).collect());
        let all = store.service_keys(t, None, 100).await.unwrap();
        assert_eq!(all.iter().map(|k| k.id).collect::<Vec<_>>(), expected);
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..=expected.len() {
            let page = store.service_keys(t, after, 3).await.unwrap();
            assert!(page.len() <= 3, "page larger than limit");
            let Some(last) = page.last() else { break };
            assert!(
                after.is_none_or(|a| page[0].id > a),
                "`after` must be exclusive"
            );
            after = Some(last.id);
            seen.extend(page.iter().map(|k| k.id));
        }
        assert_eq!(seen, expected);
        assert_eq!(store.service_keys(t, None, 2).await.unwrap().len(), 2);
        let from_mid = store.service_keys(t, Some(expected[3]), 100).await.unwrap();
        assert_eq!(
            from_mid.iter().map(|k| k.id).collect::<Vec<_>>(),
            expected[4..]
        );
        // `after` need not be an existing key.
        let unknown = KeyId::new_random();
        let rest = store.service_keys(t, Some(unknown), 100).await.unwrap();
        let want: Vec<_> = expected
            .iter()
            .copied()
            .filter(|id| *id > unknown)
            .collect();
        assert_eq!(rest.iter().map(|k| k.id).collect::<Vec<_>>(), want);
        assert!(store.service_keys(t, None, 0).await.unwrap().is_empty());
    }

    /// `service_keys` never returns another tenant's keys.
    pub async fn service_keys_are_tenant_isolated(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let mine: Vec<_> = (0..3).map(|_| service_key(t1)).collect();
        let theirs: Vec<_> = (0..3).map(|_| service_key(t2)).collect();
        let writes = mine
            .iter()
            .chain(&theirs)
            .cloned()
            .map(Write::PutServiceKey);
        ok(store, writes.collect()).await;
        let got = store.service_keys(t1, None, 100).await.unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|k| k.tenant_id == t1));
        let empty = store.service_keys(TenantId::new_random(), None, 100).await;
        assert!(empty.unwrap().is_empty());
    }

    /// Key versions round-trip with every origin, list by version, replace by (key, version).
    pub async fn key_versions_round_trip(store: &dyn Store) {
        let k = KeyId::new_random();
        let v3 = key_version(k, 3, VersionOrigin::OnDemandRotation);
        let v1 = key_version(k, 1, VersionOrigin::Creation);
        let v2 = key_version(k, 2, VersionOrigin::AutomaticRotation);
        let other = key_version(KeyId::new_random(), 1, VersionOrigin::Creation);
        ok(store, puts(Write::PutKeyVersion, [&v3, &v1, &v2, &other])).await;
        assert_eq!(
            store.key_versions(k).await.unwrap(),
            vec![v1, v2.clone(), v3.clone()]
        );
        let rewrapped = KeyVersionRecord {
            system_key_version: 99,
            wrapped: vec![1, 2, 3],
            ..v2.clone()
        };
        ok(store, vec![Write::PutKeyVersion(rewrapped.clone())]).await;
        assert_eq!(store.key_versions(k).await.unwrap()[1], rewrapped);
        assert_eq!(store.key_versions(k).await.unwrap().len(), 3);
        assert!(store
            .key_versions(KeyId::new_random())
            .await
            .unwrap()
            .is_empty());
    }

    /// `DeleteKeyVersion` erases one version of one key, `DeleteKeyVersions` every
    /// version of one key, and nothing else.
    pub async fn delete_key_versions_erases_one_key(store: &dyn Store) {
        let t = TenantId::new_random();
        let (doomed, kept) = (service_key(t), service_key(t));
        let mut writes = vec![
            Write::PutServiceKey(doomed.clone()),
            Write::PutServiceKey(kept.clone()),
        ];
        for v in 1..=3 {
            writes.push(Write::PutKeyVersion(key_version(
                doomed.id,
                v,
                VersionOrigin::Creation,
            )));
            writes.push(Write::PutKeyVersion(key_version(
                kept.id,
                v,
                VersionOrigin::Creation,
            )));
        }
        ok(store, writes).await;
        // One version of one key: the others stay.
        ok(
            store,
            vec![Write::DeleteKeyVersion {
                key: doomed.id,
                version: 2,
            }],
        )
        .await;
        let left: Vec<u32> = store
            .key_versions(doomed.id)
            .await
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(left, [1, 3]);
        assert_eq!(store.key_versions(kept.id).await.unwrap().len(), 3);
        ok(store, vec![Write::DeleteKeyVersions(doomed.id)]).await;
        assert!(store.key_versions(doomed.id).await.unwrap().is_empty());
        assert_eq!(store.key_versions(kept.id).await.unwrap().len(), 3);
        assert_eq!(store.service_key(doomed.id).await.unwrap(), Some(doomed));
    }

    /// Only pending-deletion keys whose `deletion_at` is at or before `now` are due.
    pub async fn keys_due_for_deletion(store: &dyn Store) {
        let t = TenantId::new_random();
        let now = 1_800_000_000_000;
        let pending = |at| ServiceKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::PendingDeletion),
            deletion_at: Some(at),
            ..service_key(t)
        };
        let past = pending(now - 1);
        let exact = pending(now);
        let future = pending(now + 1);
        let other_tenant = ServiceKeyRecord {
            tenant_id: TenantId::new_random(),
            ..pending(now - 5)
        };
        // A date left behind by a cancelled deletion must not make a key due.
        let wrong_state = ServiceKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::Disabled),
            ..pending(now - 1)
        };
        let no_date = ServiceKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::PendingDeletion),
            ..service_key(t)
        };
        let all = [
            &past,
            &exact,
            &future,
            &other_tenant,
            &wrong_state,
            &no_date,
        ];
        ok(store, puts(Write::PutServiceKey, all)).await;
        let due = sorted(store.keys_due_for_deletion(now).await.unwrap());
        assert_eq!(due, sorted(vec![past.id, exact.id, other_tenant.id]));
        assert!(store.keys_due_for_deletion(0).await.unwrap().is_empty());
    }

    /// Only active keys with a rotation schedule due at or before `now` are due.
    pub async fn keys_due_for_rotation(store: &dyn Store) {
        let t = TenantId::new_random();
        let now = 1_800_000_000_000;
        let scheduled = |at| ServiceKeyRecord {
            rotation: Some(RotationSchedule {
                period_days: 90,
                next_rotation_at: at,
            }),
            ..service_key(t)
        };
        let past = scheduled(now - 1);
        let exact = scheduled(now);
        let future = scheduled(now + 1);
        let unscheduled = service_key(t);
        let mut due_states = vec![past.id, exact.id];
        let mut writes: Vec<_> = puts(Write::PutServiceKey, [&past, &exact, &future, &unscheduled]);
        for state in ALL_STATES.into_iter().filter(|s| *s != KeyState::Active) {
            writes.push(Write::PutServiceKey(ServiceKeyRecord {
                lifecycle: Lifecycle::stored(state),
                ..scheduled(now - 10)
            }));
        }
        let elsewhere = ServiceKeyRecord {
            tenant_id: TenantId::new_random(),
            ..scheduled(0)
        };
        due_states.push(elsewhere.id);
        writes.push(Write::PutServiceKey(elsewhere));
        ok(store, writes).await;
        let due = sorted(store.keys_due_for_rotation(now).await.unwrap());
        assert_eq!(due, sorted(due_states));
        assert_eq!(store.keys_due_for_rotation(-1).await.unwrap(), vec![]);
    }

    /// Keys whose imported material expires at or before `now` are listed, whatever
    /// their state or tenant; others are not.
    pub async fn keys_with_expired_material(store: &dyn Store) {
        let t = TenantId::new_random();
        let now = 1_800_000_000_000;
        let expiring = |at| ServiceKeyRecord {
            origin: KeyOrigin::External,
            material_expires_at: Some(at),
            ..service_key(t)
        };
        let past = expiring(now - 1);
        let exact = expiring(now);
        let future = expiring(now + 1);
        let never = service_key(t);
        let disabled = ServiceKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::Disabled),
            tenant_id: TenantId::new_random(),
            ..expiring(now - 10)
        };
        ok(
            store,
            puts(
                Write::PutServiceKey,
                [&past, &exact, &future, &never, &disabled],
            ),
        )
        .await;
        let due = sorted(store.keys_with_expired_material(now).await.unwrap());
        assert_eq!(due, sorted(vec![past.id, exact.id, disabled.id]));
        assert_eq!(store.keys_with_expired_material(0).await.unwrap(), vec![]);
    }

    /// Aliases round-trip and list by name, per tenant and per key.
    pub async fn alias_round_trip(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let (k1, k2) = (KeyId::new_random(), KeyId::new_random());
        let b = alias(t1, "alias/bravo", k1);
        let a = alias(t1, "alias/alpha", k2);
        let c = alias(t1, "alias/charlie", k1);
        let foreign = alias(t2, "alias/alpha", KeyId::new_random());
        ok(store, puts(Write::InsertAlias, [&b, &a, &c, &foreign])).await;
        assert_eq!(
            store.alias(t1, "alias/alpha").await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(
            store.alias(t2, "alias/alpha").await.unwrap(),
            Some(foreign.clone())
        );
        assert_eq!(store.alias(t2, "alias/bravo").await.unwrap(), None);
        assert_eq!(
            store.aliases(t1, None).await.unwrap(),
            vec![a.clone(), b.clone(), c.clone()]
        );
        assert_eq!(store.aliases(t1, Some(k1)).await.unwrap(), vec![b, c]);
        assert_eq!(store.aliases(t1, Some(k2)).await.unwrap(), vec![a]);
        assert_eq!(store.aliases(t2, None).await.unwrap(), vec![foreign]);
        assert!(store.aliases(t2, Some(k1)).await.unwrap().is_empty());
    }

    /// Inserting a taken alias name is a conflict; the same name in another tenant is not.
    pub async fn insert_alias_conflicts(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let original = alias(t1, "alias/foo", KeyId::new_random());
        ok(store, vec![Write::InsertAlias(original.clone())]).await;
        let dup = alias(t1, "alias/foo", KeyId::new_random());
        conflict(store, vec![Write::InsertAlias(dup)], "taken alias").await;
        assert_eq!(store.alias(t1, "alias/foo").await.unwrap(), Some(original));
        ok(
            store,
            vec![Write::InsertAlias(alias(
                t2,
                "alias/foo",
                KeyId::new_random(),
            ))],
        )
        .await;
    }

    /// `PutAlias` retargets an existing alias.
    pub async fn put_alias_replaces(store: &dyn Store) {
        let t = TenantId::new_random();
        let (k1, k2) = (KeyId::new_random(), KeyId::new_random());
        let a = alias(t, "alias/x", k1);
        ok(store, vec![Write::InsertAlias(a.clone())]).await;
        let moved = AliasRecord {
            key_id: k2,
            updated_at: a.updated_at + 10,
            ..a
        };
        ok(store, vec![Write::PutAlias(moved.clone())]).await;
        assert_eq!(
            store.alias(t, "alias/x").await.unwrap(),
            Some(moved.clone())
        );
        assert!(store.aliases(t, Some(k1)).await.unwrap().is_empty());
        assert_eq!(store.aliases(t, Some(k2)).await.unwrap(), vec![moved]);
    }

    /// `DeleteAlias` removes exactly one alias of one tenant.
    pub async fn delete_alias(store: &dyn Store) {
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let k = KeyId::new_random();
        let gone = alias(t1, "alias/a", k);
        let kept = alias(t1, "alias/b", k);
        let foreign = alias(t2, "alias/a", KeyId::new_random());
        ok(store, puts(Write::InsertAlias, [&gone, &kept, &foreign])).await;
        let delete = Write::DeleteAlias {
            tenant_id: t1,
            name: "alias/a".into(),
        };
        ok(store, vec![delete]).await;
        assert_eq!(store.alias(t1, "alias/a").await.unwrap(), None);
        assert_eq!(store.aliases(t1, None).await.unwrap(), vec![kept]);
        assert_eq!(store.alias(t2, "alias/a").await.unwrap(), Some(foreign));
        // The name is free again.
        ok(store, vec![Write::InsertAlias(gone)]).await;
    }

    /// `DeleteAliasesOf` removes every alias of one key and no other.
    pub async fn delete_aliases_of_key(store: &dyn Store) {
        let t = TenantId::new_random();
        let (doomed, kept) = (KeyId::new_random(), KeyId::new_random());
        let keep = alias(t, "alias/keep", kept);
        let writes = vec![
            Write::InsertAlias(alias(t, "alias/d1", doomed)),
            Write::InsertAlias(alias(t, "alias/d2", doomed)),
            Write::InsertAlias(keep.clone()),
        ];
        ok(store, writes).await;
        ok(store, vec![Write::DeleteAliasesOf(doomed)]).await;
        assert!(store.aliases(t, Some(doomed)).await.unwrap().is_empty());
        assert_eq!(store.aliases(t, None).await.unwrap(), vec![keep]);
    }

    /// Grants round-trip by id with optional fields set and unset and any set of
    /// operations; putting one again replaces it.
    pub async fn grant_round_trip(store: &dyn Store) {
        let t = TenantId::new_random();
        let k = KeyId::new_random();
        let full = grant(t, k, &"a".repeat(64), 100);
        let bare = GrantRecord {
            retiring_principal: None,
            name: None,
            operations: [Op::Encrypt].into_iter().collect(),
            constraints: GrantConstraints::default(),
            ..grant(t, k, &"b".repeat(64), 200)
        };
        let every_op = GrantRecord {
            operations: ALL_OPS.iter().copied().collect(),
            ..grant(t, k, &"c".repeat(64), 300)
        };
        let no_op = GrantRecord {
            operations: OpSet::EMPTY,
            ..grant(t, k, &"d".repeat(64), 400)
        };
        let grants = [&full, &bare, &every_op, &no_op];
        ok(store, puts(Write::PutGrant, grants)).await;
        for g in grants {
            assert_eq!(store.grant(&g.id).await.unwrap().as_ref(), Some(g));
        }
        assert_eq!(store.grant(&"e".repeat(64)).await.unwrap(), None);
        let replaced = GrantRecord {
            grantee: "KCMOTHERGRANTEE00001".into(),
            retiring_principal: None,
            operations: [Op::DescribeKey, Op::CreateGrant].into_iter().collect(),
            name: None,
            constraints: GrantConstraints {
                encryption_context_equals: None,
                ..full.constraints.clone()
            },
            ..full.clone()
        };
        ok(store, vec![Write::PutGrant(replaced.clone())]).await;
        assert_eq!(store.grant(&full.id).await.unwrap(), Some(replaced));
        let restored = GrantRecord {
            name: Some("again".into()),
            ..bare.clone()
        };
        ok(store, vec![Write::PutGrant(restored.clone())]).await;
        assert_eq!(store.grant(&bare.id).await.unwrap(), Some(restored));
        assert_eq!(store.grants(k).await.unwrap().len(), 4);
    }

    /// `grants(key)` lists one key's grants by creation time (then id).
    pub async fn grants_list_by_key(store: &dyn Store) {
        let t = TenantId::new_random();
        let (k, other) = (KeyId::new_random(), KeyId::new_random());
        let late = grant(t, k, "g-late", 300);
        let early = grant(t, k, "g-early", 100);
        let tie_b = grant(t, k, "g-tie-b", 200);
        let tie_a = grant(t, k, "g-tie-a", 200);
        let elsewhere = grant(t, other, "g-other", 50);
        ok(
            store,
            puts(Write::PutGrant, [&late, &tie_b, &early, &elsewhere, &tie_a]),
        )
        .await;
        assert_eq!(
            store.grants(k).await.unwrap(),
            vec![early, tie_a, tie_b, late]
        );
        assert_eq!(store.grants(other).await.unwrap(), vec![elsewhere]);
        assert!(store.grants(KeyId::new_random()).await.unwrap().is_empty());
    }

    /// `grants_retirable_by` lists the tenant's grants naming that retiring
    /// principal (not its grantee's), by creation time.
    pub async fn grants_retirable_by_principal(store: &dyn Store) {
        let (t, other_tenant) = (TenantId::new_random(), TenantId::new_random());
        let p = "KCMRETIRER0000000001";
        let second = grant(t, KeyId::new_random(), "r-second", 200);
        let first = grant(t, KeyId::new_random(), "r-first", 100);
        assert_eq!(first.retiring_principal.as_deref(), Some(p));
        let someone_else = GrantRecord {
            retiring_principal: Some("KCMSOMEONEELSE000001".into()),
            ..grant(t, KeyId::new_random(), "r-else", 150)
        };
        let unretirable = GrantRecord {
            retiring_principal: None,
            grantee: p.into(),
            ..grant(t, KeyId::new_random(), "r-none", 120)
        };
        let foreign = grant(other_tenant, KeyId::new_random(), "r-foreign", 50);
        ok(
            store,
            puts(
                Write::PutGrant,
                [&second, &first, &someone_else, &unretirable, &foreign],
            ),
        )
        .await;
        assert_eq!(
            store.grants_retirable_by(t, p).await.unwrap(),
            vec![first, second]
        );
        assert_eq!(
            store
                .grants_retirable_by(t, "KCMSOMEONEELSE000001")
                .await
                .unwrap(),
            vec![someone_else]
        );
        assert_eq!(
            store.grants_retirable_by(other_tenant, p).await.unwrap(),
            vec![foreign]
        );
        assert!(store
            .grants_retirable_by(t, "KCMRETIRER")
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .grants_retirable_by(TenantId::new_random(), p)
            .await
            .unwrap()
            .is_empty());
    }

    /// `DeleteGrant` removes exactly one grant; deleting a missing one is no error.
    pub async fn delete_grant(store: &dyn Store) {
        let t = TenantId::new_random();
        let k = KeyId::new_random();
        let gone = grant(t, k, "gone", 100);
        let kept = grant(t, k, "kept", 200);
        ok(
            store,
            vec![Write::PutGrant(gone.clone()), Write::PutGrant(kept.clone())],
        )
        .await;
        ok(store, vec![Write::DeleteGrant(gone.id.clone())]).await;
        assert_eq!(store.grant(&gone.id).await.unwrap(), None);
        assert_eq!(store.grants(k).await.unwrap(), vec![kept.clone()]);
        assert_eq!(
            store
                .grants_retirable_by(t, "KCMRETIRER0000000001")
                .await
                .unwrap(),
            vec![kept]
        );
        ok(store, vec![Write::DeleteGrant("missing".into())]).await;
    }

    /// Managed objects round-trip by id: with a payload, without one, a container
    /// (links, no payload) and a large payload; an unknown id is `None`.
    pub async fn managed_object_round_trip(store: &dyn Store) {
        let (t, s) = (TenantId::new_random(), SystemId::new_random());
        let full = managed_object(t, s, 100);
        let bare = bare_managed_object(t, s, 200);
        let container = ManagedObjectRecord {
            kind: ObjectKind::Container,
            payload: None,
            attributes: ObjectAttributes {
                subtype: Some("certificate".to_owned()),
                links: vec![
                    ObjectLink {
                        name: "certificate".to_owned(),
                        object: full.id,
                    },
                    ObjectLink {
                        name: "private_key".to_owned(),
                        object: bare.id,
                    },
                ],
                ..ObjectAttributes::default()
            },
            ..managed_object(t, s, 300)
        };
        let large = ManagedObjectRecord {
            kind: ObjectKind::Certificate,
            payload: Some(SealedPayload {
                system_key_version: u32::MAX,
                sealed: (0..256 * 1024).map(|i| (i % 251) as u8).collect(),
            }),
            ..managed_object(t, s, 400)
        };
        let objects = [&full, &bare, &container, &large];
        ok(store, puts(Write::PutManagedObject, objects)).await;
        for o in objects {
            assert_eq!(store.managed_object(o.id).await.unwrap().as_ref(), Some(o));
        }
        assert_eq!(
            store.managed_object(ObjectId::new_random()).await.unwrap(),
            None
        );
        // Every kind and every state reads back as written.
        for (i, kind) in ALL_OBJECT_KINDS.into_iter().enumerate() {
            for (j, state) in ALL_STATES.into_iter().enumerate() {
                let o = ManagedObjectRecord {
                    kind,
                    lifecycle: Lifecycle::stored(state),
                    ..managed_object(t, SystemId::new_random(), (i * 10 + j) as i64)
                };
                ok(store, vec![Write::PutManagedObject(o.clone())]).await;
                assert_eq!(store.managed_object(o.id).await.unwrap(), Some(o));
            }
        }
    }

    /// Putting an object again replaces it whole: a payload arrives, attributes
    /// change, the payload goes.
    pub async fn managed_object_upsert_replaces(store: &dyn Store) {
        let (t, s) = (TenantId::new_random(), SystemId::new_random());
        let pending = bare_managed_object(t, s, 100);
        let other = managed_object(t, s, 50);
        ok(store, puts(Write::PutManagedObject, [&pending, &other])).await;
        let full = managed_object(t, s, 100);
        let stored = ManagedObjectRecord {
            id: pending.id,
            updated_at: 900,
            ..full
        };
        ok(store, vec![Write::PutManagedObject(stored.clone())]).await;
        assert_eq!(
            store.managed_object(pending.id).await.unwrap(),
            Some(stored.clone())
        );
        let mut attributes = stored.attributes.clone();
        attributes
            .metadata
            .insert("added".to_owned(), "yes".to_owned());
        attributes.consumers.clear();
        attributes.expiration = None;
        let destroyed = ManagedObjectRecord {
            lifecycle: Lifecycle::stored(KeyState::Destroyed),
            payload: None,
            attributes,
            updated_at: 1_000,
            ..stored
        };
        ok(store, vec![Write::PutManagedObject(destroyed.clone())]).await;
        assert_eq!(
            store.managed_object(pending.id).await.unwrap(),
            Some(destroyed.clone())
        );
        assert_eq!(
            store.managed_objects(s).await.unwrap(),
            vec![other.clone(), destroyed],
            "replaced, not added"
        );
        assert_eq!(store.managed_object(other.id).await.unwrap(), Some(other));
    }

    /// `DeleteManagedObject` removes exactly one object; deleting a missing one is
    /// no error, and the id may be used again.
    pub async fn delete_managed_object(store: &dyn Store) {
        let (t, s) = (TenantId::new_random(), SystemId::new_random());
        let gone = managed_object(t, s, 100);
        let kept = bare_managed_object(t, s, 200);
        ok(store, puts(Write::PutManagedObject, [&gone, &kept])).await;
        ok(store, vec![Write::DeleteManagedObject(gone.id)]).await;
        assert_eq!(store.managed_object(gone.id).await.unwrap(), None);
        assert_eq!(
            store.managed_object(kept.id).await.unwrap(),
            Some(kept.clone())
        );
        assert_eq!(store.managed_objects(s).await.unwrap(), vec![kept.clone()]);
        ok(store, vec![Write::DeleteManagedObject(gone.id)]).await;
        ok(
            store,
            vec![Write::DeleteManagedObject(ObjectId::new_random())],
        )
        .await;
        ok(store, vec![Write::PutManagedObject(gone.clone())]).await;
        assert_eq!(store.managed_objects(s).await.unwrap(), vec![gone, kept]);
    }

    /// `managed_objects(system)` lists that system's objects only, oldest first
    /// (ties by id), whatever their tenant or the order they were written in; and
    /// `managed_object_count` counts the same objects.
    pub async fn managed_objects_are_listed_per_system_oldest_first(store: &dyn Store) {
        let (t, other_tenant) = (TenantId::new_random(), TenantId::new_random());
        let (s, sibling, foreign) = (
            SystemId::new_random(),
            SystemId::new_random(),
            SystemId::new_random(),
        );
        let late = managed_object(t, s, 300);
        let early = bare_managed_object(t, s, 100);
        let ties: Vec<_> = (0..4).map(|_| managed_object(t, s, 200)).collect();
        let in_sibling = managed_object(t, sibling, 150);
        let in_foreign = managed_object(other_tenant, foreign, 50);
        let mut writes = vec![
            Write::PutManagedObject(late.clone()),
            Write::PutManagedObject(in_sibling.clone()),
        ];
        writes.extend(puts(Write::PutManagedObject, ties.iter().rev()));
        writes.push(Write::PutManagedObject(early.clone()));
        writes.push(Write::PutManagedObject(in_foreign.clone()));
        ok(store, writes).await;
        let mut want = vec![early];
        let mut tied = ties.clone();
        tied.sort_by_key(|o| o.id);
        want.extend(tied);
        want.push(late);
        assert_eq!(store.managed_objects(s).await.unwrap(), want);
        assert_eq!(
            store.managed_objects(sibling).await.unwrap(),
            vec![in_sibling]
        );
        assert_eq!(
            store.managed_objects(foreign).await.unwrap(),
            vec![in_foreign]
        );
        assert!(store
            .managed_objects(SystemId::new_random())
            .await
            .unwrap()
            .is_empty());
        for (system, count) in [
            (s, 6),
            (sibling, 1),
            (foreign, 1),
            (SystemId::new_random(), 0),
        ] {
            assert_eq!(store.managed_object_count(system).await.unwrap(), count);
        }
    }

    /// `DeleteGrantsOf` removes every grant of one key and no other.
    pub async fn delete_grants_of_key(store: &dyn Store) {
        let t = TenantId::new_random();
        let (doomed, kept) = (KeyId::new_random(), KeyId::new_random());
        let keep = grant(t, kept, "keep", 300);
        let writes = vec![
            Write::PutGrant(grant(t, doomed, "d1", 100)),
            Write::PutGrant(grant(t, doomed, "d2", 200)),
            Write::PutGrant(keep.clone()),
        ];
        ok(store, writes).await;
        ok(store, vec![Write::DeleteGrantsOf(doomed)]).await;
        assert!(store.grants(doomed).await.unwrap().is_empty());
        assert_eq!(store.grant("d1").await.unwrap(), None);
        assert_eq!(store.grants(kept).await.unwrap(), vec![keep.clone()]);
        assert_eq!(
            store
                .grants_retirable_by(t, "KCMRETIRER0000000001")
                .await
                .unwrap(),
            vec![keep]
        );
    }

    /// Every query of a whole chain.
    pub(super) fn whole_chain(chain: AuditChain) -> AuditQuery {
        AuditQuery {
            tenant: chain,
            limit: 1000,
            ..AuditQuery::default()
        }
    }

    /// Audit records round-trip field for field, with every option set and unset,
    /// in a tenant's chain and in the operator's (the same `seq` in two chains).
    pub async fn audit_record_round_trip(store: &dyn Store) {
        let mut chains = Chains::default();
        let t = TenantId::new_random();
        assert!(store
            .audit_records(&whole_chain(Some(t)))
            .await
            .unwrap()
            .is_empty());
        let tenant_records = vec![
            audit_record(Some(t), 1),
            bare_audit_record(Some(t), 2),
            AuditRecord {
                role: Some(Role::TenantAdmin),
                outcome: AuditOutcome::Failed,
                keys: vec![AuditKey {
                    id: KeyId::new_random(),
                    version: Some(u32::MAX),
                    compromised: false,
                }],
                front_door: "rest".into(),
                ..audit_record(Some(t), 3)
            },
        ];
        let operator_records = vec![
            AuditRecord {
                role: Some(Role::SystemAdmin),
                principal: "KCMOPERATOR000000001".into(),
                operation: "CreateTenant".into(),
                ..audit_record(None, 1)
            },
            bare_audit_record(None, 2),
        ];
        let stored = chains
            .append(store, [tenant_records, operator_records].concat())
            .await;
        let (tenant_records, operator_records): (Vec<_>, Vec<_>) =
            stored.into_iter().partition(|r| r.tenant.is_some());
        assert_eq!(seqs(operator_records.clone()), [1, 2]);
        assert_eq!(
            store.audit_records(&whole_chain(Some(t))).await.unwrap(),
            tenant_records
        );
        assert_eq!(
            store.audit_records(&whole_chain(None)).await.unwrap(),
            operator_records
        );
        assert!(store
            .audit_records(&whole_chain(Some(TenantId::new_random())))
            .await
            .unwrap()
            .is_empty());
        // Later appends come after, in separate appends too.
        let next = chains.append(store, vec![audit_record(Some(t), 4)]).await;
        let all = store.audit_records(&whole_chain(Some(t))).await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3..], next);
        assert_chain_is_whole(&all);
    }

    /// `append_audit` links each record after its chain's stored tail (the
    /// genesis hash for an empty chain), whatever `seq` and hashes it came with,
    /// and keeps chains apart within one batch.
    pub async fn append_audit_links_after_the_stored_tail(store: &dyn Store) {
        let mut chains = Chains::default();
        let (t, other) = (TenantId::new_random(), TenantId::new_random());
        let first = chains
            .append(
                store,
                vec![bare_audit_record(Some(t), 1), bare_audit_record(Some(t), 2)],
            )
            .await;
        store
            .append_audit(&mut vec![])
            .await
            .expect("an empty append");
        let unlinked = |chain| AuditRecord {
            seq: 99,
            prev_hash: "junk".into(),
            hash: "junk".into(),
            ..bare_audit_record(chain, 0)
        };
        let mixed = chains
            .append(
                store,
                vec![unlinked(Some(t)), unlinked(None), unlinked(Some(t))],
            )
            .await;
        let apart = chains.append(store, vec![unlinked(Some(other))]).await;
        let expected = [
            (Some(t), vec![&first[0], &first[1], &mixed[0], &mixed[2]]),
            (None, vec![&mixed[1]]),
            (Some(other), vec![&apart[0]]),
        ];
        for (chain, want) in expected {
            let records = store.audit_records(&whole_chain(chain)).await.unwrap();
            assert_eq!(records.iter().collect::<Vec<_>>(), want, "chain {chain:?}");
            assert_chain_is_whole(&records);
        }
    }

    /// Appends racing on one chain (from one node or several) all succeed and
    /// form one chain: consecutive `seq`s, each linked to the one before.
    pub async fn concurrent_audit_appends_form_one_chain(store: &dyn Store) {
        let t = Some(TenantId::new_random());
        let append = |n: u64| async move {
            for i in 0..10 {
                let mut batch = (0..n).map(|_| bare_audit_record(t, i)).collect();
                store.append_audit(&mut batch).await.expect("append_audit");
            }
        };
        tokio::join!(append(1), append(3));
        let records = store.audit_records(&whole_chain(t)).await.unwrap();
        assert_eq!(records.len(), 40);
        assert_chain_is_whole(&records);
    }

    /// Panics unless `records` (one chain, by `seq`) start at 1 after the genesis
    /// hash, have consecutive `seq`s, and each carry its own hash and the hash of
    /// the record before.
    pub(super) fn assert_chain_is_whole(records: &[AuditRecord]) {
        use kcm_core::audit::hash::{record_hash, GENESIS_HASH};
        let mut prev = GENESIS_HASH.to_string();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1, "seq");
            assert_eq!(r.prev_hash, prev, "prev_hash of seq {}", r.seq);
            assert_eq!(r.hash, record_hash(r), "hash of seq {}", r.seq);
            prev = r.hash.clone();
        }
    }

    /// Records that come with a `seq` their chain already holds (a copy of a
    /// stored record; one record twice in one append) go after the chain's last
    /// record, never over or beside a stored one, which stays as it was. Each chain
    /// counts on its own: the same `seq` in another chain is no clash.
    pub async fn append_audit_never_reuses_a_taken_seq(store: &dyn Store) {
        let mut chains = Chains::default();
        let (t, other) = (TenantId::new_random(), TenantId::new_random());
        let existing = chains
            .append(
                store,
                vec![audit_record(Some(t), 1), audit_record(Some(t), 2)],
            )
            .await;
        let taken = AuditRecord {
            hash: "f".repeat(64),
            ..existing[1].clone()
        };
        let twice = audit_record(Some(other), 1);
        let appended = chains
            .append(
                store,
                vec![twice.clone(), audit_record(None, 1), taken, twice],
            )
            .await;
        assert_eq!(seqs(appended.clone()), [1, 1, 3, 2]);
        let records = store.audit_records(&whole_chain(Some(t))).await.unwrap();
        assert_eq!(records, [&existing[..], &appended[2..3]].concat());
        assert_chain_is_whole(&records);
        let records = store
            .audit_records(&whole_chain(Some(other)))
            .await
            .unwrap();
        assert_eq!(records, [appended[0].clone(), appended[3].clone()]);
        assert_chain_is_whole(&records);
        let records = store.audit_records(&whole_chain(None)).await.unwrap();
        assert_eq!(records, appended[1..2]);
    }

    /// `audit_tail` is the `seq` and `hash` of a chain's last record.
    pub async fn audit_tail_is_last_record(store: &dyn Store) {
        let mut chains = Chains::default();
        let t = TenantId::new_random();
        assert_eq!(store.audit_tail(Some(t)).await.unwrap(), None);
        assert_eq!(store.audit_tail(None).await.unwrap(), None);
        let records = (1..=3).map(|seq| audit_record(Some(t), seq)).collect();
        let records = chains.append(store, records).await;
        assert_eq!(
            store.audit_tail(Some(t)).await.unwrap(),
            Some((3, records[2].hash.clone()))
        );
        assert_eq!(store.audit_tail(None).await.unwrap(), None);
        let operator = chains.append(store, vec![bare_audit_record(None, 1)]).await;
        assert_eq!(
            store.audit_tail(None).await.unwrap(),
            Some((1, operator[0].hash.clone()))
        );
        let fourth = chains.append(store, vec![audit_record(Some(t), 4)]).await;
        assert_eq!(
            store.audit_tail(Some(t)).await.unwrap(),
            Some((4, fourth[0].hash.clone()))
        );
        assert_eq!(
            store
                .audit_tail(Some(TenantId::new_random()))
                .await
                .unwrap(),
            None
        );
    }

    /// `audit_chains` names every chain that has records, with its last `seq`.
    pub async fn audit_chains_lists_every_chain(store: &dyn Store) {
        assert!(store.audit_chains().await.unwrap().is_empty());
        let (t1, t2) = (TenantId::new_random(), TenantId::new_random());
        let mut records = Vec::new();
        for seq in 1..=5 {
            records.push(audit_record(Some(t1), seq));
        }
        for seq in 1..=2 {
            records.push(bare_audit_record(None, seq));
        }
        records.push(audit_record(Some(t2), 1));
        store
            .append_audit(&mut records)
            .await
            .expect("append_audit");
        // A checkpoint alone does not make a chain.
        let checkpoint = audit_checkpoint(Some(TenantId::new_random()), 9);
        ok(store, vec![Write::PutAuditCheckpoint(checkpoint)]).await;
        let chains = sorted(store.audit_chains().await.unwrap());
        assert_eq!(
            chains,
            sorted(vec![(Some(t1), 5), (None, 2), (Some(t2), 1)])
        );
        store
            .append_audit(&mut vec![audit_record(Some(t2), 2)])
            .await
            .expect("append_audit");
        let chains = sorted(store.audit_chains().await.unwrap());
        assert_eq!(
            chains,
            sorted(vec![(Some(t1), 5), (None, 2), (Some(t2), 2)])
        );
    }

    /// The seqs of some records.
    fn seqs(records: Vec<AuditRecord>) -> Vec<u64> {
        records.into_iter().map(|r| r.seq).collect()
    }

    /// Every filter of `audit_records`, alone and combined: time (`from` inclusive,
    /// `to` exclusive), key named anywhere in `keys`, principal, operation; and
    /// only ever the one chain.
    pub async fn audit_records_filters(store: &dyn Store) {
        let t = TenantId::new_random();
        let (k1, k2, k3) = (
            KeyId::new_random(),
            KeyId::new_random(),
            KeyId::new_random(),
        );
        let (a, b) = ("KCMPRINCIPALA0000001", "KCMPRINCIPALB0000001");
        let key = |id| AuditKey {
            id,
            version: Some(1),
            compromised: false,
        };
        // Times are not in seq order: the time filters must use the time.
        let rows: [(u64, i64, &str, &str, Vec<KeyId>); 6] = [
            (1, 1000, a, "Encrypt", vec![k1]),
            (2, 2000, b, "Decrypt", vec![k2, k1]),
            (3, 3000, a, "Decrypt", vec![]),
            (4, 4000, a, "Encrypt", vec![k3]),
            (5, 2500, b, "Encrypt", vec![k1, k3]),
            (6, 5000, a, "CreateKey", vec![k2]),
        ];
        let mut records = Vec::new();
        for (seq, time, principal, operation, keys) in rows {
            let r = AuditRecord {
                time,
                principal: principal.into(),
                operation: operation.into(),
                keys: keys.into_iter().map(key).collect(),
                ..audit_record(Some(t), seq)
            };
            records.push(r.clone());
            // Look-alike records in other chains must never show.
            records.push(AuditRecord {
                tenant: None,
                ..r.clone()
            });
            records.push(AuditRecord {
                tenant: Some(TenantId::new_random()),
                ..r
            });
        }
        let stored = Chains::default().append(store, records).await;
        // Appended in row order, the tenant's records take the seqs of the rows.
        let tenant_seqs = stored.into_iter().filter(|r| r.tenant == Some(t));
        assert_eq!(seqs(tenant_seqs.collect()), [1, 2, 3, 4, 5, 6]);
        let all = whole_chain(Some(t));
        let cases: Vec<(&str, AuditQuery, Vec<u64>)> = vec![
            ("no filter", all.clone(), vec![1, 2, 3, 4, 5, 6]),
            (
                "from",
                AuditQuery {
                    from: Some(2500),
                    ..all.clone()
                },
                vec![3, 4, 5, 6],
            ),
            (
                "to",
                AuditQuery {
                    to: Some(2500),
                    ..all.clone()
                },
                vec![1, 2],
            ),
            (
                "from and to",
                AuditQuery {
                    from: Some(2000),
                    to: Some(4000),
                    ..all.clone()
                },
                vec![2, 3, 5],
            ),
            (
                "empty time range",
                AuditQuery {
                    from: Some(3000),
                    to: Some(3000),
                    ..all.clone()
                },
                vec![],
            ),
            (
                "after every time",
                AuditQuery {
                    from: Some(5001),
                    ..all.clone()
                },
                vec![],
            ),
            (
                "principal",
                AuditQuery {
                    principal: Some(a.into()),
                    ..all.clone()
                },
                vec![1, 3, 4, 6],
            ),
            (
                "principal prefix",
                AuditQuery {
                    principal: Some("KCMPRINCIPAL".into()),
                    ..all.clone()
                },
                vec![],
            ),
            (
                "operation",
                AuditQuery {
                    operation: Some("Encrypt".into()),
                    ..all.clone()
                },
                vec![1, 4, 5],
            ),
            (
                "unknown operation",
                AuditQuery {
                    operation: Some("Fly".into()),
                    ..all.clone()
                },
                vec![],
            ),
            (
                "principal, operation and time",
                AuditQuery {
                    principal: Some(b.into()),
                    operation: Some("Encrypt".into()),
                    from: Some(2000),
                    ..all.clone()
                },
                vec![5],
            ),
        ];
        for (what, q, want) in cases {
            let got = seqs(store.audit_records(&q).await.unwrap());
            assert_eq!(got, want, "{what}: {q:?}");
        }
        let by_key = |k: KeyId| AuditQuery {
            key: Some(k),
            ..whole_chain(Some(t))
        };
        for (k, want) in [
            (k1, vec![1, 2, 5]),
            (k2, vec![2, 6]),
            (k3, vec![4, 5]),
            (KeyId::new_random(), vec![]),
        ] {
            let got = seqs(store.audit_records(&by_key(k)).await.unwrap());
            assert_eq!(got, want, "key {k}");
        }
        let combined = AuditQuery {
            principal: Some(a.into()),
            operation: Some("Encrypt".into()),
            from: Some(1000),
            to: Some(5000),
            ..by_key(k3)
        };
        assert_eq!(seqs(store.audit_records(&combined).await.unwrap()), [4]);
        // Paging within a time window, resuming inside it, before it and after it.
        let window = |after_seq, limit, to| AuditQuery {
            after_seq,
            limit,
            from: Some(2000),
            to,
            ..whole_chain(Some(t))
        };
        for (after_seq, limit, to, want) in [
            (0, 1, None, vec![2]),
            (2, 1, None, vec![3]),
            (3, 2, None, vec![4, 5]),
            (5, 10, None, vec![6]),
            (6, 10, None, vec![]),
            (1, 10, Some(4000), vec![2, 3, 5]),
            (3, 10, Some(4000), vec![5]),
            (5, 10, Some(4000), vec![]),
            (0, 2, Some(2600), vec![2, 5]),
        ] {
            let q = window(after_seq, limit, to);
            let got = seqs(store.audit_records(&q).await.unwrap());
            assert_eq!(got, want, "{q:?}");
        }
        let other_chain = AuditQuery {
            principal: Some(a.into()),
            ..whole_chain(Some(TenantId::new_random()))
        };
        assert!(store.audit_records(&other_chain).await.unwrap().is_empty());
        let operator = AuditQuery {
            key: Some(k1),
            ..whole_chain(None)
        };
        let got = store.audit_records(&operator).await.unwrap();
        assert_eq!(seqs(got.clone()), [1, 2, 5]);
        assert!(got.iter().all(|r| r.tenant.is_none()));
    }

    /// `audit_records` pages by `seq`: `after_seq` is exclusive, `limit` caps the
    /// page, with and without filters.
    pub async fn audit_records_page_by_seq(store: &dyn Store) {
        let t = TenantId::new_random();
        let k = KeyId::new_random();
        let records: Vec<_> = (1..=7)
            .map(|seq| {
                let mut r = audit_record(Some(t), seq);
                if seq % 2 == 1 {
                    r.keys[1].id = k;
                }
                r
            })
            .collect();
        let records = Chains::default().append(store, records).await;
        let page = |after_seq, limit, key| AuditQuery {
            after_seq,
            limit,
            key,
            ..whole_chain(Some(t))
        };
        let mut seen = Vec::new();
        let mut after = 0;
        for _ in 0..=records.len() {
            let got = store.audit_records(&page(after, 3, None)).await.unwrap();
            assert!(got.len() <= 3, "page larger than limit");
            let Some(last) = got.last() else { break };
            assert!(got[0].seq > after, "`after_seq` must be exclusive");
            after = last.seq;
            seen.extend(got);
        }
        assert_eq!(seen, records);
        let get = |q| async move { seqs(store.audit_records(&q).await.unwrap()) };
        assert_eq!(get(page(2, 2, None)).await, [3, 4]);
        assert_eq!(get(page(6, 100, None)).await, [7]);
        assert_eq!(get(page(7, 100, None)).await, Vec::<u64>::new());
        assert_eq!(get(page(u64::MAX, 100, None)).await, Vec::<u64>::new());
        assert_eq!(get(page(0, 0, None)).await, Vec::<u64>::new());
        assert_eq!(get(page(0, usize::MAX, None)).await, [1, 2, 3, 4, 5, 6, 7]);
        // With a filter, the limit counts matching records only.
        assert_eq!(get(page(0, 2, Some(k))).await, [1, 3]);
        assert_eq!(get(page(3, 2, Some(k))).await, [5, 7]);
        assert_eq!(get(page(4, 1, Some(k))).await, [5]);
        assert_eq!(get(page(7, 2, Some(k))).await, Vec::<u64>::new());
    }

    /// Checkpoints round-trip, list by `seq` after `after_seq` up to `limit`, replace
    /// by (chain, seq), and `last_audit_checkpoint` is the highest `seq`.
    pub async fn audit_checkpoints_round_trip(store: &dyn Store) {
        let (t, other) = (TenantId::new_random(), TenantId::new_random());
        assert!(store
            .audit_checkpoints(Some(t), 0, 100)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.last_audit_checkpoint(Some(t)).await.unwrap(), None);
        assert_eq!(store.last_audit_checkpoint(None).await.unwrap(), None);
        let (c10, c20, c30) = (
            audit_checkpoint(Some(t), 10),
            audit_checkpoint(Some(t), 20),
            audit_checkpoint(Some(t), 30),
        );
        let operator = audit_checkpoint(None, 5);
        let foreign = audit_checkpoint(Some(other), 40);
        ok(
            store,
            puts(
                Write::PutAuditCheckpoint,
                [&c30, &c10, &operator, &c20, &foreign],
            ),
        )
        .await;
        let list = |chain, after, limit| store.audit_checkpoints(chain, after, limit);
        assert_eq!(
            list(Some(t), 0, 100).await.unwrap(),
            vec![c10.clone(), c20.clone(), c30.clone()]
        );
        assert_eq!(
            list(Some(t), 10, 100).await.unwrap(),
            vec![c20.clone(), c30.clone()]
        );
        assert_eq!(list(Some(t), 15, 1).await.unwrap(), vec![c20.clone()]);
        assert_eq!(
            list(Some(t), 0, 2).await.unwrap(),
            vec![c10.clone(), c20.clone()]
        );
        assert!(list(Some(t), 30, 100).await.unwrap().is_empty());
        assert!(list(Some(t), u64::MAX, 100).await.unwrap().is_empty());
        assert!(list(Some(t), 0, 0).await.unwrap().is_empty());
        assert_eq!(list(None, 0, 100).await.unwrap(), vec![operator.clone()]);
        assert_eq!(
            list(Some(other), 0, 100).await.unwrap(),
            vec![foreign.clone()]
        );
        assert!(list(Some(TenantId::new_random()), 0, 100)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.last_audit_checkpoint(Some(t)).await.unwrap(),
            Some(c30.clone())
        );
        assert_eq!(
            store.last_audit_checkpoint(None).await.unwrap(),
            Some(operator)
        );
        assert_eq!(
            store.last_audit_checkpoint(Some(other)).await.unwrap(),
            Some(foreign)
        );
        let resigned = AuditCheckpoint {
            time: c20.time + 1,
            signature: "cd".repeat(64),
            hash: "e".repeat(64),
            ..c20.clone()
        };
        ok(store, vec![Write::PutAuditCheckpoint(resigned.clone())]).await;
        assert_eq!(
            list(Some(t), 0, 100).await.unwrap(),
            vec![c10, resigned, c30.clone()]
        );
        let c31 = audit_checkpoint(Some(t), 31);
        ok(store, vec![Write::PutAuditCheckpoint(c31.clone())]).await;
        assert_eq!(
            store.last_audit_checkpoint(Some(t)).await.unwrap(),
            Some(c31)
        );
    }

    /// A batch whose last write conflicts leaves nothing written.
    pub async fn commit_is_atomic(store: &dyn Store) {
        let t = tenant("alpha", "000000000001");
        let existing = alias(t.id, "alias/taken", KeyId::new_random());
        let system_id = SystemId::new_random();
        let existing_object = managed_object(t.id, system_id, 1);
        ok(
            store,
            vec![
                Write::InsertAlias(existing.clone()),
                Write::PutManagedObject(existing_object.clone()),
            ],
        )
        .await;
        let key = service_key(t.id);
        let object = bare_managed_object(t.id, system_id, 2);
        let batch = vec![
            Write::PutMeta {
                key: "m".into(),
                value: "v".into(),
            },
            Write::PutTenant(t.clone()),
            Write::PutAccessKey(access_key("KCMATOMIC", Some(t.id))),
            Write::PutRootKey(root_key(Some(t.id), 1)),
            Write::PutSystem(system(t.id, "default")),
            Write::PutServiceKey(key.clone()),
            Write::PutKeyVersion(key_version(key.id, 1, VersionOrigin::Creation)),
            Write::InsertAlias(alias(t.id, "alias/new", key.id)),
            Write::InsertMeta {
                key: "inserted".into(),
                value: "v".into(),
            },
            Write::PutGrant(grant(t.id, key.id, "atomic-grant", 1)),
            Write::PutAuditCheckpoint(audit_checkpoint(Some(t.id), 1)),
            Write::PutManagedObject(object.clone()),
            Write::DeleteManagedObject(existing_object.id),
            Write::DeleteAlias {
                tenant_id: t.id,
                name: "alias/taken".into(),
            },
            Write::InsertAlias(alias(t.id, "alias/taken", key.id)),
            Write::InsertAlias(alias(t.id, "alias/new", key.id)),
        ];
        conflict(store, batch, "batch ending in a taken alias").await;
        assert_eq!(store.meta("m").await.unwrap(), None);
        assert!(store.tenants().await.unwrap().is_empty());
        assert_eq!(store.access_key("KCMATOMIC").await.unwrap(), None);
        assert!(store.root_keys(Some(t.id)).await.unwrap().is_empty());
        assert!(store.systems(t.id).await.unwrap().is_empty());
        assert_eq!(store.service_key(key.id).await.unwrap(), None);
        assert!(store.key_versions(key.id).await.unwrap().is_empty());
        assert_eq!(store.aliases(t.id, None).await.unwrap(), vec![existing]);
        assert_eq!(store.meta("inserted").await.unwrap(), None);
        assert!(store.grants(key.id).await.unwrap().is_empty());
        assert_eq!(store.last_audit_checkpoint(Some(t.id)).await.unwrap(), None);
        assert_eq!(store.managed_object(object.id).await.unwrap(), None);
        assert_eq!(
            store.managed_objects(system_id).await.unwrap(),
            vec![existing_object]
        );
        // The store is still usable afterwards.
        ok(store, vec![Write::PutServiceKey(key.clone())]).await;
        assert_eq!(store.service_key(key.id).await.unwrap(), Some(key));
    }

    /// Two writes in one batch that conflict with each other leave nothing written.
    pub async fn commit_conflict_within_batch_is_atomic(store: &dyn Store) {
        let t = tenant("alpha", "000000000001");
        let twin = tenant("alpha", "000000000002");
        let a = alias(t.id, "alias/twice", KeyId::new_random());
        conflict(
            store,
            vec![Write::PutTenant(t.clone()), Write::PutTenant(twin)],
            "two tenants with one name",
        )
        .await;
        assert!(store.tenants().await.unwrap().is_empty());
        conflict(
            store,
            vec![Write::InsertAlias(a.clone()), Write::InsertAlias(a.clone())],
            "one alias inserted twice",
        )
        .await;
        assert_eq!(store.alias(t.id, "alias/twice").await.unwrap(), None);
    }

    /// Writes in a batch apply in order: later writes see and override earlier ones.
    pub async fn writes_apply_in_order(store: &dyn Store) {
        let t = TenantId::new_random();
        let key = service_key(t);
        let disabled = ServiceKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::Disabled),
            ..key.clone()
        };
        let first = alias(t, "alias/a", KeyId::new_random());
        let second = alias(t, "alias/a", key.id);
        let s = SystemId::new_random();
        let pending = bare_managed_object(t, s, 1);
        let stored = ManagedObjectRecord {
            id: pending.id,
            ..managed_object(t, s, 1)
        };
        let dropped = managed_object(t, s, 2);
        let batch = vec![
            Write::PutServiceKey(key.clone()),
            Write::PutServiceKey(disabled.clone()),
            Write::InsertAlias(first),
            Write::DeleteAlias {
                tenant_id: t,
                name: "alias/a".into(),
            },
            Write::InsertAlias(second.clone()),
            Write::PutKeyVersion(key_version(key.id, 1, VersionOrigin::Creation)),
            Write::DeleteKeyVersions(key.id),
            Write::PutKeyVersion(key_version(key.id, 2, VersionOrigin::OnDemandRotation)),
            Write::PutGrant(grant(t, key.id, "first", 1)),
            Write::DeleteGrantsOf(key.id),
            Write::PutGrant(grant(t, key.id, "second", 2)),
            Write::DeleteGrant("second".into()),
            Write::PutGrant(grant(t, key.id, "third", 3)),
            Write::PutManagedObject(pending.clone()),
            Write::PutManagedObject(stored.clone()),
            Write::PutManagedObject(dropped.clone()),
            Write::DeleteManagedObject(dropped.id),
        ];
        ok(store, batch).await;
        assert_eq!(store.managed_objects(s).await.unwrap(), vec![stored]);
        let grants = store.grants(key.id).await.unwrap();
        assert_eq!(
            grants.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["third"]
        );
        assert_eq!(store.service_key(key.id).await.unwrap(), Some(disabled));
        assert_eq!(store.alias(t, "alias/a").await.unwrap(), Some(second));
        let versions = store.key_versions(key.id).await.unwrap();
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2]);
    }

    /// Concurrent commits all apply (none lost, none failed).
    pub async fn concurrent_commits_all_apply(store: &dyn Store) {
        let t = TenantId::new_random();
        let keys: Vec<_> = (0..8).map(|_| service_key(t)).collect();
        let put = |i: usize| store.commit(vec![Write::PutServiceKey(keys[i].clone())]);
        let results = tokio::join!(
            put(0),
            put(1),
            put(2),
            put(3),
            put(4),
            put(5),
            put(6),
            put(7)
        );
        let results = [
            results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
        ];
        for r in results {
            r.expect("concurrent commit");
        }
        let got = store.service_keys(t, None, 100).await.unwrap();
        assert_eq!(
            got.iter().map(|k| k.id).collect::<Vec<_>>(),
            sorted(keys.iter().map(|k| k.id).collect())
        );
    }
    /// A snapshot of an empty store has no rows, and restores into it as a no-op.
    pub async fn snapshot_of_an_empty_store_has_no_rows(store: &dyn Store) {
        let snapshot = store.snapshot().await.expect("snapshot");
        assert_eq!(snapshot.total_rows(), 0, "{snapshot:?}");
        assert!(
            !snapshot.tables.is_empty(),
            "a snapshot lists the store's tables even when they are empty"
        );
        store
            .restore_snapshot(snapshot.clone())
            .await
            .expect("an empty snapshot restores into an empty store");
        assert_eq!(store.snapshot().await.unwrap(), snapshot);
    }

    /// Restoring into a store that holds anything is refused and changes nothing.
    pub async fn restore_refuses_a_non_empty_store(store: &dyn Store) {
        super::populate(store).await;
        let before = store.snapshot().await.expect("snapshot");
        assert!(before.total_rows() > 0);
        match store.restore_snapshot(before.clone()).await {
            Err(StoreError::Refused(msg)) => assert!(msg.contains("not empty"), "{msg}"),
            other => panic!("restore into a non-empty store: expected Refused, got {other:?}"),
        }
        // Even one meta row makes a store non-empty.
        let empty = Snapshot {
            tables: before
                .tables
                .iter()
                .map(|t| TableDump {
                    rows: vec![],
                    ..t.clone()
                })
                .collect(),
            ..before.clone()
        };
        assert!(matches!(
            store.restore_snapshot(empty).await,
            Err(StoreError::Refused(_))
        ));
        assert_eq!(store.snapshot().await.unwrap(), before);
    }

    /// A snapshot of another schema version is refused.
    pub async fn restore_refuses_another_schema_version(store: &dyn Store) {
        let mut snapshot = store.snapshot().await.expect("snapshot");
        snapshot.schema_version += 1;
        match store.restore_snapshot(snapshot.clone()).await {
            Err(StoreError::Refused(msg)) => assert!(msg.contains("schema version"), "{msg}"),
            other => panic!("restore of another schema version: expected Refused, got {other:?}"),
        }
        snapshot.schema_version -= 1;
        assert_eq!(store.snapshot().await.unwrap(), snapshot);
    }
}

/// Fills a store with at least one record of every kind, through [`Store::commit`]
/// and (audit records) [`Store::append_audit`].
async fn populate(store: &dyn Store) -> Population {
    use fixtures::*;
    let alpha = tenant("alpha", "000000000001");
    let bravo = tenant("bravo", "000000000002");
    let system_a = system(alpha.id, "default");
    let system_b = system(bravo.id, "default");
    let key_a = service_key(alpha.id);
    let key_full = full_service_key(alpha.id);
    let key_b = service_key(bravo.id);
    let mut writes = vec![
        Write::PutMeta {
            key: "credential_root_key_id".into(),
            value: "x".into(),
        },
        Write::PutMeta {
            key: "ünïcødé".into(),
            value: "välue — \"quoted\"".into(),
        },
        Write::PutTenant(alpha.clone()),
        Write::PutTenant(bravo.clone()),
        Write::PutAccessKey(access_key("KCMOPERATOR", None)),
        Write::PutAccessKey(access_key("KCMALPHA1", Some(alpha.id))),
        Write::PutAccessKey(AccessKeyRecord {
            enabled: false,
            system_id: None,
            role: Role::Auditor,
            ..access_key("KCMALPHA2", Some(alpha.id))
        }),
        Write::PutAccessKey(access_key("KCMBRAVO1", Some(bravo.id))),
        Write::PutRootKey(root_key(None, 1)),
        Write::PutRootKey(root_key(Some(alpha.id), 2)),
        Write::PutRootKey(RootKeyRecord {
            lifecycle: Lifecycle::stored(KeyState::Suspended),
            origin: RootKeyOrigin::External,
            ..root_key(Some(bravo.id), 3)
        }),
        Write::PutSystem(system_a.clone()),
        Write::PutSystem(system(alpha.id, "second")),
        Write::PutSystem(system_b.clone()),
        Write::PutSystemKey(system_key(system_a.id, 1)),
        Write::PutSystemKey(system_key(system_a.id, 2)),
        Write::PutSystemKey(system_key(system_b.id, 1)),
        Write::PutServiceKey(key_a.clone()),
        Write::PutServiceKey(key_full.clone()),
        Write::PutServiceKey(key_b.clone()),
        Write::PutKeyVersion(key_version(key_a.id, 1, VersionOrigin::Creation)),
        Write::PutKeyVersion(key_version(key_full.id, 1, VersionOrigin::Creation)),
        Write::PutKeyVersion(key_version(
            key_full.id,
            2,
            VersionOrigin::AutomaticRotation,
        )),
        Write::PutKeyVersion(key_version(key_full.id, 3, VersionOrigin::OnDemandRotation)),
        Write::PutKeyVersion(key_version(key_b.id, 1, VersionOrigin::Creation)),
        Write::InsertAlias(alias(alpha.id, "alias/a", key_a.id)),
        Write::InsertAlias(alias(alpha.id, "alias/full", key_full.id)),
        Write::InsertAlias(alias(bravo.id, "alias/a", key_b.id)),
        Write::PutAuditCheckpoint(audit_checkpoint(Some(alpha.id), 2)),
        Write::PutManagedObject(managed_object(alpha.id, system_a.id, 10)),
        Write::PutManagedObject(bare_managed_object(alpha.id, system_a.id, 20)),
        Write::PutManagedObject(ManagedObjectRecord {
            kind: ObjectKind::Container,
            payload: None,
            ..managed_object(alpha.id, system_a.id, 20)
        }),
        Write::PutManagedObject(managed_object(bravo.id, system_b.id, 5)),
    ];
    for i in 0..20u32 {
        let k = service_key(alpha.id);
        writes.push(Write::PutKeyVersion(key_version(
            k.id,
            1,
            VersionOrigin::Creation,
        )));
        writes.push(Write::PutServiceKey(ServiceKeyRecord {
            description: format!("bulk key {i}"),
            ..k
        }));
    }
    ok(store, writes).await;
    let mut records = vec![
        audit_record(Some(alpha.id), 1),
        bare_audit_record(None, 1),
        bare_audit_record(Some(alpha.id), 2),
        audit_record(Some(bravo.id), 1),
    ];
    store
        .append_audit(&mut records)
        .await
        .expect("append_audit");
    Population {
        tenants: vec![alpha, bravo],
        systems: vec![system_a, system_b],
    }
}

/// What [`populate`] made that the comparison needs to start from.
struct Population {
    tenants: Vec<TenantRecord>,
    systems: Vec<SystemRecord>,
}

/// Asserts every read of the trait gives the same answer on `a` and `b`.
async fn assert_same_records(a: &dyn Store, b: &dyn Store, population: &Population) {
    let meta_keys = ["credential_root_key_id", "ünïcødé", "missing"];
    for key in meta_keys {
        assert_eq!(
            a.meta(key).await.unwrap(),
            b.meta(key).await.unwrap(),
            "meta {key}"
        );
    }
    let tenants = a.tenants().await.unwrap();
    assert_eq!(tenants, b.tenants().await.unwrap(), "tenants");
    assert_eq!(tenants.len(), population.tenants.len());
    assert_eq!(
        a.access_keys(None).await.unwrap(),
        b.access_keys(None).await.unwrap()
    );
    assert_eq!(
        a.root_keys(None).await.unwrap(),
        b.root_keys(None).await.unwrap()
    );
    for t in &tenants {
        assert_eq!(Some(t.clone()), b.tenant(t.id).await.unwrap());
        assert_eq!(Some(t.clone()), b.tenant_by_name(&t.name).await.unwrap());
        let access_keys = a.access_keys(Some(t.id)).await.unwrap();
        assert!(!access_keys.is_empty());
        assert_eq!(access_keys, b.access_keys(Some(t.id)).await.unwrap());
        for k in &access_keys {
            assert_eq!(Some(k.clone()), b.access_key(&k.id).await.unwrap());
        }
        let roots = a.root_keys(Some(t.id)).await.unwrap();
        assert_eq!(roots, b.root_keys(Some(t.id)).await.unwrap());
        for r in &roots {
            assert_eq!(Some(r.clone()), b.root_key(r.id).await.unwrap());
        }
        let systems = a.systems(t.id).await.unwrap();
        assert_eq!(systems, b.systems(t.id).await.unwrap());
        for s in &systems {
            assert_eq!(Some(s.clone()), b.system(s.id).await.unwrap());
            let objects = a.managed_objects(s.id).await.unwrap();
            assert_eq!(objects, b.managed_objects(s.id).await.unwrap());
            for o in &objects {
                assert_eq!(Some(o.clone()), b.managed_object(o.id).await.unwrap());
            }
            assert_eq!(
                Some(s.clone()),
                b.system_by_name(t.id, &s.name).await.unwrap()
            );
            for v in 1..=3 {
                assert_eq!(
                    a.system_key(s.id, v).await.unwrap(),
                    b.system_key(s.id, v).await.unwrap()
                );
            }
        }
        let keys = a.service_keys(t.id, None, 1000).await.unwrap();
        assert!(!keys.is_empty());
        assert_eq!(keys, b.service_keys(t.id, None, 1000).await.unwrap());
        for k in &keys {
            assert_eq!(Some(k.clone()), b.service_key(k.id).await.unwrap());
            let versions = a.key_versions(k.id).await.unwrap();
            assert!(!versions.is_empty());
            assert_eq!(versions, b.key_versions(k.id).await.unwrap());
            assert_eq!(
                a.aliases(t.id, Some(k.id)).await.unwrap(),
                b.aliases(t.id, Some(k.id)).await.unwrap()
            );
        }
        let aliases = a.aliases(t.id, None).await.unwrap();
        assert!(!aliases.is_empty());
        assert_eq!(aliases, b.aliases(t.id, None).await.unwrap());
        for al in &aliases {
            assert_eq!(Some(al.clone()), b.alias(t.id, &al.name).await.unwrap());
        }
    }
    for s in &population.systems {
        assert!(b.system_key(s.id, 1).await.unwrap().is_some());
        assert!(!b.managed_objects(s.id).await.unwrap().is_empty());
    }
    let far = 4_000_000_000_000;
    assert_eq!(
        sorted(a.keys_due_for_deletion(far).await.unwrap()),
        sorted(b.keys_due_for_deletion(far).await.unwrap())
    );
    assert_eq!(
        sorted(a.keys_due_for_rotation(far).await.unwrap()),
        sorted(b.keys_due_for_rotation(far).await.unwrap())
    );
    assert!(!b.keys_due_for_deletion(far).await.unwrap().is_empty());
    let chains = a.audit_chains().await.unwrap();
    assert!(!chains.is_empty());
    assert_eq!(
        sorted(chains.clone()),
        sorted(b.audit_chains().await.unwrap())
    );
    for (chain, _) in chains {
        let query = checks::whole_chain(chain);
        assert_eq!(
            a.audit_records(&query).await.unwrap(),
            b.audit_records(&query).await.unwrap(),
            "audit chain {chain:?}"
        );
        assert_eq!(
            a.last_audit_checkpoint(chain).await.unwrap(),
            b.last_audit_checkpoint(chain).await.unwrap()
        );
    }
}

/// Asserts a store holds nothing, through the trait and its snapshot.
async fn assert_empty(store: &dyn Store, population: &Population) {
    assert_eq!(store.snapshot().await.unwrap().total_rows(), 0);
    assert!(store.tenants().await.unwrap().is_empty());
    assert!(store.access_keys(None).await.unwrap().is_empty());
    assert_eq!(store.meta("credential_root_key_id").await.unwrap(), None);
    for t in &population.tenants {
        assert!(store.service_keys(t.id, None, 10).await.unwrap().is_empty());
        assert!(store.aliases(t.id, None).await.unwrap().is_empty());
    }
    for s in &population.systems {
        assert!(store.managed_objects(s.id).await.unwrap().is_empty());
    }
}

/// The checks that need two fresh stores: `a` is snapshotted, `b` restored into.
pub mod pair_checks {
    use super::fixtures::*;
    use super::*;

    /// Snapshot → restore into a fresh store → every read answers the same, the
    /// snapshots of both stores are equal, and a second restore is refused.
    pub async fn snapshot_restores_every_record_into_a_fresh_store(a: &dyn Store, b: &dyn Store) {
        let population = populate(a).await;
        let snapshot = a.snapshot().await.expect("snapshot");
        assert!(snapshot.total_rows() > 40, "{:?}", snapshot.row_counts());
        // The snapshot survives its serialised form (what a backup archive carries).
        let json = serde_json::to_vec(&snapshot).expect("serialise");
        let decoded: Snapshot = serde_json::from_slice(&json).expect("deserialise");
        assert_eq!(decoded, snapshot);
        b.restore_snapshot(decoded)
            .await
            .expect("restore into a fresh store");
        assert_same_records(a, b, &population).await;
        assert_eq!(b.snapshot().await.unwrap(), snapshot, "snapshots differ");
        // Taking a snapshot changes nothing, and is deterministic.
        assert_eq!(a.snapshot().await.unwrap(), snapshot);
        match b.restore_snapshot(snapshot.clone()).await {
            Err(StoreError::Refused(_)) => {}
            other => panic!("second restore: expected Refused, got {other:?}"),
        }
        assert_eq!(b.snapshot().await.unwrap(), snapshot);
        // The restored store works as a store, and appends go on the restored
        // chains: linked after the last record the snapshot carried.
        let extra = service_key(population.tenants[0].id);
        ok(b, vec![Write::PutServiceKey(extra.clone())]).await;
        assert_eq!(b.service_key(extra.id).await.unwrap(), Some(extra));
        let chain = Some(population.tenants[0].id);
        let tail = a
            .audit_tail(chain)
            .await
            .unwrap()
            .expect("a restored chain");
        b.append_audit(&mut vec![bare_audit_record(chain, 0)])
            .await
            .expect("append_audit");
        let records = b.audit_records(&checks::whole_chain(chain)).await.unwrap();
        assert_eq!(records.len() as u64, tail.0 + 1);
        assert_eq!(records.last().unwrap().prev_hash, tail.1);
        checks::assert_chain_is_whole(&records);
    }

    /// A snapshot that fails part-way (an unknown table after the real ones;
    /// duplicated rows) leaves the target store empty.
    pub async fn restore_is_all_or_nothing(a: &dyn Store, b: &dyn Store) {
        let population = populate(a).await;
        let snapshot = a.snapshot().await.expect("snapshot");

        let mut unknown_table = snapshot.clone();
        unknown_table.tables.push(TableDump {
            name: "zz_no_such_table".into(),
            columns: vec!["x".into()],
            rows: vec![vec![Value::Integer(1)]],
        });
        assert!(b.restore_snapshot(unknown_table).await.is_err());
        assert_empty(b, &population).await;

        let mut doubled = snapshot.clone();
        for table in &mut doubled.tables {
            let rows = table.rows.clone();
            table.rows.extend(rows);
        }
        assert!(b.restore_snapshot(doubled).await.is_err());
        assert_empty(b, &population).await;

        let mut short_row = snapshot.clone();
        let last = short_row
            .tables
            .iter_mut()
            .rev()
            .find(|t| !t.rows.is_empty())
            .expect("a table with rows");
        last.rows.last_mut().expect("a row").pop();
        assert!(b.restore_snapshot(short_row).await.is_err());
        assert_empty(b, &population).await;

        // After the refusals the store is still usable for a good restore.
        b.restore_snapshot(snapshot).await.expect("restore");
        assert_same_records(a, b, &population).await;
    }

    /// A snapshot carries the `managed_objects` table (a row per object, in id
    /// order, payloads as bytes and an absent payload as NULLs), and a restore
    /// brings every object back as it was.
    pub async fn snapshot_carries_managed_objects(a: &dyn Store, b: &dyn Store) {
        let t = TenantId::new_random();
        let (s1, s2) = (SystemId::new_random(), SystemId::new_random());
        let objects = vec![
            managed_object(t, s1, 300),
            bare_managed_object(t, s1, 100),
            managed_object(t, s2, 200),
        ];
        ok(a, puts(Write::PutManagedObject, &objects)).await;
        let snapshot = a.snapshot().await.expect("snapshot");
        let table = snapshot
            .tables
            .iter()
            .find(|t| t.name == "managed_objects")
            .expect("the snapshot has the managed_objects table");
        let column = |name: &str| {
            table
                .columns
                .iter()
                .position(|c| c == name)
                .unwrap_or_else(|| panic!("managed_objects has no column {name}"))
        };
        let (id, sealed) = (column("id"), column("sealed_payload"));
        let ids: Vec<&Value> = table.rows.iter().map(|r| &r[id]).collect();
        let want: Vec<Value> = sorted(objects.iter().map(|o| o.id).collect())
            .into_iter()
            .map(|id| Value::Text(id.to_string()))
            .collect();
        assert_eq!(ids, want.iter().collect::<Vec<_>>(), "rows in id order");
        for row in &table.rows {
            let o = objects
                .iter()
                .find(|o| Value::Text(o.id.to_string()) == row[id])
                .unwrap();
            let payload = match &o.payload {
                Some(p) => Value::Blob(p.sealed.clone()),
                None => Value::Null,
            };
            assert_eq!(row[sealed], payload);
        }
        let json = serde_json::to_vec(&snapshot).expect("serialise");
        b.restore_snapshot(serde_json::from_slice(&json).expect("deserialise"))
            .await
            .expect("restore");
        for o in &objects {
            assert_eq!(b.managed_object(o.id).await.unwrap().as_ref(), Some(o));
        }
        assert_eq!(
            b.managed_objects(s1).await.unwrap(),
            vec![objects[1].clone(), objects[0].clone()]
        );
        assert_eq!(
            b.managed_objects(s2).await.unwrap(),
            vec![objects[2].clone()]
        );
        assert_eq!(b.snapshot().await.unwrap(), snapshot);
        // The restored objects can be changed like any other.
        ok(b, vec![Write::DeleteManagedObject(objects[0].id)]).await;
        assert_eq!(
            b.managed_objects(s1).await.unwrap(),
            vec![objects[1].clone()]
        );
    }

    /// A snapshot taken while commits go on sees each commit whole or not at all.
    ///
    /// `a` takes snapshots while the commits run; then the same commits are replayed
    /// one at a time on `b`, with a snapshot after each (the only states a
    /// consistent snapshot may show). Every snapshot of `a` must equal one of them.
    pub async fn snapshot_during_concurrent_writes_is_consistent(a: &dyn Store, b: &dyn Store) {
        const COMMITS: usize = 60;
        let t = TenantId::new_random();
        let keys: Vec<_> = (0..COMMITS).map(|_| service_key(t)).collect();
        // Three tables in one commit: a torn read would see some and not others.
        let batch = |i: usize| {
            vec![
                Write::PutKeyVersion(key_version(keys[i].id, 1, VersionOrigin::Creation)),
                Write::PutMeta {
                    key: "generation".into(),
                    value: i.to_string(),
                },
                Write::PutServiceKey(keys[i].clone()),
            ]
        };
        let writer = async {
            for i in 0..COMMITS {
                ok(a, batch(i)).await;
            }
        };
        let reader = async {
            let mut snapshots = Vec::new();
            for _ in 0..COMMITS {
                snapshots.push(a.snapshot().await.expect("snapshot during writes"));
                tokio::task::yield_now().await;
            }
            snapshots
        };
        let ((), snapshots) = tokio::join!(writer, reader);
        let mut states = vec![b.snapshot().await.expect("snapshot")];
        for i in 0..COMMITS {
            ok(b, batch(i)).await;
            states.push(b.snapshot().await.expect("snapshot"));
        }
        assert_eq!(a.snapshot().await.unwrap(), states[COMMITS]);
        for (n, snapshot) in snapshots.iter().enumerate() {
            assert!(
                states.contains(snapshot),
                "snapshot {n} taken during the writes is not the state after any commit: {:?}",
                snapshot.row_counts()
            );
        }
    }
}
