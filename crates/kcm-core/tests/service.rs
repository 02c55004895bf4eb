//! The core against the real embedded store and the real software keystore:
//! lifecycle at the service level, chain usability, rotation, wrap binding,
//! tenant isolation, and denials that change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kcm_core::authz::Caller;
use kcm_core::config::ServiceConfig;
use kcm_core::error::ErrorKind;
use kcm_core::keystore::KeystoreProvider;
use kcm_core::lifecycle::{KeyState, Lifecycle, ALL_STATES};
use kcm_core::model::*;
use kcm_core::service::{CreateKeyRequest, KeyRef, RootKeyChange, RootKeyImpact, Service};
use kcm_core::store::{Store, Write};
use kcm_keystore_software::SoftwareKeystore;
use kcm_test_support::service::{DataDir, ServiceFixture};

const BOUND: Duration = Duration::from_millis(40);

/// The fixture every test here starts from: a bootstrapped service whose caches
/// live at most [`BOUND`].
type Fixture = ServiceFixture;

fn config() -> ServiceConfig {
    ServiceConfig {
        revocation_bound: BOUND,
        ..ServiceConfig::default()
    }
}

async fn fixture() -> Fixture {
    ServiceFixture::with_config(config()).await
}

fn ctx() -> BTreeMap<String, String> {
    [("purpose".to_string(), "test".to_string())].into()
}

/// A ciphertext of `data` under `key`, made by the tenant-admin.
async fn encrypt(f: &Fixture, key: &KeyRef, data: &[u8]) -> Vec<u8> {
    let (_, blob) = f
        .service
        .encrypt(&f.admin, key, data, &ctx())
        .await
        .unwrap();
    blob
}

/// Asserts the tenant-admin decrypts `blob` to `data`.
async fn assert_decrypts(f: &Fixture, blob: &[u8], data: &[u8]) {
    let plain = f
        .service
        .decrypt(&f.admin, None, blob, &ctx())
        .await
        .unwrap();
    assert_eq!(plain.plaintext.expose_secret(), data);
}

/// A new key and a ciphertext of `data` under it, made by the tenant-admin.
async fn key_with_ciphertext(f: &Fixture) -> (KeyRef, Vec<u8>) {
    let key = new_key(f).await;
    let blob = encrypt(f, &key, b"data").await;
    (key, blob)
}

/// The tenant-admin's `change` of root key `root` (only previewed when `dry_run`),
/// which must be accepted.
async fn change_root(
    f: &Fixture,
    root: &str,
    change: RootKeyChange,
    dry_run: bool,
) -> RootKeyImpact {
    f.service
        .change_root_key_state(&f.admin, root, change, dry_run)
        .await
        .unwrap()
}

/// The tenant-admin's attempt to encrypt under `key`, which must be refused.
async fn refused_encrypt(f: &Fixture, key: &KeyRef) -> kcm_core::error::Error {
    refused_encrypt_by(f, &f.admin, key).await
}

/// `caller`'s attempt to encrypt under `key`, which must be refused.
async fn refused_encrypt_by(f: &Fixture, caller: &Caller, key: &KeyRef) -> kcm_core::error::Error {
    f.service
        .encrypt(caller, key, b"data", &ctx())
        .await
        .unwrap_err()
}

/// The tenant-admin's attempt to decrypt `blob`, which must be refused.
async fn refused_decrypt(f: &Fixture, blob: &[u8]) -> kcm_core::error::Error {
    f.service
        .decrypt(&f.admin, None, blob, &ctx())
        .await
        .unwrap_err()
}

/// A caller signing with access key `id`.
async fn caller_of(f: &Fixture, id: &str) -> Caller {
    Caller::new(f.service.credential(id).await.unwrap().principal.clone())
}

/// The id of the tenant's default root key.
async fn default_root(f: &Fixture) -> RootKeyId {
    let roots = f.service.list_root_keys(&f.admin).await.unwrap();
    roots.iter().find(|r| r.is_default).unwrap().id
}

/// The id `key` names (every key of these tests is named by id).
fn id_of(key: &KeyRef) -> KeyId {
    let KeyRef::Id(id) = key else { unreachable!() };
    *id
}

async fn new_key(f: &Fixture) -> KeyRef {
    let info = f
        .service
        .create_key(&f.admin, CreateKeyRequest::default())
        .await
        .unwrap();
    KeyRef::Id(info.record.id)
}

/// Schedules the deletion of `key` in the shortest window AWS allows (7 days).
async fn schedule_deletion(f: &Fixture, key: &KeyRef) {
    f.service
        .schedule_key_deletion(&f.admin, key, Some(7))
        .await
        .unwrap();
}

/// Version `version` of `system`'s key, as the store holds it.
async fn stored_system_key(f: &Fixture, system: SystemId, version: u32) -> SystemKeyRecord {
    f.store.system_key(system, version).await.unwrap().unwrap()
}

/// Root key `id`, as the store holds it.
async fn stored_root_key(f: &Fixture, id: RootKeyId) -> RootKeyRecord {
    f.store.root_key(id).await.unwrap().unwrap()
}

async fn set_key_state(f: &Fixture, key: &KeyRef, state: KeyState) {
    let mut record = f.store.service_key(id_of(key)).await.unwrap().unwrap();
    record.lifecycle = Lifecycle::stored(state);
    write_behind_the_service(f, vec![Write::PutServiceKey(record)]).await;
}

/// Commits `writes` straight to the store, as another node would, and waits out
/// the revocation bound, so the service's caches no longer hold what they replace.
async fn write_behind_the_service(f: &Fixture, writes: Vec<Write>) {
    f.store.commit(writes).await.unwrap();
    tokio::time::sleep(BOUND * 2).await;
}

#[tokio::test]
async fn every_key_state_times_every_crypto_operation() {
    let f = fixture().await;
    for state in ALL_STATES {
        let key = new_key(&f).await;
        let blob = encrypt(&f, &key, b"data").await;
        set_key_state(&f, &key, state).await;
        let encrypt = f.service.encrypt(&f.admin, &key, b"data", &ctx()).await;
        let decrypt = f.service.decrypt(&f.admin, None, &blob, &ctx()).await;
        let datakey = f
            .service
            .generate_data_key(&f.admin, &key, 32, &ctx())
            .await;
        let can_encrypt = state == KeyState::Active;
        let can_decrypt = matches!(
            state,
            KeyState::Active | KeyState::Suspended | KeyState::Compromised
        );
        assert_eq!(encrypt.is_ok(), can_encrypt, "encrypt in {state}");
        assert_eq!(datakey.is_ok(), can_encrypt, "data key in {state}");
        assert_eq!(decrypt.is_ok(), can_decrypt, "decrypt in {state}");
        let expected_kind = match state {
            KeyState::Disabled => Some(ErrorKind::KeyDisabled),
            KeyState::PendingDeletion | KeyState::PreActive => Some(ErrorKind::InvalidState),
            KeyState::Destroyed | KeyState::DestroyedCompromised => Some(ErrorKind::NotFound),
            _ => None,
        };
        if let (Some(kind), Err(e)) = (expected_kind, encrypt) {
            assert_eq!(e.kind(), kind, "encrypt error in {state}");
        }
    }
}

/// Sets the state of the default system's key and root, as the kill switch will.
async fn set_chain(f: &Fixture, system_key: KeyState, root: KeyState) {
    let tenant = f
        .store
        .tenant(f.admin.principal.tenant_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut sk = stored_system_key(f, tenant.default_system_id, 1).await;
    let mut rk = stored_root_key(f, tenant.default_root_key_id).await;
    sk.lifecycle = Lifecycle::stored(system_key);
    rk.lifecycle = Lifecycle::stored(root);
    write_behind_the_service(f, vec![Write::PutSystemKey(sk), Write::PutRootKey(rk)]).await;
}

#[tokio::test]
async fn a_key_is_usable_only_if_every_key_above_it_is() {
    let f = fixture().await;
    let (key, blob) = key_with_ciphertext(&f).await;
    let cases = [
        (KeyState::Active, KeyState::Active, true, true),
        (KeyState::Active, KeyState::Disabled, false, false),
        (KeyState::Active, KeyState::Suspended, false, true),
        (KeyState::Disabled, KeyState::Active, false, false),
        (KeyState::Suspended, KeyState::Active, false, true),
        (KeyState::Active, KeyState::Compromised, false, true),
        (KeyState::Active, KeyState::Active, true, true),
    ];
    for (system_key, root, encrypt_ok, decrypt_ok) in cases {
        set_chain(&f, system_key, root).await;
        let enc = f.service.encrypt(&f.admin, &key, b"data", &ctx()).await;
        let dec = f.service.decrypt(&f.admin, None, &blob, &ctx()).await;
        assert_eq!(
            enc.is_ok(),
            encrypt_ok,
            "encrypt under L2={system_key} L1={root}"
        );
        assert_eq!(
            dec.is_ok(),
            decrypt_ok,
            "decrypt under L2={system_key} L1={root}"
        );
        if root == KeyState::Disabled {
            let e = enc.unwrap_err();
            assert!(e.message().contains("root key"), "{e}");
        }
    }
}

#[tokio::test]
async fn old_ciphertexts_decrypt_after_rotation() {
    let f = fixture().await;
    let key = new_key(&f).await;
    let mut blobs = Vec::new();
    for i in 0..4u8 {
        let (_, blob) = f
            .service
            .encrypt(&f.admin, &key, &[i; 16], &ctx())
            .await
            .unwrap();
        blobs.push(blob);
        f.service
            .rotate_key_on_demand(&f.admin, &key)
            .await
            .unwrap();
    }
    let info = f.service.describe_key(&f.admin, &key).await.unwrap();
    assert_eq!(info.record.primary_version, 5);
    for (i, blob) in blobs.iter().enumerate() {
        let header = kcm_core::crypto::CiphertextHeader::parse(blob).unwrap();
        assert_eq!(header.key_version, i as u32 + 1);
        let out = f
            .service
            .decrypt(&f.admin, Some(&key), blob, &ctx())
            .await
            .unwrap();
        assert_eq!(out.plaintext.expose_secret(), &[i as u8; 16]);
    }
    let (_, fresh) = f
        .service
        .encrypt(&f.admin, &key, b"new", &ctx())
        .await
        .unwrap();
    assert_eq!(
        kcm_core::crypto::CiphertextHeader::parse(&fresh)
            .unwrap()
            .key_version,
        5
    );
    let (rotations, _) = f
        .service
        .list_key_rotations(&f.admin, &key, None, None)
        .await
        .unwrap();
    assert_eq!(rotations.len(), 4);
}

#[tokio::test]
async fn a_wrapped_version_moved_to_another_key_does_not_unwrap() {
    let f = fixture().await;
    let a = new_key(&f).await;
    let b = new_key(&f).await;
    let a_version = f.store.key_versions(id_of(&a)).await.unwrap().remove(0);
    let moved = KeyVersionRecord {
        key_id: id_of(&b),
        ..a_version
    };
    write_behind_the_service(&f, vec![Write::PutKeyVersion(moved)]).await;
    let err = refused_encrypt(&f, &b).await;
    assert_eq!(err.kind(), ErrorKind::Internal);
    // The original key is unaffected.
    f.service
        .encrypt(&f.admin, &a, b"data", &ctx())
        .await
        .unwrap();
}

#[tokio::test]
async fn credential_debug_does_not_show_the_secret() {
    let f = fixture().await;
    let new = f
        .service
        .create_access_key(&f.admin, Role::KeyUser, None, None, String::new())
        .await
        .unwrap();
    let credential = f.service.credential(&new.info.id).await.unwrap();
    let shown = format!("{credential:?}");
    assert!(shown.contains(&new.info.id), "{shown}");
    assert!(shown.contains("REDACTED"), "{shown}");
    assert!(!shown.contains(new.secret.expose_secret()), "{shown}");
}

#[tokio::test]
async fn tenants_are_isolated() {
    let f = fixture().await;
    let other = f.service.create_tenant(&f.operator, "other").await.unwrap();
    let other_admin = caller_of(&f, &other.access_key.info.id).await;
    let key = new_key(&f).await;
    let blob = encrypt(&f, &key, b"secret").await;
    // Another tenant's key is answered exactly as a key that does not exist: by
    // reference NotFound, through a ciphertext InvalidCiphertext — the same error,
    // word for word, as a ciphertext naming a key id no tenant has.
    let err = f
        .service
        .decrypt(&other_admin, None, &blob, &ctx())
        .await
        .unwrap_err();
    let mut unknown_key = blob.clone();
    let header_key = &mut unknown_key[1..17];
    header_key.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let absent = f
        .service
        .decrypt(&other_admin, None, &unknown_key, &ctx())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCiphertext);
    assert_eq!(err, absent);
    assert!(
        other_admin.noted_keys().is_empty(),
        "another tenant's key must not be named in the caller's audit record"
    );
    let err = f
        .service
        .describe_key(&other_admin, &key)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = refused_encrypt_by(&f, &other_admin, &key).await;
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // The operator manages tenants but cannot use or see tenant keys.
    let err = refused_encrypt_by(&f, &f.operator, &key).await;
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
}

#[tokio::test]
async fn denials_change_nothing() {
    let f = fixture().await;
    let key = new_key(&f).await;
    let user = f
        .service
        .create_access_key(&f.admin, Role::KeyUser, None, None, String::new())
        .await
        .unwrap();
    let user = caller_of(&f, &user.info.id).await;
    let before = f.service.describe_key(&f.admin, &key).await.unwrap().record;
    let err = f.service.disable_key(&user, &key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    let err = f
        .service
        .schedule_key_deletion(&user, &key, Some(7))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    let err = f
        .service
        .create_key(&user, CreateKeyRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    let after = f.service.describe_key(&f.admin, &key).await.unwrap().record;
    assert_eq!(before, after);
    let page = f.service.list_keys(&f.admin, None, None).await.unwrap();
    assert_eq!(page.keys.len(), 1);
}

#[tokio::test]
async fn deletion_window_end_destroys_material() {
    let dir_fixture = fixture().await;
    let f = &dir_fixture;
    let key = new_key(f).await;
    let blob = encrypt(f, &key, b"data").await;
    schedule_deletion(f, &key).await;
    // The window has not ended: nothing is destroyed.
    assert_eq!(f.service.run_due_work().await.unwrap(), 0);
    let id = id_of(&key);
    let mut record = f.store.service_key(id).await.unwrap().unwrap();
    record.deletion_at = Some(0);
    f.store
        .commit(vec![Write::PutServiceKey(record)])
        .await
        .unwrap();
    assert_eq!(f.service.run_due_work().await.unwrap(), 1);
    assert!(f.store.key_versions(id).await.unwrap().is_empty());
    assert_eq!(
        f.service
            .describe_key(&f.admin, &key)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    // Nor does a ciphertext made under it decrypt.
    refused_decrypt(f, &blob).await;
}

/// Access keys made before secrets were derived (stored sealed by the credential
/// root) keep authenticating after an upgrade; new keys store only a verifier.
#[tokio::test]
async fn access_keys_stored_sealed_by_an_older_kcm_still_authenticate() {
    use kcm_core::crypto::WrapBinding;
    use kcm_core::secret::SecretBytes;
    let f = fixture().await;
    let root_id = f
        .store
        .meta("credential_root_key_id")
        .await
        .unwrap()
        .unwrap();
    let root = f
        .store
        .root_key(RootKeyId::parse(&root_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let tenant = f.admin.principal.tenant_id.unwrap();
    let id = "KCMLEGACYLEGACY00001";
    let secret = "legacy-secret-legacy-secret-legacy-secre";
    let aad = WrapBinding::AccessKeySecret {
        tenant: Some(tenant),
        access_key_id: id,
        root: root.id,
    }
    .to_aad();
    let sealed = f
        .keystore
        .wrap(
            &root.handle,
            &SecretBytes::copy_from(secret.as_bytes()),
            &aad,
        )
        .await
        .unwrap();
    f.store
        .commit(vec![kcm_core::store::Write::PutAccessKey(
            AccessKeyRecord {
                id: id.into(),
                tenant_id: Some(tenant),
                role: Role::KeyUser,
                system_id: None,
                secret: StoredSecret::Sealed(sealed),
                operations: None,
                description: "made by an older kcm".into(),
                enabled: true,
                created_at: 0,
            },
        )])
        .await
        .unwrap();
    let principal = f.service.authenticate_bearer(id, secret).await.unwrap();
    assert_eq!(principal.role, Role::KeyUser);
    // A wrong secret is answered exactly as an access key that does not exist.
    let wrong = f
        .service
        .authenticate_bearer(id, "wrong")
        .await
        .unwrap_err();
    let unknown = f
        .service
        .authenticate_bearer("KCMNOSUCHKEYNOSUCH01", "wrong")
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.kind(), wrong.message()),
        (unknown.kind(), unknown.message())
    );
    // A new key: derived secret, verifier only.
    let new = f
        .service
        .create_access_key(&f.admin, Role::KeyUser, None, None, String::new())
        .await
        .unwrap();
    let stored = f.store.access_key(&new.info.id).await.unwrap().unwrap();
    assert!(
        matches!(stored.secret, StoredSecret::Derived { .. }),
        "{stored:?}"
    );
    f.service
        .authenticate_bearer(&new.info.id, new.secret.expose_secret())
        .await
        .unwrap();
}

/// Many requests recording at once share group commits, and the chain they make
/// is contiguous and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_audit_records_form_one_intact_chain() {
    use kcm_core::audit::verify::verify_chain;
    use kcm_core::audit::AuditEvent;
    let f = Arc::new(fixture().await);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            let caller = Caller::new(f.admin.principal.clone());
            f.service
                .record_audit(AuditEvent {
                    front_door: "test",
                    operation: "Encrypt",
                    request_id: &format!("req-{i}"),
                    source: None,
                    client_request_id: None,
                    detail: None,
                    caller: Some(&caller),
                    claimed_access_key: None,
                    outcome: AuditOutcome::Success,
                    error: None,
                })
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tenant = f.admin.principal.tenant_id;
    let records = f
        .store
        .audit_records(&AuditQuery {
            tenant,
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 200);
    assert!(records
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq == i as u64 + 1));
    let report = verify_chain(&records, &[], None, None);
    assert!(report.is_intact(), "{report:?}");
    // A signed checkpoint covers the chain's end.
    assert!(f.service.write_audit_checkpoints().await.unwrap() >= 1);
    let last = f
        .store
        .last_audit_checkpoint(tenant)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.seq, 200);
}

/// Two services on one store (two nodes) end up with one audit signing key: the
/// second to create one uses the first's.
#[tokio::test]
async fn two_services_on_one_store_share_one_audit_signing_key() {
    let f = fixture().await;
    let other = f.another_node(config());
    let (a, b) = tokio::join!(
        f.service.audit_signing_public_key(&f.admin),
        other.audit_signing_public_key(&f.admin)
    );
    assert_eq!(a.unwrap(), b.unwrap());
}

/// A keystore that remembers which root keys were created and destroyed.
struct Recording {
    inner: Arc<SoftwareKeystore>,
    created: std::sync::Mutex<Vec<Vec<u8>>>,
    destroyed: std::sync::Mutex<Vec<Vec<u8>>>,
    unreachable: std::sync::atomic::AtomicBool,
}

impl Recording {
    /// A fresh data directory whose software keystore is wrapped in a `Recording`,
    /// and a service over both.
    fn service() -> (DataDir, Arc<Recording>, Service) {
        let data = DataDir::new();
        let recording = Arc::new(Recording {
            inner: data.keystore.clone(),
            created: Default::default(),
            destroyed: Default::default(),
            unreachable: Default::default(),
        });
        let service = data.service_with(recording.clone(), ServiceConfig::default());
        (data, recording, service)
    }
}

#[async_trait::async_trait]
impl KeystoreProvider for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }
    fn capabilities(&self) -> kcm_core::keystore::Capabilities {
        self.inner.capabilities()
    }
    async fn health(&self) -> kcm_core::keystore::KeystoreResult<()> {
        if self.unreachable.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(kcm_core::keystore::KeystoreError::Unavailable(
                "switched off by the test".into(),
            ));
        }
        self.inner.health().await
    }
    async fn create_root_key(&self, label: &str) -> kcm_core::keystore::KeystoreResult<Vec<u8>> {
        let handle = self.inner.create_root_key(label).await?;
        self.created.lock().unwrap().push(handle.clone());
        Ok(handle)
    }
    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &kcm_core::secret::SecretBytes,
        aad: &[u8],
    ) -> kcm_core::keystore::KeystoreResult<Vec<u8>> {
        self.inner.wrap(handle, plaintext, aad).await
    }
    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> kcm_core::keystore::KeystoreResult<kcm_core::secret::SecretBytes> {
        self.inner.unwrap(handle, wrapped, aad).await
    }
    async fn destroy(&self, handle: &[u8]) -> kcm_core::keystore::KeystoreResult<()> {
        self.destroyed.lock().unwrap().push(handle.to_vec());
        self.inner.destroy(handle).await
    }
}

/// A first start that fails before its commit erases the root keys it generated
/// (in an HSM they would otherwise stay behind, unused), and commits nothing.
#[tokio::test]
async fn a_failed_bootstrap_erases_the_root_keys_it_generated() {
    let (data, recording, service) = Recording::service();
    let err = service
        .bootstrap_if_fresh(|_| Err(std::io::Error::other("disk full")))
        .await
        .unwrap_err();
    // The detail ("disk full") goes to the log; the caller sees an internal error.
    assert_eq!(err.kind(), ErrorKind::Internal);
    let mut created = recording.created.lock().unwrap().clone();
    let mut destroyed = recording.destroyed.lock().unwrap().clone();
    created.sort();
    destroyed.sort();
    assert_eq!(
        created.len(),
        2,
        "the credential root and the default tenant's root"
    );
    assert_eq!(created, destroyed);
    assert!(data.store.root_keys(None).await.unwrap().is_empty());
}

/// The kill switch takes effect on the node that threw it at once, whatever the
/// revocation bound (its caches are dropped), and a dry run changes nothing.
#[tokio::test]
async fn disabling_a_root_key_refuses_keys_below_it_at_once() {
    let f = fixture().await;
    let key = new_key(&f).await;
    // Load the key into the hot-path cache.
    let blob = encrypt(&f, &key, b"data").await;
    let root = default_root(&f).await.to_string();

    let preview = change_root(&f, &root, RootKeyChange::Disable, true).await;
    assert!(!preview.applied);
    assert_eq!(preview.new_state, KeyState::Disabled);
    assert_eq!(preview.systems.len(), 1);
    assert_eq!(preview.systems[0].service_keys.len(), 1);
    f.service
        .encrypt(&f.admin, &key, b"data", &ctx())
        .await
        .expect("a dry run changes nothing");

    change_root(&f, &root, RootKeyChange::Disable, false).await;
    // No sleep: the bound of the fixture is irrelevant on this node.
    let refused = refused_encrypt(&f, &key).await;
    assert_eq!(refused.kind(), ErrorKind::KeyDisabled);
    let refused = refused_decrypt(&f, &blob).await;
    assert_eq!(refused.kind(), ErrorKind::KeyDisabled);

    let err = f
        .service
        .change_root_key_state(&f.admin, &root, RootKeyChange::Suspend, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    change_root(&f, &root, RootKeyChange::Enable, false).await;
    assert_decrypts(&f, &blob, b"data").await;
}

/// A system whose root key's keystore does not answer says so in its status.
#[tokio::test]
async fn a_system_below_an_unreachable_keystore_is_locked() {
    let (data, recording, service) = Recording::service();
    let ServiceFixture { service, admin, .. } = ServiceFixture::bootstrap(data, service).await;
    let status = |info: kcm_core::service::SystemInfo| info.status.describe();
    let system = service.get_system(&admin, "default").await.unwrap();
    assert_eq!(status(system), "connected");
    recording
        .unreachable
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let system = service.get_system(&admin, "default").await.unwrap();
    assert_eq!(status(system), "locked: keystore software is unreachable");
}

/// A system key rotation re-wraps every key version below it and then erases the
/// old system key; ciphertexts made before decrypt throughout and after.
#[tokio::test]
async fn rotating_a_system_key_rewraps_below_and_erases_the_old_version() {
    let f = fixture().await;
    let key = new_key(&f).await;
    let blob = encrypt(&f, &key, b"before").await;
    let started = f
        .service
        .rotate_system_key(&f.admin, "default")
        .await
        .unwrap();
    assert_eq!(started.system.record.active_key_version, 2);
    assert_eq!(started.remaining, 1);
    let system = started.system.record.id;
    assert!(!stored_system_key(&f, system, 1)
        .await
        .lifecycle
        .state()
        .is_destroyed());
    f.service
        .decrypt(&f.admin, None, &blob, &ctx())
        .await
        .expect("decrypts mid-rotation");
    let done = f
        .service
        .rewrap_system_keys(&f.admin, "default", 10)
        .await
        .unwrap();
    assert_eq!((done.rewrapped, done.remaining), (1, 0));
    let old = stored_system_key(&f, system, 1).await;
    assert_eq!(old.lifecycle.state(), KeyState::Destroyed);
    assert!(
        old.wrapped.is_empty(),
        "the old system key's material is erased"
    );
    let id = id_of(&key);
    assert!(f
        .store
        .key_versions(id)
        .await
        .unwrap()
        .iter()
        .all(|v| v.system_key_version == 2));
    assert_decrypts(&f, &blob, b"before").await;
}

/// Rotating a root key re-wraps the system keys below it with new material; the
/// keys below keep working, and an imported root key is not rotated by kcm.
#[tokio::test]
async fn rotating_a_root_key_rewraps_its_system_keys() {
    let f = fixture().await;
    let (_, blob) = key_with_ciphertext(&f).await;
    let root = default_root(&f).await;
    let system = f.service.get_system(&f.admin, "default").await.unwrap();
    let before = stored_system_key(&f, system.record.id, 1).await;
    let old_handle = stored_root_key(&f, root).await.handle;
    f.service
        .rotate_root_key(&f.admin, &root.to_string())
        .await
        .unwrap();
    let after = stored_system_key(&f, system.record.id, 1).await;
    assert_ne!(
        before.wrapped, after.wrapped,
        "the system key is re-wrapped"
    );
    assert_ne!(old_handle, stored_root_key(&f, root).await.handle);
    assert_decrypts(&f, &blob, b"data").await;
}

#[tokio::test]
async fn one_node_at_a_time_holds_the_scheduler_lease() {
    let f = fixture().await;
    // A second node on the same store.
    let other = f.another_node(ServiceConfig::default());
    assert_ne!(f.service.node_id(), other.node_id());
    // Long enough never to run out between two calls on a loaded machine.
    let period = Duration::from_secs(30);
    let short = Duration::from_millis(300);

    assert!(f.service.hold_scheduler_lease(period).await);
    assert!(
        !other.hold_scheduler_lease(period).await,
        "held by the first node"
    );
    assert!(
        f.service.hold_scheduler_lease(period).await,
        "the holder renews"
    );
    assert!(!other.hold_scheduler_lease(period).await);

    // Given up: the other node takes it at once (for a short lease this time).
    f.service.release_scheduler_lease().await;
    assert!(other.hold_scheduler_lease(short).await);
    assert!(!f.service.hold_scheduler_lease(period).await);

    // A holder that stops renewing loses it once it runs out.
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert!(
        f.service.hold_scheduler_lease(period).await,
        "taken over after expiry"
    );
    assert!(
        !other.hold_scheduler_lease(period).await,
        "the old holder learns it lost"
    );
}

/// Every operator transition of a service key, from every state, through the
/// service: what the transition table allows happens (and only that), and a refused
/// transition leaves the key as it was. Destroyed keys are invisible (NotFound);
/// only a compromised key is destroyed at once (others wait out a deletion window).
#[tokio::test]
async fn every_key_state_times_every_operator_transition() {
    use kcm_core::lifecycle::Transition as T;
    let f = fixture().await;
    let transitions = [
        T::Enable,
        T::Disable,
        T::ScheduleDeletion,
        T::CancelDeletion,
        T::MarkCompromised,
        T::Destroy,
    ];
    for from in ALL_STATES {
        for transition in transitions {
            let key = new_key(&f).await;
            set_key_state(&f, &key, from).await;
            let (s, admin) = (&f.service, &f.admin);
            let result = match transition {
                T::Enable => s.enable_key(admin, &key).await,
                T::Disable => s.disable_key(admin, &key).await,
                T::ScheduleDeletion => s.schedule_key_deletion(admin, &key, Some(7)).await,
                T::CancelDeletion => s.cancel_key_deletion(admin, &key).await,
                T::MarkCompromised => s.mark_key_compromised(admin, &key).await,
                T::Destroy => s.destroy_compromised_key(admin, &key).await,
                other => unreachable!("{other:?} is not an operator transition"),
            };
            let expected = match (from, transition) {
                _ if from.is_destroyed() => None,
                (KeyState::PendingDeletion, T::Destroy) => None,
                _ => from.transition(transition).ok(),
            };
            let id = id_of(&key);
            let stored = f.store.service_key(id).await.unwrap().unwrap();
            let label = format!("{from} -{transition:?}->");
            match (result, expected) {
                (Ok(info), Some(to)) => {
                    assert_eq!(info.record.lifecycle.state(), to, "{label}");
                    assert_eq!(stored.lifecycle.state(), to, "{label} (stored)");
                }
                (Err(e), None) => {
                    let kinds = if from.is_destroyed() {
                        vec![ErrorKind::NotFound]
                    } else {
                        vec![ErrorKind::InvalidState, ErrorKind::KeyDisabled]
                    };
                    assert!(kinds.contains(&e.kind()), "{label}: {e:?}");
                    assert_eq!(stored.lifecycle.state(), from, "{label} changed the key");
                }
                (got, want) => panic!("{label}: got {got:?}, expected {want:?}"),
            }
        }
    }
}

/// A compromised key decrypts (to recover data) and does nothing new; every audit
/// note of it says compromised; it cannot be enabled, rescheduled or re-imported
/// into use; destroying it keeps the mark.
#[tokio::test]
async fn a_compromised_key_only_recovers_data_and_keeps_its_mark() {
    let f = fixture().await;
    let (key, blob) = key_with_ciphertext(&f).await;
    schedule_deletion(&f, &key).await;
    let marked = f
        .service
        .mark_key_compromised(&f.admin, &key)
        .await
        .unwrap();
    assert_eq!(marked.record.lifecycle.state(), KeyState::Compromised);
    assert_eq!(
        marked.record.deletion_at, None,
        "marking cancels a scheduled deletion"
    );

    // Decrypt works at once on this node (its cache was dropped), and its audit note
    // carries the mark.
    let caller = Caller::new(f.admin.principal.clone());
    let plain = f
        .service
        .decrypt(&caller, None, &blob, &ctx())
        .await
        .unwrap();
    assert_eq!(plain.plaintext.expose_secret(), b"data");
    let notes = caller.noted_keys();
    assert!(notes.len() == 1 && notes[0].compromised, "{notes:?}");

    let refused = refused_encrypt(&f, &key).await;
    assert_eq!(refused.kind(), ErrorKind::InvalidState);
    assert!(refused.message().contains("compromised"), "{refused}");
    for refused in [
        f.service.enable_key(&f.admin, &key).await.unwrap_err(),
        f.service
            .schedule_key_deletion(&f.admin, &key, Some(7))
            .await
            .unwrap_err(),
        f.service
            .cancel_key_deletion(&f.admin, &key)
            .await
            .unwrap_err(),
        f.service
            .generate_data_key(&f.admin, &key, 32, &ctx())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.kind(), ErrorKind::InvalidState, "{refused}");
    }

    let destroyed = f
        .service
        .destroy_compromised_key(&f.admin, &key)
        .await
        .unwrap();
    assert_eq!(
        destroyed.record.lifecycle.state(),
        KeyState::DestroyedCompromised
    );
    let id = id_of(&key);
    assert!(
        f.store.key_versions(id).await.unwrap().is_empty(),
        "material erased"
    );
    // Gone: its ciphertexts are as those of a key that never existed.
    let gone = refused_decrypt(&f, &blob).await;
    assert_eq!(gone.kind(), ErrorKind::InvalidCiphertext);
}

/// Only a compromised key is destroyed at once; a key pending deletion waits.
#[tokio::test]
async fn only_a_compromised_key_is_destroyed_at_once() {
    let f = fixture().await;
    let key = new_key(&f).await;
    schedule_deletion(&f, &key).await;
    let err = f
        .service
        .destroy_compromised_key(&f.admin, &key)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    let id = id_of(&key);
    let stored = f.store.service_key(id).await.unwrap().unwrap();
    assert_eq!(stored.lifecycle.state(), KeyState::PendingDeletion);
    assert!(!f.store.key_versions(id).await.unwrap().is_empty());
}

/// A root key marked compromised leaves everything below it decrypt-only for good:
/// it cannot be enabled again.
#[tokio::test]
async fn a_compromised_root_key_leaves_everything_below_decrypt_only() {
    let f = fixture().await;
    let (key, blob) = key_with_ciphertext(&f).await;
    let root = default_root(&f).await.to_string();
    let impact = change_root(&f, &root, RootKeyChange::MarkCompromised, false).await;
    assert!(impact.applied);
    assert_eq!(impact.new_state, KeyState::Compromised);
    let refused = refused_encrypt(&f, &key).await;
    assert_eq!(refused.kind(), ErrorKind::InvalidState);
    f.service
        .decrypt(&f.admin, None, &blob, &ctx())
        .await
        .expect("data below a compromised root can be recovered");
    for change in [
        RootKeyChange::Enable,
        RootKeyChange::Suspend,
        RootKeyChange::Disable,
    ] {
        let err = f
            .service
            .change_root_key_state(&f.admin, &root, change, false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState, "{change:?}");
    }
}

/// A key named with an account (as an AWS ARN names one) is the caller's key when the
/// account is its tenant's; in any other account it names no key the caller can see,
/// so it is not found, existing key or not, in the words of a key that does not exist
/// (as AWS answers an ARN of another account). The role is still judged first.
#[tokio::test]
async fn a_key_named_in_another_account_is_not_found_whether_it_exists_or_not() {
    let f = fixture().await;
    let key = new_key(&f).await;
    let alias = KeyRef::Alias("alias/mine".into());
    f.service
        .create_alias(&f.admin, "alias/mine", &key)
        .await
        .unwrap();
    let own = f.admin.principal.account_id.clone();
    let in_account = |account: &str, key: &KeyRef| KeyRef::InAccount {
        account: account.to_string(),
        key: Box::new(key.clone()),
    };
    f.service
        .encrypt(&f.admin, &in_account(&own, &key), b"data", &ctx())
        .await
        .expect("the caller's own account");
    f.service
        .encrypt(&f.admin, &in_account(&own, &alias), b"data", &ctx())
        .await
        .expect("the caller's own account");
    let missing = KeyRef::Id(KeyId::new_random());
    let missing_alias = KeyRef::Alias("alias/missing".into());
    let absent = refused_encrypt(&f, &in_account(&own, &missing)).await;
    let absent_alias = refused_encrypt(&f, &in_account(&own, &missing_alias)).await;
    assert_eq!(absent.kind(), ErrorKind::NotFound, "{absent}");
    // The answer is the one for a missing key of the caller's own account, id for id.
    let as_missing = |err: &kcm_core::error::Error,
                      named: &KeyRef,
                      control: &kcm_core::error::Error,
                      control_named: &KeyRef| {
        assert_eq!(err.kind(), control.kind(), "{err}");
        assert_eq!(
            err.message().replace(&named.to_string(), "<key>"),
            control
                .message()
                .replace(&control_named.to_string(), "<key>"),
        );
    };
    for account in ["999999999999", "000000000000"] {
        for target in [&key, &missing] {
            let caller = Caller::new(f.admin.principal.clone());
            let err = refused_encrypt_by(&f, &caller, &in_account(account, target)).await;
            as_missing(&err, target, &absent, &missing);
            assert!(
                caller.noted_keys().is_empty(),
                "no key is noted for the audit record"
            );
            let err = f
                .service
                .disable_key(&f.admin, &in_account(account, target))
                .await
                .unwrap_err();
            as_missing(&err, target, &absent, &missing);
            let err = f
                .service
                .decrypt(
                    &f.admin,
                    Some(&in_account(account, target)),
                    &encrypt(&f, &key, b"d").await,
                    &ctx(),
                )
                .await
                .unwrap_err();
            as_missing(&err, target, &absent, &missing);
        }
        for target in [&alias, &missing_alias] {
            let err = refused_encrypt(&f, &in_account(account, target)).await;
            as_missing(&err, target, &absent_alias, &missing_alias);
        }
    }
    // A caller whose role may not manage keys is denied management before anything
    // about the key is said.
    let user = f
        .service
        .create_access_key(&f.admin, Role::KeyUser, None, None, String::new())
        .await
        .unwrap();
    let user = caller_of(&f, &user.info.id).await;
    let err = f
        .service
        .disable_key(&user, &in_account("999999999999", &key))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    let err = refused_encrypt_by(&f, &user, &in_account("999999999999", &key)).await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// A destroyed key is gone: a ciphertext made under it is answered exactly as one
/// naming a key that never existed, and the audit record names no key.
#[tokio::test]
async fn a_destroyed_keys_ciphertext_is_answered_as_one_of_no_key() {
    let f = fixture().await;
    for state in [KeyState::Destroyed, KeyState::DestroyedCompromised] {
        let (key, blob) = key_with_ciphertext(&f).await;
        let mut no_key = blob.clone();
        no_key[1..17].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        set_key_state(&f, &key, state).await;
        let absent = refused_decrypt(&f, &no_key).await;
        assert_eq!(absent.kind(), ErrorKind::InvalidCiphertext);
        let caller = Caller::new(f.admin.principal.clone());
        let err = f
            .service
            .decrypt(&caller, None, &blob, &ctx())
            .await
            .unwrap_err();
        assert_eq!(err, absent, "{state}");
        assert!(caller.noted_keys().is_empty(), "{state}");
        // Naming the key too changes nothing.
        let named = f
            .service
            .decrypt(&f.admin, Some(&key), &blob, &ctx())
            .await
            .unwrap_err();
        let named_absent = f
            .service
            .decrypt(
                &f.admin,
                Some(&KeyRef::Id(KeyId(
                    uuid::Uuid::from_slice(&no_key[1..17]).unwrap(),
                ))),
                &no_key,
                &ctx(),
            )
            .await
            .unwrap_err();
        assert_eq!(named, named_absent, "{state}");
    }
}

/// On a single-node store (SQLite, which has no cluster-wide change lock:
/// `Store::lock_changes` is `None`), the service's own lock serialises changes that
/// read, decide and write one record: many concurrent TagResource calls on one key,
/// each adding its own tag, lose none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_service_lock_serialises_changes_on_a_single_node_store() {
    let f = Arc::new(fixture().await);
    assert!(f.store.lock_changes().await.unwrap().is_none());
    let key = new_key(&f).await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (f, key) = (Arc::clone(&f), key.clone());
            tokio::spawn(async move {
                f.service
                    .tag_key(
                        &f.admin,
                        &key,
                        [(format!("tag-{i:02}"), i.to_string())].into(),
                    )
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let tags = f.service.list_resource_tags(&f.admin, &key).await.unwrap();
    let expected: BTreeMap<String, String> = (0..24)
        .map(|i| (format!("tag-{i:02}"), i.to_string()))
        .collect();
    assert_eq!(tags, expected);
    // And in the store itself, not only in a cache.
    let KeyRef::Id(id) = key else { unreachable!() };
    assert_eq!(
        f.store.service_key(id).await.unwrap().unwrap().tags,
        expected
    );
}
