//! Golden fixtures: what kcm wrote on disk and on the wire, kept as files, and
//! read back by every later build (format compatibility).
//!
//! Each set under `tests/golden/service/` (`set-1`, …) was made once by
//! [`generate_golden_set`] with the kcm of its manifest's `kcm_commit`, from the
//! fixed TEST-ONLY master key and key material below: a bootstrapped service over
//! the SQLite store and the software keystore (its data directory, `world/`),
//! ciphertexts of every kind it makes, signatures and MACs, BYOK import tokens with
//! wrapped material, a managed object, an audit chain with linked checkpoints and a
//! signed head (exported as `kcm audit export --checkpoints` writes it), and a
//! backup archive of it all. The tests below open each set with the current code
//! and check the exact results its manifest names. A set is never regenerated to
//! make a test pass: a new format version adds a new set (see
//! `tests/golden/README.md`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use kcm_core::audit::export::{read_export, ExportLine};
use kcm_core::audit::verify::verify_chain;
use kcm_core::audit::{checkpoint_signature, head_signature_valid, AuditEvent, Signature};
use kcm_core::authz::{Caller, Principal};
use kcm_core::backup::{self, ArchiveReader};
use kcm_core::config::ServiceConfig;
use kcm_core::crypto::CiphertextHeader;
use kcm_core::error::ErrorKind;
use kcm_core::keyspec::{EncryptionAlgorithm, MacAlgorithm, MessageType, SigningAlgorithm};
use kcm_core::model::*;
use kcm_core::secret::SecretBytes;
use kcm_core::service::{CreateKeyRequest, KeyRef, NewObject, Service, MAX_REWRAP_BATCH};
use kcm_core::store::Store;
use kcm_test_support::service::{DataDir, ServiceFixture};
use serde_json::{json, Value};

/// Where the sets live.
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/service")
}

/// The master key of every set's software keystore. A TEST KEY, public in this
/// repository: it protects nothing but these fixtures.
const TEST_MASTER_KEY_HEX: &str =
    "6b636d2d676f6c64656e2d746573742d6d61737465722d6b65792d6f6e6c7921";
/// The customer's key material imported with BYOK (a TEST KEY).
const TEST_BYOK_MATERIAL: [u8; 32] = *b"kcm golden BYOK test material 01";
/// The root key material imported with BYOK (a TEST KEY).
const TEST_BYOK_ROOT_MATERIAL: [u8; 32] = *b"kcm golden BYOK test root key 02";
/// The lifetime of the import token the tests redeem: long enough never to expire.
const LONG_TOKEN_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(200 * 365 * 24 * 60 * 60);

/// The message every signature and MAC covers.
const SIGNED_MESSAGE: &[u8] = b"kcm golden fixture: a message signed by today's code";

fn context(purpose: &str) -> BTreeMap<String, String> {
    [
        ("purpose".to_string(), purpose.to_string()),
        ("fixture".to_string(), "golden".to_string()),
    ]
    .into()
}

// ---------------------------------------------------------------------------
// Reading a set
// ---------------------------------------------------------------------------

/// One set: its directory and manifest.
struct Set {
    dir: PathBuf,
    manifest: Value,
}

impl Set {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.file(name))
            .unwrap_or_else(|e| panic!("{}: {e}", self.file(name).display()))
    }

    fn str(&self, pointer: &str) -> &str {
        self.manifest
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: no string at {pointer}", self.dir.display()))
    }

    fn u64(&self, pointer: &str) -> u64 {
        self.manifest
            .pointer(pointer)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{}: no number at {pointer}", self.dir.display()))
    }

    fn key(&self, name: &str) -> KeyRef {
        KeyRef::Id(KeyId::parse(self.str(&format!("/keys/{name}/id"))).expect("a key id"))
    }

    fn hex(&self, pointer: &str) -> Vec<u8> {
        hex::decode(self.str(pointer)).expect("hex")
    }

    /// The master key file, copied owner-only (git keeps no file modes but the
    /// executable bit) to `into`.
    fn master_key(&self, into: &Path) -> PathBuf {
        let path = into.join("master.key");
        std::fs::copy(self.file("master.key"), &path).unwrap();
        set_private(&path);
        path
    }
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn set_private(_: &Path) {}

/// Every committed set, oldest first. There is at least one.
fn sets() -> Vec<Set> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no golden set under {}",
        golden_dir().display()
    );
    dirs.into_iter()
        .map(|dir| {
            let manifest =
                serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap())
                    .expect("manifest.json");
            Set { dir, manifest }
        })
        .collect()
}

/// A copy of a set's data directory (the committed one is never written to),
/// opened as a server would open it after an upgrade.
struct World {
    _temp: tempfile::TempDir,
    _data: DataDir,
    service: Service,
    admin: Principal,
    operator: Principal,
}

impl World {
    async fn open(set: &Set) -> World {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        for entry in std::fs::read_dir(set.file("world")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        let master = set.master_key(temp.path());
        let data = DataDir::open(&dir, &master);
        Self::serve(temp, data, set).await
    }

    /// A service over `data`, and the set's two principals, signed in with the
    /// credentials the bootstrap handed out when the set was made.
    async fn serve(temp: tempfile::TempDir, data: DataDir, set: &Set) -> World {
        let service = data.service(ServiceConfig::default());
        assert!(
            !service.bootstrap_if_fresh(|_| Ok(())).await.unwrap(),
            "{}: the store is bootstrapped already",
            set.dir.display()
        );
        let mut principals = Vec::new();
        for who in ["tenant_admin", "operator"] {
            let id = set.str(&format!("/credentials/{who}/id"));
            let secret = set.str(&format!("/credentials/{who}/secret"));
            let principal = service
                .authenticate_bearer(id, secret)
                .await
                .unwrap_or_else(|e| panic!("the {who}'s access key: {e}"));
            principals.push(principal);
        }
        let operator = principals.pop().unwrap();
        let admin = principals.pop().unwrap();
        World {
            _temp: temp,
            _data: data,
            service,
            admin,
            operator,
        }
    }

    fn admin(&self) -> Caller {
        Caller::new(self.admin.clone())
    }
}

/// Every ciphertext of the set decrypts, through the service, to its plaintext,
/// and its header names the key and version the manifest says.
async fn check_ciphertexts(set: &Set, world: &World) {
    let list = set.manifest["ciphertexts"].as_array().unwrap();
    assert!(list.len() >= 5, "{list:?}");
    for c in list {
        let file = c["file"].as_str().unwrap();
        let blob = set.bytes(file);
        let key =
            KeyId::parse(set.str(&format!("/keys/{}/id", c["key"].as_str().unwrap()))).unwrap();
        let header = CiphertextHeader::parse(&blob).unwrap_or_else(|| panic!("{file}: header"));
        assert_eq!(header.key_id, key, "{file}");
        assert_eq!(
            u64::from(header.key_version),
            c["key_version"].as_u64().unwrap(),
            "{file}"
        );
        let ctx: BTreeMap<String, String> = serde_json::from_value(c["context"].clone()).unwrap();
        let plain = world
            .service
            .decrypt(&world.admin(), None, &blob, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(plain.key_id, key, "{file}");
        assert_eq!(
            hex::encode(plain.plaintext.expose_secret()),
            c["plaintext_hex"].as_str().unwrap(),
            "{file}"
        );
        // Bound to its context: another one is refused.
        let e = world
            .service
            .decrypt(&world.admin(), None, &blob, &context("another"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidCiphertext, "{file}");
    }
}

/// The asymmetric keys and the HMAC key: their stored private material still
/// parses and gives the answers of the day the set was made.
async fn check_asymmetric(set: &Set, world: &World) {
    let s = &world.service;
    let message = set.str("/signed_message").as_bytes();
    // RSAES-OAEP: the ciphertext decrypts.
    let rsa = set.key("rsa_encrypt");
    let (_, plain) = s
        .decrypt_asymmetric(
            &world.admin(),
            &rsa,
            EncryptionAlgorithm::RsaesOaepSha256,
            &set.bytes(set.str("/rsa_oaep/file")),
        )
        .await
        .unwrap();
    assert_eq!(
        hex::encode(plain.expose_secret()),
        set.str("/rsa_oaep/plaintext_hex")
    );
    // Signatures verify; the public keys are the same; Ed25519 (deterministic)
    // signs the same bytes again.
    for sig in set.manifest["signatures"].as_array().unwrap() {
        let name = sig["key"].as_str().unwrap();
        let key = set.key(name);
        let algorithm = SigningAlgorithm::parse(sig["algorithm"].as_str().unwrap()).unwrap();
        let signature = set.bytes(sig["file"].as_str().unwrap());
        s.verify(
            &world.admin(),
            &key,
            algorithm,
            MessageType::Raw,
            message,
            &signature,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let public = s.get_public_key(&world.admin(), &key, None).await.unwrap();
        assert_eq!(
            hex::encode(&public.public_key),
            set.str(&format!("/keys/{name}/public_key_hex")),
            "{name}"
        );
        let fresh = s
            .sign(&world.admin(), &key, algorithm, MessageType::Raw, message)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if sig["deterministic"].as_bool().unwrap() {
            assert_eq!(fresh.signature, signature, "{name}");
        }
        s.verify(
            &world.admin(),
            &key,
            algorithm,
            MessageType::Raw,
            message,
            &fresh.signature,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // HMAC is deterministic: the same MAC again, and it verifies.
    let hmac = set.key("hmac");
    let mac = set.bytes(set.str("/mac/file"));
    let again = s
        .generate_mac(&world.admin(), &hmac, MacAlgorithm::HmacSha256, message)
        .await
        .unwrap();
    assert_eq!(again.signature, mac);
    s.verify_mac(
        &world.admin(),
        &hmac,
        MacAlgorithm::HmacSha256,
        message,
        &mac,
    )
    .await
    .unwrap();
    // ECDH with the peer of the day gives the same secret.
    let (_, secret) = s
        .derive_shared_secret(
            &world.admin(),
            &set.key("ecdh"),
            &set.hex("/ecdh/peer_public_key_hex"),
        )
        .await
        .unwrap();
    assert_eq!(
        hex::encode(secret.expose_secret()),
        set.str("/ecdh/shared_secret_hex")
    );
}

/// Key states and deletion dates, aliases, and the managed object's payload.
async fn check_records(set: &Set, world: &World) {
    let s = &world.service;
    for (name, key) in set.manifest["keys"].as_object().unwrap() {
        let info = s
            .describe_key(&world.admin(), &set.key(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = &info.record;
        assert_eq!(r.lifecycle.state().as_str(), key["state"], "{name}");
        assert_eq!(r.spec.as_str(), key["spec"], "{name}");
        assert_eq!(r.usage.as_str(), key["usage"], "{name}");
        assert_eq!(r.origin.as_str(), key["origin"], "{name}");
        assert_eq!(
            u64::from(r.primary_version),
            key["primary_version"],
            "{name}"
        );
        assert_eq!(r.description, key["description"], "{name}");
        assert_eq!(json!(r.deletion_at), key["deletion_at"], "{name}");
        assert_eq!(json!(r.tags), key["tags"], "{name}");
        if let Some(alias) = key["alias"].as_str() {
            let by_alias = s
                .describe_key(&world.admin(), &KeyRef::Alias(alias.into()))
                .await
                .unwrap();
            assert_eq!(by_alias.record.id, r.id, "{alias}");
        }
    }
    let object = ObjectId::parse(set.str("/object/id")).unwrap();
    let (info, payload) = s.object_payload(&world.admin(), object).await.unwrap();
    assert_eq!(info.kind.as_str(), set.str("/object/kind"));
    assert_eq!(
        hex::encode(payload.expose_secret()),
        set.str("/object/payload_hex")
    );
    // The system key was rotated with part of its children re-wrapped: version 2
    // is active, and the key versions still under version 1 decrypt above.
    let tenant = s
        .get_tenant(&world.admin(), set.str("/tenant_id"))
        .await
        .unwrap();
    let system = s
        .get_system(&world.admin(), &tenant.default_system_id.to_string())
        .await
        .unwrap();
    assert_eq!(
        u64::from(system.record.active_key_version),
        set.u64("/system_key/active_version")
    );
    let tenants = s
        .list_tenants(&Caller::new(world.operator.clone()))
        .await
        .unwrap();
    assert_eq!(tenants.len() as u64, set.u64("/tenants"));
}

/// The audit chain in the store verifies with the set's public key, and the
/// signing key (wrapped by the credential root) still unwraps and signs.
async fn check_audit_in_store(set: &Set, world: &World) {
    let s = &world.service;
    let public_key = set.hex("/audit/public_key_hex");
    assert_eq!(
        s.audit_signing_public_key(&world.admin()).await.unwrap(),
        public_key
    );
    let records = s
        .list_audit_records(
            &world.admin(),
            AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    let checkpoints = s
        .list_audit_checkpoints(&world.admin(), 0, 1000)
        .await
        .unwrap();
    assert_eq!(records.len() as u64, set.u64("/audit/records"));
    assert_eq!(checkpoints.len() as u64, set.u64("/audit/checkpoints"));
    let head = s.audit_head(&world.admin()).await.unwrap();
    assert!(head_signature_valid(&head, &public_key));
    let report = verify_chain(&records, &checkpoints, Some(&public_key), Some(&head));
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checkpoints_verified, set.u64("/audit/checkpoints"));
    assert!(
        report.head_checked && report.unsigned_tail == 0,
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_data_directory_opens_and_reads_everything() {
    for set in sets() {
        let world = World::open(&set).await;
        check_ciphertexts(&set, &world).await;
        check_asymmetric(&set, &world).await;
        check_records(&set, &world).await;
        check_audit_in_store(&set, &world).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_import_tokens_are_taken_or_refused_as_on_the_day() {
    for set in sets() {
        let world = World::open(&set).await;
        let s = &world.service;
        let external = set.key("external");
        let token = |name: &str| {
            String::from_utf8(set.bytes(set.str(&format!("/byok/{name}/token_file")))).unwrap()
        };
        let wrapped = |name: &str| set.bytes(set.str(&format!("/byok/{name}/wrapped_file")));
        // The material was deleted after the ciphertext was made: it does not decrypt.
        let blob = set.bytes(set.str("/byok/ciphertext/file"));
        let ctx = context("byok");
        let e = s
            .decrypt(&world.admin(), None, &blob, &ctx)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidState, "{e}");
        // The token already redeemed on the day is used up.
        let e = s
            .import_key_material(
                &world.admin(),
                &external,
                &token("used"),
                &wrapped("used"),
                None,
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidImportToken, "{e}");
        // The short-lived one opens (only an authentic token gets this far) and
        // is refused as expired.
        let e = s
            .import_key_material(
                &world.admin(),
                &external,
                &token("expired"),
                &wrapped("expired"),
                None,
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ExpiredImportToken, "{e}");
        // The long-lived one is taken: the same material as before comes back
        // (another would be IncorrectKeyMaterial), and the old ciphertext decrypts.
        let (info, _) = s
            .import_key_material(
                &world.admin(),
                &external,
                &token("valid"),
                &wrapped("valid"),
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(info.record.lifecycle.state().as_str(), "active");
        let plain = s.decrypt(&world.admin(), None, &blob, &ctx).await.unwrap();
        assert_eq!(
            hex::encode(plain.plaintext.expose_secret()),
            set.str("/byok/ciphertext/plaintext_hex")
        );
        // A root key token, with the other wrapping scheme, is taken too.
        let root = s
            .import_root_key(
                &world.admin(),
                &token("root_key"),
                &wrapped("root_key"),
                "golden import",
            )
            .await
            .unwrap();
        assert_eq!(root.origin, RootKeyOrigin::Imported);
    }
}

#[test]
fn golden_audit_export_verifies_with_its_public_key() {
    for set in sets() {
        let public_key = set.hex("/audit/public_key_hex");
        let file = std::fs::File::open(set.file(set.str("/audit/export_file"))).unwrap();
        let export = read_export(std::io::BufReader::new(file)).unwrap();
        assert_eq!(export.records.len() as u64, set.u64("/audit/records"));
        assert_eq!(
            export.checkpoints.len() as u64,
            set.u64("/audit/checkpoints")
        );
        let head = export.head.as_ref().expect("the export has a signed head");
        assert_eq!(head.seq, set.u64("/audit/head_seq"));
        assert!(head_signature_valid(head, &public_key));
        let report = verify_chain(
            &export.records,
            &export.checkpoints,
            Some(&public_key),
            Some(head),
        );
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(
            report.checkpoints_verified,
            set.u64("/audit/checkpoints"),
            "{report:?}"
        );
        assert!(
            report.head_checked && report.unsigned_tail == 0,
            "{report:?}"
        );
        // Each checkpoint is signed as the successor of the one before it.
        let mut prev = None;
        for cp in &export.checkpoints {
            assert_eq!(
                checkpoint_signature(cp, prev, &public_key),
                Signature::Linked,
                "checkpoint at {}",
                cp.seq
            );
            prev = Some(cp);
        }
        // The records came through field by field.
        let chain = TenantId::parse(set.str("/tenant_id")).unwrap();
        assert!(export.records.iter().all(|r| r.tenant == Some(chain)));
        let failed = export
            .records
            .iter()
            .find(|r| r.outcome == AuditOutcome::Failed)
            .expect("a failed request's record");
        assert_eq!(failed.error.as_deref(), Some("NotFoundException"));
        let with_ids = export
            .records
            .iter()
            .find(|r| r.client_request_id.is_some())
            .expect("a record with a client request id");
        assert_eq!(with_ids.source.as_deref(), Some("192.0.2.7"));
        assert!(export.records.iter().any(|r| !r.keys.is_empty()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_backup_archive_opens_with_the_master_key() {
    for set in sets() {
        let temp = tempfile::tempdir().unwrap();
        let master = set.master_key(temp.path());
        let data = DataDir::open(temp.path(), &master);
        let bytes = set.bytes(set.str("/backup/file"));
        let archive = ArchiveReader::open(bytes.as_slice()).unwrap();
        let header = archive.header().clone();
        assert_eq!(header.format, set.u64("/backup/format_version") as u32);
        assert_eq!(header.keystore, "software");
        assert_eq!(header.keystore_kind, "software");
        assert_eq!(
            header.keystore_parameters,
            Some(json!({ "master_key_source": "file" }))
        );
        let tables: BTreeMap<String, u64> =
            serde_json::from_value(set.manifest["backup"]["tables"].clone()).unwrap();
        assert_eq!(header.tables, tables);
        let (_, snapshot) = archive.read_snapshot(&data.keystores()).await.unwrap();
        assert_eq!(
            u64::from(snapshot.schema_version),
            set.u64("/backup/schema_version")
        );
        assert_eq!(
            snapshot
                .row_counts()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            tables
        );
        // The keys of the set are in it.
        let keys = snapshot
            .tables
            .iter()
            .find(|t| t.name == "service_keys")
            .expect("the service_keys table");
        let id_column = keys.columns.iter().position(|c| c == "id").unwrap();
        for (name, key) in set.manifest["keys"].as_object().unwrap() {
            let id = key["id"].as_str().unwrap();
            assert!(
                keys.rows
                    .iter()
                    .any(|row| json!(row[id_column]).to_string().contains(id)),
                "{name} {id} is not in the archive"
            );
        }
    }
}

/// Restores each set's archive into this build's store and reads everything back.
///
/// An archive restores into a store of the schema version that made it, or of a
/// later one when every migration since only added (nullable columns, new tables:
/// `kcm_store_rows::snapshot::ADDITIVE_MIGRATIONS`) — set-1 was made at version 6
/// and restores into 7, whose audit records gained `detail`. When a new migration
/// makes this test fail, today's archives no longer restore in the new build: list
/// the migration as additive if it is, else make the restore bring an older
/// snapshot forward, or state the break in the release notes and turn this check
/// into one of that refusal — never regenerate the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_backup_archive_restores_into_this_builds_store() {
    for set in sets() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("restored");
        std::fs::create_dir(&dir).unwrap();
        let master = set.master_key(temp.path());
        let data = DataDir::open(&dir, &master);
        let bytes = set.bytes(set.str("/backup/file"));
        let report = backup::restore(bytes.as_slice(), &data.keystores(), data.store.as_ref())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: an archive of an earlier build does not restore: {e} \
                     (see this test's comment; never regenerate the set)",
                    set.dir.display()
                )
            });
        let tables: BTreeMap<String, u64> =
            serde_json::from_value(set.manifest["backup"]["tables"].clone()).unwrap();
        assert_eq!(
            report.tables.into_iter().collect::<BTreeMap<_, _>>(),
            tables
        );
        let world = World::serve(temp, data, &set).await;
        check_ciphertexts(&set, &world).await;
        check_asymmetric(&set, &world).await;
        check_records(&set, &world).await;
        check_audit_in_store(&set, &world).await;
    }
}

// ---------------------------------------------------------------------------
// Making a set
// ---------------------------------------------------------------------------

/// Makes a new set with today's code, in `tests/golden/service/$KCM_GOLDEN_SET` (which
/// must not exist yet):
///
/// ```text
/// KCM_GOLDEN_SET=set-2 cargo test -p kcm-core --test golden -- --ignored generate_golden_set
/// ```
#[test]
#[ignore = "makes a new golden set; run by hand, see tests/golden/README.md"]
fn generate_golden_set() {
    let name = std::env::var("KCM_GOLDEN_SET").expect("KCM_GOLDEN_SET names the new set");
    let out = golden_dir().join(&name);
    assert!(
        !out.exists(),
        "{} exists: sets are never regenerated, make a new one",
        out.display()
    );
    std::fs::create_dir_all(out.join("world")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let manifest = runtime.block_on(generate(&out));
    // Every task that held the store ends here, so SQLite folds its log into
    // kcm.db: the data directory is complete without a -wal file.
    drop(runtime);
    for leftover in ["kcm.db-wal", "kcm.db-shm"] {
        let path = out.join("world").join(leftover);
        assert!(
            !path.exists(),
            "{} is left: kcm.db is not complete",
            path.display()
        );
    }
    let mut text = serde_json::to_string_pretty(&manifest).unwrap();
    text.push('\n');
    std::fs::write(out.join("manifest.json"), text).unwrap();
}

/// Writes `bytes` as `name` under `out` and returns `name`.
fn put(out: &Path, name: &str, bytes: &[u8]) -> String {
    let path = out.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    name.to_string()
}

fn commit_of_today() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// RSAES-OAEP-SHA-256 of `plaintext` to the SubjectPublicKeyInfo `spki`.
fn oaep_to(spki: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let public =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(spki).unwrap()).unwrap();
    let mut out = vec![0; public.ciphertext_size()];
    public
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
        .unwrap()
        .to_vec()
}

/// RSA_AES_KEY_WRAP_SHA_256: a fixed TEST key-encryption key to `spki` with
/// OAEP, then the material wrapped by it with AES-KWP.
fn rsa_aes_wrap_to(spki: &[u8], material: &[u8]) -> Vec<u8> {
    let kek = *b"kcm golden test KEK for AES-KWP!";
    let mut kwp = vec![0; material.len() + 16];
    let kwp = AesKek::new(&AES_256, &kek)
        .unwrap()
        .wrap_with_padding(material, &mut kwp)
        .unwrap()
        .to_vec();
    [oaep_to(spki, &kek), kwp].concat()
}

/// A successful request of `caller` on the AWS door, as the door reports it.
fn audit_event<'a>(caller: &'a Caller, operation: &'a str, request_id: &'a str) -> AuditEvent<'a> {
    AuditEvent {
        front_door: "aws",
        operation,
        request_id,
        source: None,
        client_request_id: None,
        detail: None,
        caller: Some(caller),
        claimed_access_key: None,
        outcome: AuditOutcome::Success,
        error: None,
    }
}

/// What the generator made of a key, for the manifest.
async fn describe(service: &Service, caller: &Caller, key: KeyId) -> Value {
    let r = service
        .describe_key(caller, &KeyRef::Id(key))
        .await
        .unwrap()
        .record;
    json!({
        "id": r.id.to_string(),
        "state": r.lifecycle.state().as_str(),
        "spec": r.spec.as_str(),
        "usage": r.usage.as_str(),
        "origin": r.origin.as_str(),
        "primary_version": r.primary_version,
        "description": r.description,
        "deletion_at": r.deletion_at,
        "tags": r.tags,
    })
}

async fn generate(out: &Path) -> Value {
    let master = out.join("master.key");
    std::fs::write(&master, format!("{TEST_MASTER_KEY_HEX}\n")).unwrap();
    set_private(&master);
    let data = DataDir::open(&out.join("world"), &master);
    let service = data.service(ServiceConfig::default());
    let f = ServiceFixture::bootstrap(data, service).await;
    let s = &f.service;
    let admin = || f.admin();
    let tenant_id = f.admin.principal.tenant_id.unwrap();
    let tenant = s
        .get_tenant(&f.admin(), &tenant_id.to_string())
        .await
        .unwrap();
    let create = |spec: &str, usage: &str, origin: &str, description: &str| {
        let request = CreateKeyRequest {
            description: description.into(),
            key_spec: Some(spec.into()),
            key_usage: Some(usage.into()),
            origin: Some(origin.into()),
            tags: [("fixture".to_string(), "golden".to_string())].into(),
            policy: None,
            bypass_policy_lockout_safety_check: false,
        };
        let caller = admin();
        async move { s.create_key(&caller, request).await.unwrap().record.id }
    };
    let mut keys = serde_json::Map::new();
    let mut ciphertexts = Vec::new();
    let mut audited: Vec<(Caller, &'static str)> = Vec::new();

    // Symmetric: a ciphertext under version 1, rotate, one under version 2 and one
    // with an empty context, and a data key.
    let sym = create(
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        "golden symmetric",
    )
    .await;
    s.create_alias(&admin(), "alias/golden-symmetric", &KeyRef::Id(sym))
        .await
        .unwrap();
    let encrypt = |file: &str, version: u32, plaintext: &[u8], ctx: BTreeMap<String, String>| {
        let caller = admin();
        let file = file.to_string();
        let plaintext = plaintext.to_vec();
        async move {
            let (_, blob) = s
                .encrypt(&caller, &KeyRef::Id(sym), &plaintext, &ctx)
                .await
                .unwrap();
            (
                caller,
                json!({
                    "file": put(out, &file, &blob),
                    "kind": "Encrypt: kcm ciphertext format 1",
                    "key": "symmetric",
                    "key_version": version,
                    "context": ctx,
                    "plaintext_hex": hex::encode(&plaintext),
                }),
            )
        }
    };
    let (caller, c) = encrypt(
        "ciphertexts/encrypt-key-version-1.bin",
        1,
        b"golden: encrypted under key version 1",
        context("encrypt"),
    )
    .await;
    ciphertexts.push(c);
    audited.push((caller, "Encrypt"));
    s.rotate_key_on_demand(&admin(), &KeyRef::Id(sym))
        .await
        .unwrap();
    let (caller, c) = encrypt(
        "ciphertexts/encrypt-key-version-2.bin",
        2,
        b"golden: encrypted under key version 2, after a rotation",
        context("encrypt"),
    )
    .await;
    ciphertexts.push(c);
    audited.push((caller, "Encrypt"));
    let (_, c) = encrypt(
        "ciphertexts/encrypt-empty-context.bin",
        2,
        b"golden: no encryption context",
        BTreeMap::new(),
    )
    .await;
    ciphertexts.push(c);
    let (_, c) = encrypt(
        "ciphertexts/encrypt-one-byte.bin",
        2,
        b"!",
        context("one byte"),
    )
    .await;
    ciphertexts.push(c);
    let data_key = s
        .generate_data_key(&admin(), &KeyRef::Id(sym), 32, &context("data key"))
        .await
        .unwrap();
    ciphertexts.push(json!({
        "file": put(out, "ciphertexts/generate-data-key.bin", &data_key.ciphertext),
        "kind": "GenerateDataKey: the data key, kcm ciphertext format 1 (a TEST data key)",
        "key": "symmetric",
        "key_version": 2,
        "context": context("data key"),
        "plaintext_hex": hex::encode(data_key.plaintext.expose_secret()),
    }));
    let pair = s
        .generate_data_key_pair(
            &admin(),
            &KeyRef::Id(sym),
            kcm_core::keyspec::KeySpec::EccNistP256,
            &context("data key pair"),
            false,
        )
        .await
        .unwrap();
    ciphertexts.push(json!({
        "file": put(out, "ciphertexts/generate-data-key-pair.bin", &pair.private_key_ciphertext),
        "kind": "GenerateDataKeyPair: the PKCS#8 private key, kcm ciphertext format 1 (a TEST key)",
        "key": "symmetric",
        "key_version": 2,
        "context": context("data key pair"),
        "plaintext_hex": hex::encode(pair.private_key.expose_secret()),
    }));
    let mut sym_info = describe(s, &admin(), sym).await;
    sym_info["alias"] = json!("alias/golden-symmetric");
    keys.insert("symmetric".into(), sym_info);

    // RSA encryption.
    let rsa = create("RSA_2048", "ENCRYPT_DECRYPT", "AWS_KMS", "golden RSA OAEP").await;
    let rsa_plain = b"golden: RSAES_OAEP_SHA_256 under an RSA_2048 key";
    let (_, rsa_blob) = s
        .encrypt_asymmetric(
            &admin(),
            &KeyRef::Id(rsa),
            EncryptionAlgorithm::RsaesOaepSha256,
            rsa_plain,
        )
        .await
        .unwrap();
    let rsa_oaep = json!({
        "file": put(out, "ciphertexts/rsaes-oaep-sha-256.bin", &rsa_blob),
        "kind": "Encrypt with an RSA key: plain RSAES-OAEP-SHA-256, no kcm header",
        "plaintext_hex": hex::encode(rsa_plain),
    });
    keys.insert("rsa_encrypt".into(), describe(s, &admin(), rsa).await);

    // Signing keys: one signature each.
    let mut signatures = Vec::new();
    for (name, spec, algorithm, deterministic) in [
        (
            "ecdsa_p256",
            "ECC_NIST_P256",
            SigningAlgorithm::EcdsaSha256,
            false,
        ),
        (
            "ed25519",
            "ECC_NIST_EDWARDS25519",
            SigningAlgorithm::Ed25519Sha512,
            true,
        ),
        (
            "ml_dsa_44",
            "ML_DSA_44",
            SigningAlgorithm::MlDsaShake256,
            false,
        ),
        (
            "rsa_pss",
            "RSA_2048",
            SigningAlgorithm::RsassaPssSha256,
            false,
        ),
    ] {
        let key = create(spec, "SIGN_VERIFY", "AWS_KMS", &format!("golden {name}")).await;
        let caller = admin();
        let signed = s
            .sign(
                &caller,
                &KeyRef::Id(key),
                algorithm,
                MessageType::Raw,
                SIGNED_MESSAGE,
            )
            .await
            .unwrap();
        if name == "ecdsa_p256" {
            audited.push((caller, "Sign"));
        }
        let public = s
            .get_public_key(&admin(), &KeyRef::Id(key), None)
            .await
            .unwrap();
        signatures.push(json!({
            "file": put(out, &format!("signatures/{name}.sig"), &signed.signature),
            "key": name,
            "algorithm": algorithm.as_str(),
            "message_type": "RAW",
            "deterministic": deterministic,
        }));
        let mut info = describe(s, &admin(), key).await;
        info["public_key_hex"] = json!(hex::encode(&public.public_key));
        keys.insert(name.into(), info);
    }

    // HMAC.
    let hmac = create("HMAC_256", "GENERATE_VERIFY_MAC", "AWS_KMS", "golden HMAC").await;
    let mac = s
        .generate_mac(
            &admin(),
            &KeyRef::Id(hmac),
            MacAlgorithm::HmacSha256,
            SIGNED_MESSAGE,
        )
        .await
        .unwrap();
    let mac = json!({
        "file": put(out, "signatures/hmac-sha-256.mac", &mac.signature),
        "algorithm": "HMAC_SHA_256",
    });
    keys.insert("hmac".into(), describe(s, &admin(), hmac).await);

    // ECDH with a peer key made here (a TEST key, thrown away).
    let ecdh = create("ECC_NIST_P256", "KEY_AGREEMENT", "AWS_KMS", "golden ECDH").await;
    let peer =
        aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256).unwrap();
    let peer_spki: aws_lc_rs::encoding::PublicKeyX509Der<'static> =
        peer.compute_public_key().unwrap().as_der().unwrap();
    let (_, shared) = s
        .derive_shared_secret(&admin(), &KeyRef::Id(ecdh), peer_spki.as_ref())
        .await
        .unwrap();
    let ecdh_info = json!({
        "peer_public_key_hex": hex::encode(peer_spki.as_ref()),
        "shared_secret_hex": hex::encode(shared.expose_secret()),
    });
    keys.insert("ecdh".into(), describe(s, &admin(), ecdh).await);

    // BYOK: material imported, a ciphertext under it, the material deleted; then
    // three tokens for the same key (one redeemed on the day, one expired, one
    // valid for two centuries) and one for a root key.
    let external = create(
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "EXTERNAL",
        "golden BYOK",
    )
    .await;
    let ext = KeyRef::Id(external);
    let params = |config: ServiceConfig, algorithm: &'static str, spec: &'static str| {
        let node = f.another_node(config);
        let caller = admin();
        let ext = ext.clone();
        async move {
            node.key_import_parameters(&caller, &ext, algorithm, spec)
                .await
                .unwrap()
                .1
        }
    };
    let used = params(ServiceConfig::default(), "RSAES_OAEP_SHA_256", "RSA_3072").await;
    let used_wrapped = oaep_to(&used.public_key_der, &TEST_BYOK_MATERIAL);
    s.import_key_material(
        &admin(),
        &ext,
        &used.import_token,
        &used_wrapped,
        None,
        None,
    )
    .await
    .unwrap();
    let byok_plain = b"golden: encrypted under imported (BYOK) material";
    let (_, byok_blob) = s
        .encrypt(&admin(), &ext, byok_plain, &context("byok"))
        .await
        .unwrap();
    s.delete_imported_key_material(&admin(), &ext, None)
        .await
        .unwrap();
    let long = ServiceConfig {
        import_token_lifetime: LONG_TOKEN_LIFETIME,
        ..ServiceConfig::default()
    };
    let short = ServiceConfig {
        import_token_lifetime: std::time::Duration::from_millis(1),
        ..ServiceConfig::default()
    };
    let valid = params(long.clone(), "RSAES_OAEP_SHA_256", "RSA_3072").await;
    let expired = params(short, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072").await;
    let root_params = f
        .another_node(long)
        .root_key_import_parameters(&admin(), None, "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")
        .await
        .unwrap();
    let token = |name: &str, p: &kcm_core::service::ImportParameters, wrapped: Vec<u8>| {
        json!({
            "token_file": put(out, &format!("byok/{name}.token"), p.import_token.as_bytes()),
            "algorithm": p.algorithm.as_str(),
            "key_spec": p.key_spec.as_str(),
            "expires_at": p.expires_at,
            "public_key_file": put(out, &format!("byok/{name}.public-key.der"), &p.public_key_der),
            "wrapped_file": put(out, &format!("byok/{name}.wrapped"), &wrapped),
        })
    };
    let byok = json!({
        "material_note": "TEST key material, in the test's source (TEST_BYOK_MATERIAL, TEST_BYOK_ROOT_MATERIAL)",
        "used": token("used", &used, used_wrapped.clone()),
        "valid": token("valid", &valid, oaep_to(&valid.public_key_der, &TEST_BYOK_MATERIAL)),
        "expired": token("expired", &expired, rsa_aes_wrap_to(&expired.public_key_der, &TEST_BYOK_MATERIAL)),
        "root_key": token("root-key", &root_params, rsa_aes_wrap_to(&root_params.public_key_der, &TEST_BYOK_ROOT_MATERIAL)),
        "ciphertext": {
            "file": put(out, "ciphertexts/encrypt-byok.bin", &byok_blob),
            "key": "external",
            "context": context("byok"),
            "plaintext_hex": hex::encode(byok_plain),
        },
    });
    keys.insert("external".into(), describe(s, &admin(), external).await);

    // Key states: disabled, and waiting for deletion.
    let disabled = create(
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        "golden disabled",
    )
    .await;
    s.disable_key(&admin(), &KeyRef::Id(disabled))
        .await
        .unwrap();
    keys.insert("disabled".into(), describe(s, &admin(), disabled).await);
    let doomed = create(
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        "golden pending deletion",
    )
    .await;
    s.schedule_key_deletion(&admin(), &KeyRef::Id(doomed), Some(30))
        .await
        .unwrap();
    keys.insert(
        "pending_deletion".into(),
        describe(s, &admin(), doomed).await,
    );

    // A managed object (a Barbican secret) sealed by the system key.
    let payload = b"golden: a managed object's payload";
    let object = s
        .create_object(
            &admin(),
            tenant.default_system_id,
            NewObject {
                kind: ObjectKind::Passphrase,
                attributes: ObjectAttributes {
                    name: "golden".into(),
                    content_type: Some("text/plain".into()),
                    ..ObjectAttributes::default()
                },
                payload: Some(SecretBytes::copy_from(payload)),
            },
        )
        .await
        .unwrap();
    let object = json!({
        "id": object.id.to_string(),
        "kind": object.kind.as_str(),
        "payload_hex": hex::encode(payload),
    });

    // The system key rotated, with one batch re-wrapped: some key versions stay
    // under system key version 1, the rest move to version 2.
    let system = tenant.default_system_id.to_string();
    let rotation = s.rotate_system_key(&admin(), &system).await.unwrap();
    let batch = s
        .rewrap_system_keys(&admin(), &system, 3.min(MAX_REWRAP_BATCH))
        .await
        .unwrap();
    let system_key = json!({
        "active_version": rotation.system.record.active_key_version,
        "rewrapped": rotation.rewrapped + batch.rewrapped,
        "remaining_under_older_versions": batch.remaining,
    });

    // The audit chain of the tenant: three records, a checkpoint, two more, a
    // second checkpoint (linked to the first), one more, the signed head.
    let ids: Vec<String> = (0..6).map(|n| format!("golden-request-{n}")).collect();
    let admin_caller = admin();
    for (n, (caller, operation)) in audited.iter().take(2).enumerate() {
        s.record_audit(audit_event(caller, operation, &ids[n]))
            .await
            .unwrap();
    }
    s.record_audit(AuditEvent {
        outcome: AuditOutcome::Failed,
        error: Some("NotFoundException"),
        ..audit_event(&admin_caller, "DescribeKey", &ids[2])
    })
    .await
    .unwrap();
    assert_eq!(s.write_audit_checkpoints().await.unwrap(), 1);
    s.record_audit(AuditEvent {
        source: Some("192.0.2.7".into()),
        client_request_id: Some("golden-client-request-3"),
        ..audit_event(&audited[2].0, audited[2].1, &ids[3])
    })
    .await
    .unwrap();
    s.record_audit(AuditEvent {
        front_door: "rest",
        ..audit_event(&admin_caller, "ListKeys", &ids[4])
    })
    .await
    .unwrap();
    assert_eq!(s.write_audit_checkpoints().await.unwrap(), 1);
    s.record_audit(audit_event(&admin_caller, "GetKeyRotationStatus", &ids[5]))
        .await
        .unwrap();
    let records = s
        .list_audit_records(
            &admin(),
            AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    let checkpoints = s.list_audit_checkpoints(&admin(), 0, 1000).await.unwrap();
    let head = s.audit_head(&admin()).await.unwrap();
    let public_key = s.audit_signing_public_key(&admin()).await.unwrap();
    // As `kcm audit export --checkpoints` writes it.
    let mut export = Vec::new();
    let (n_records, n_checkpoints, head_seq) = (records.len(), checkpoints.len(), head.seq);
    for record in records {
        serde_json::to_writer(&mut export, &ExportLine::Record(Box::new(record))).unwrap();
        export.write_all(b"\n").unwrap();
    }
    for cp in checkpoints {
        serde_json::to_writer(&mut export, &ExportLine::Checkpoint(cp)).unwrap();
        export.write_all(b"\n").unwrap();
    }
    serde_json::to_writer(&mut export, &ExportLine::Head(head)).unwrap();
    export.write_all(b"\n").unwrap();
    let audit = json!({
        "export_file": put(out, "audit-export.jsonl", &export),
        "format": "JSON lines (kcm audit export --checkpoints): records, checkpoints kcm-audit-checkpoint-v2, head kcm-audit-head-v1",
        "chain": tenant_id.to_string(),
        "records": n_records,
        "checkpoints": n_checkpoints,
        "head_seq": head_seq,
        "public_key_hex": hex::encode(&public_key),
    });

    // The backup of it all.
    let archive = s.backup(&f.operator()).await.unwrap();
    let schema_version = f.store.snapshot().await.unwrap().schema_version;
    let backup = json!({
        "file": put(out, "backup.kcmbak", &archive.bytes),
        "format": "KCMBAK1",
        "format_version": backup::FORMAT_VERSION,
        "schema_version": schema_version,
        "tables": archive.tables.iter().cloned().collect::<BTreeMap<_, _>>(),
        "restore_with": "the software keystore with master.key (source: file)",
    });
    let tenants = s.list_tenants(&f.operator()).await.unwrap().len();

    json!({
        "about": "Golden fixtures made by kcm's own code; read by tests/golden.rs. Every key, secret and credential here is a TEST value, public in this repository.",
        "kcm_commit": commit_of_today(),
        "kcm_version": env!("CARGO_PKG_VERSION"),
        "made_at": kcm_core::service::now_ms(),
        "master_key_file": "master.key",
        "world": {
            "dir": "world",
            "what": "a kcm data directory: kcm.db (SQLite store), keystore-check (software keystore check value); the master key file is kept apart, as an operator would",
            "store_schema_version": schema_version,
        },
        "credentials": {
            "tenant_admin": { "id": f.admin_key.id, "secret": f.admin_key.secret },
            "operator": { "id": f.operator_key.id, "secret": f.operator_key.secret },
        },
        "tenant_id": tenant_id.to_string(),
        "tenants": tenants,
        "keys": keys,
        "ciphertexts": ciphertexts,
        "rsa_oaep": rsa_oaep,
        "signed_message": String::from_utf8_lossy(SIGNED_MESSAGE),
        "signatures": signatures,
        "mac": mac,
        "ecdh": ecdh_info,
        "byok": byok,
        "object": object,
        "system_key": system_key,
        "audit": audit,
        "backup": backup,
    })
}
