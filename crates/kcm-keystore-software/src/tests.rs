use super::*;
use std::os::unix::fs::PermissionsExt;

fn file_source(dir: &Path) -> MasterKeySource {
    MasterKeySource::default_file(dir)
}

fn pass(s: &str) -> MasterKeySource {
    MasterKeySource::Passphrase(SecretString::new(s.into()))
}

/// A keystore with a master key file in `dir`.
fn open(dir: &Path) -> SoftwareKeystore {
    SoftwareKeystore::open(dir, file_source(dir)).unwrap()
}

/// A new root key of `ks`, and 32 random bytes wrapped by it with `aad`.
async fn wrapped(ks: &SoftwareKeystore, aad: &[u8]) -> (Vec<u8>, SecretBytes, Vec<u8>) {
    let handle = ks.create_root_key("r").await.unwrap();
    let secret = SecretBytes::random(32);
    let wrapped = ks.wrap(&handle, &secret, aad).await.unwrap();
    (handle, secret, wrapped)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn tampered_handle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let handle = ks.create_root_key("label").await.unwrap();
    assert_eq!(handle[0], HANDLE_FORMAT_V1);
    let secret = SecretBytes::random(32);
    let wrapped = ks.wrap(&handle, &secret, b"").await.unwrap();
    // Flip a bit anywhere: format byte, label length, label, nonce, sealed key, tag.
    for i in 0..handle.len() {
        let mut tampered = handle.clone();
        tampered[i] ^= 0x01;
        assert!(
            matches!(
                ks.unwrap(&tampered, &wrapped, b"").await,
                Err(KeystoreError::KeyUnusable(_))
            ),
            "flip at {i}"
        );
    }
    // A relabelled handle (same sealed key, other label) does not open.
    let mut relabelled = vec![HANDLE_FORMAT_V1, 0, 5];
    relabelled.extend_from_slice(b"LABEL");
    relabelled.extend_from_slice(&handle[3 + 5..]);
    assert!(matches!(
        ks.wrap(&relabelled, &secret, b"").await,
        Err(KeystoreError::KeyUnusable(_))
    ));
    for bad in [
        &[][..],
        &[1u8][..],
        &[1, 0][..],
        &handle[..handle.len() - 1],
    ] {
        assert!(matches!(
            ks.wrap(bad, &secret, b"").await,
            Err(KeystoreError::KeyUnusable(_))
        ));
    }
    // The genuine handle still works (nothing bad was cached).
    assert_eq!(ks.unwrap(&handle, &wrapped, b"").await.unwrap(), secret);
}

#[tokio::test]
async fn handle_from_another_keystore_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (ka, kb) = (open(a.path()), open(b.path()));
    let (handle, secret, wrapped) = wrapped(&ka, b"x").await;
    assert!(matches!(
        kb.wrap(&handle, &secret, b"x").await,
        Err(KeystoreError::KeyUnusable(_))
    ));
    assert!(matches!(
        kb.unwrap(&handle, &wrapped, b"x").await,
        Err(KeystoreError::KeyUnusable(_))
    ));
}

#[tokio::test]
async fn reopen_with_same_master_key_file_unwraps_old_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, secret, wrapped) = wrapped(&open(dir.path()), b"x").await;
    let ks = open(dir.path());
    assert_eq!(ks.unwrap(&handle, &wrapped, b"x").await.unwrap(), secret);
}

#[tokio::test]
async fn destroy_drops_the_cached_root_key() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let (handle, _, _) = wrapped(&ks, b"").await;
    assert_eq!(ks.opened.read().unwrap().len(), 1);
    ks.destroy(&handle).await.unwrap();
    assert!(ks.opened.read().unwrap().is_empty());
    // Destroying an unknown handle is not an error.
    ks.destroy(b"nothing").await.unwrap();
}

#[test]
fn master_key_file_is_created_0600_with_32_hex_bytes() {
    let dir = tempfile::tempdir().unwrap();
    SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
    let path = dir.path().join(MASTER_KEY_FILE);
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert_eq!(hex::decode(text.trim()).unwrap().len(), 32);
    assert!(dir.path().join(CHECK_FILE).exists());
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn group_or_world_readable_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap());
    let path = dir.path().join(MASTER_KEY_FILE);
    for bad_mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad_mode)).unwrap();
        let err = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap_err();
        assert!(matches!(err, KeystoreError::Misconfigured(_)));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
}

#[test]
fn malformed_master_key_file_is_refused_without_echoing_it() {
    for content in [
        "abcd".to_string(),
        "zz".repeat(32),
        hex::encode([9u8; 33]),
        format!("{}\n{}", hex::encode([1u8; 32]), hex::encode([2u8; 32])),
        String::new(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        files::create_private_file(&path, content.as_bytes()).unwrap();
        let err = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exactly 32 bytes"), "{msg}");
        if !content.is_empty() {
            assert!(!msg.contains(&content), "{msg}");
        }
    }
}

#[test]
fn replaced_master_key_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap());
    let path = dir.path().join(MASTER_KEY_FILE);
    std::fs::remove_file(&path).unwrap();
    files::create_private_file(&path, hex::encode([7u8; 32]).as_bytes()).unwrap();
    let err = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap_err();
    assert!(
        err.to_string()
            .contains("the master key does not match the one this data directory was created with"),
        "{err}"
    );
}

#[test]
fn short_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 11 characters (multi-byte ones count as one).
    for short in ["short", "", "ééééééééééé"] {
        let err = SoftwareKeystore::open(dir.path(), pass(short)).unwrap_err();
        assert!(matches!(err, KeystoreError::Misconfigured(_)));
        assert!(err.to_string().contains("at least 12 characters"), "{err}");
    }
    // Nothing was written for a refused passphrase.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn passphrase_reopen_works_and_wrong_passphrase_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let ks = SoftwareKeystore::open(dir.path(), pass("correct horse battery")).unwrap();
    let (handle, secret, wrapped) = wrapped(&ks, b"ctx").await;
    drop(ks);
    // Parameters recorded (not secret), written 0600, with the agreed cost.
    let params_path = dir.path().join(PARAMS_FILE);
    assert_eq!(mode(&params_path), 0o600);
    let params: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&params_path).unwrap()).unwrap();
    assert_eq!(params["algorithm"], "argon2id");
    assert_eq!(params["memory_kib"], 65536);
    assert_eq!(params["iterations"], 3);
    assert_eq!(params["lanes"], 1);
    assert_eq!(params["salt_hex"].as_str().unwrap().len(), 32);
    assert!(!std::fs::read_to_string(&params_path)
        .unwrap()
        .contains("correct horse"));

    let ks = SoftwareKeystore::open(dir.path(), pass("correct horse battery")).unwrap();
    assert_eq!(ks.unwrap(&handle, &wrapped, b"ctx").await.unwrap(), secret);

    let err = SoftwareKeystore::open(dir.path(), pass("wrong horse battery")).unwrap_err();
    assert!(matches!(err, KeystoreError::Misconfigured(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("the master key does not match the one this data directory was created with"),
        "{msg}"
    );
    assert!(!msg.contains("horse"), "{msg}");
}

#[test]
fn switching_master_key_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
    let err = SoftwareKeystore::open(dir.path(), pass("correct horse battery")).unwrap_err();
    assert!(err.to_string().contains("not supported yet"), "{err}");
    // Refused before deriving anything: no parameters file was created.
    assert!(!dir.path().join(PARAMS_FILE).exists());

    let dir = tempfile::tempdir().unwrap();
    SoftwareKeystore::open(dir.path(), pass("correct horse battery")).unwrap();
    let err = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap_err();
    assert!(err.to_string().contains("not supported yet"), "{err}");
    // Refused before creating a master key file.
    assert!(!dir.path().join(MASTER_KEY_FILE).exists());
}

#[tokio::test]
async fn debug_shows_no_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    wrapped(&ks, b"").await;
    let master_hex = std::fs::read_to_string(dir.path().join(MASTER_KEY_FILE)).unwrap();
    let master_hex = master_hex.trim();
    let root_hex = hex::encode(
        ks.opened
            .read()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .expose_secret(),
    );
    for shown in [format!("{ks:?}"), format!("{ks:#?}")] {
        assert!(!shown.to_lowercase().contains(master_hex), "{shown}");
        assert!(!shown.to_lowercase().contains(&root_hex), "{shown}");
        // Not even as a decimal byte list.
        let master_bytes = hex::decode(master_hex).unwrap();
        assert!(
            !shown.contains(&format!("{:?}", &master_bytes[..4])),
            "{shown}"
        );
        assert!(shown.contains("master.key"), "{shown}");
        assert!(shown.contains("file"), "{shown}");
    }
    let shown = format!("{:?}", pass("correct horse battery"));
    assert!(!shown.contains("horse"), "{shown}");
}

/// Opens the keystore in `dir` from `threads` threads at once (all released together),
/// each with a source made by `source`.
fn open_concurrently(
    dir: &Path,
    threads: usize,
    source: impl Fn(&Path) -> MasterKeySource,
) -> Vec<SoftwareKeystore> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (path, barrier, source) = (dir.to_path_buf(), barrier.clone(), source(dir));
            std::thread::spawn(move || {
                barrier.wait();
                SoftwareKeystore::open(&path, source)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect()
}

/// Every opener holds the same master key (and the one a later open reads back), and
/// a root key made through any one of them is usable through every other.
async fn assert_one_master_key(openers: &[SoftwareKeystore], later: &SoftwareKeystore) {
    let expected = later.master.expose_secret();
    for (i, ks) in openers.iter().enumerate() {
        assert!(
            ks.master.expose_secret() == expected,
            "opener {i} holds another master key"
        );
    }
    for (i, maker) in openers.iter().enumerate() {
        let (handle, secret, wrapped) = wrapped(maker, b"aad").await;
        for (j, other) in openers.iter().chain([later]).enumerate() {
            assert_eq!(
                other.unwrap(&handle, &wrapped, b"aad").await.unwrap(),
                secret,
                "a root key made by opener {i} does not work through opener {j}"
            );
        }
    }
}

#[tokio::test]
async fn concurrent_first_open_agrees_on_one_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let openers = open_concurrently(dir.path(), 8, file_source);
    let later = open(dir.path());
    // The key on disk is the one they all hold.
    let on_disk = std::fs::read_to_string(dir.path().join(MASTER_KEY_FILE)).unwrap();
    assert_eq!(on_disk.trim(), hex::encode(later.master.expose_secret()));
    assert_one_master_key(&openers, &later).await;

    // With a passphrase, the concurrent first opens agree on one salt, so on one key.
    let dir = tempfile::tempdir().unwrap();
    let passphrase = "correct horse battery staple";
    let openers = open_concurrently(dir.path(), 4, |_| pass(passphrase));
    let later = SoftwareKeystore::open(dir.path(), pass(passphrase)).unwrap();
    assert_one_master_key(&openers, &later).await;
}

#[tokio::test]
async fn recovery_parameters_let_a_passphrase_reach_the_same_root_keys_in_a_new_directory() {
    let old = tempfile::tempdir().unwrap();
    let passphrase = "correct horse battery staple";
    let ks = SoftwareKeystore::open(old.path(), pass(passphrase)).unwrap();
    let (handle, secret, wrapped) = wrapped(&ks, b"aad").await;
    let params = ks.recovery_parameters().unwrap();
    assert_eq!(params["master_key_source"], "passphrase");
    assert!(params["passphrase_parameters"]["salt_hex"].is_string());
    let text = params.to_string();
    assert!(!text.contains(passphrase), "{text}");

    // Without the recorded salt, the same passphrase gives another master key.
    let bare = tempfile::tempdir().unwrap();
    let other = SoftwareKeystore::open(bare.path(), pass(passphrase)).unwrap();
    assert!(other.unwrap(&handle, &wrapped, b"aad").await.is_err());

    // With it, the root keys are reachable again.
    let new = tempfile::tempdir().unwrap();
    SoftwareKeystore::prepare_restore(new.path(), Some(&params), &pass(passphrase)).unwrap();
    assert_eq!(mode(&new.path().join(PARAMS_FILE)), 0o600);
    // Idempotent for the same parameters.
    SoftwareKeystore::prepare_restore(new.path(), Some(&params), &pass(passphrase)).unwrap();
    let restored = SoftwareKeystore::open(new.path(), pass(passphrase)).unwrap();
    assert_eq!(
        restored.unwrap(&handle, &wrapped, b"aad").await.unwrap(),
        secret
    );

    // The other kind of source is refused with a message naming both.
    let e = SoftwareKeystore::prepare_restore(
        tempfile::tempdir().unwrap().path(),
        Some(&params),
        &file_source(new.path()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("passphrase"), "{e}");
    // Other parameters over existing ones are refused.
    let mut changed = params.clone();
    changed["passphrase_parameters"]["salt_hex"] = "00".repeat(16).into();
    assert!(
        SoftwareKeystore::prepare_restore(new.path(), Some(&changed), &pass(passphrase)).is_err()
    );
}

#[tokio::test]
async fn recovery_parameters_of_a_master_key_file_name_only_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let ks = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
    let params = ks.recovery_parameters().unwrap();
    assert_eq!(params, serde_json::json!({"master_key_source": "file"}));
    let new = tempfile::tempdir().unwrap();
    SoftwareKeystore::prepare_restore(new.path(), Some(&params), &file_source(dir.path())).unwrap();
    assert!(!new.path().join(PARAMS_FILE).exists());
    let e = SoftwareKeystore::prepare_restore(
        new.path(),
        Some(&params),
        &pass("a long enough passphrase"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("master key file"), "{e}");
}

/// An imported root key is the customer's material itself: what it wraps opens with
/// that material.
#[tokio::test]
async fn imported_material_is_the_root_key() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let material = SecretBytes::random(32);
    let handle = ks.import_root_key("byok-1", &material).await.unwrap();
    let secret = SecretBytes::copy_from(b"a system key");
    let wrapped = ks.wrap(&handle, &secret, b"aad").await.unwrap();
    let opened = kcm_core::crypto::open(&material, &wrapped, b"aad").unwrap();
    assert_eq!(opened.expose_secret(), secret.expose_secret());
}
