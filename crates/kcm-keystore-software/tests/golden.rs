//! Golden fixtures of the software keystore: the files of its data directory
//! (`keystore-check`, `keystore-params.json`), the master key file, and the root
//! key handles it gave the core, with blobs wrapped under them — made once by
//! [`generate_golden_set`] with the kcm of the manifest's `kcm_commit`, read by
//! every later build. Every key and passphrase here is a TEST value, public in
//! this repository. A set is never regenerated to make a test pass: a new format
//! version adds a new set (see `tests/golden/README.md`).

use std::path::{Path, PathBuf};

use kcm_core::keystore::{KeystoreError, KeystoreProvider};
use kcm_core::secret::{SecretBytes, SecretString};
use kcm_keystore_software::{MasterKeySource, SoftwareKeystore, CHECK_FILE, PARAMS_FILE};
use serde_json::{json, Value};

/// The master key of the file-source directory: a TEST KEY.
const TEST_MASTER_KEY_HEX: &str =
    "6b636d2d736f6674776172652d6b657973746f72652d746573742d6b65792121";
/// The passphrase of the passphrase-source directory: a TEST passphrase.
const TEST_PASSPHRASE: &str = "kcm golden test passphrase, public on purpose";
/// Material of the imported root key (a TEST KEY).
const TEST_ROOT_MATERIAL: [u8; 32] = *b"kcm software keystore test root!";
/// What every fixture wraps, and the associated data it is bound to.
const WRAPPED_PLAINTEXT: &[u8] = b"kcm golden: a child key wrapped by a software root key";
const WRAPPED_AAD: &[u8] = b"kcm golden associated data";
/// The Argon2id cost of the passphrase directory: far below the default, so the
/// test runs in a moment; recorded in its `keystore-params.json` like any cost.
const TEST_ARGON2: (u32, u32, u32) = (256, 1, 1);

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn set_private(_: &Path) {}

/// Copies a set's directory `name` to a fresh temporary one (the committed files
/// are never written to), its files owner-only as kcm requires.
fn copy_dir(set: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(set.join(name)).unwrap() {
        let entry = entry.unwrap();
        let to = dir.join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
        set_private(&to);
    }
    (temp, dir)
}

fn sets() -> Vec<(PathBuf, Value)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no golden set under tests/golden");
    dirs.into_iter()
        .map(|dir| {
            let manifest =
                serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap())
                    .expect("manifest.json");
            (dir, manifest)
        })
        .collect()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer}"))
}

/// Every handle of `source` in the set unwraps its blob to the expected plaintext.
async fn check_handles(set: &Path, manifest: &Value, source: &str, keystore: &SoftwareKeystore) {
    let handles = manifest[source]["handles"].as_array().unwrap();
    assert!(!handles.is_empty());
    for h in handles {
        let handle = std::fs::read(set.join(h["handle_file"].as_str().unwrap())).unwrap();
        let wrapped = std::fs::read(set.join(h["wrapped_file"].as_str().unwrap())).unwrap();
        let aad = hex::decode(h["aad_hex"].as_str().unwrap()).unwrap();
        let plain = keystore
            .unwrap(&handle, &wrapped, &aad)
            .await
            .unwrap_or_else(|e| panic!("{source} {}: {e}", h["handle_file"]));
        assert_eq!(
            hex::encode(plain.expose_secret()),
            h["plaintext_hex"].as_str().unwrap()
        );
        // Bound to its associated data.
        assert!(matches!(
            keystore.unwrap(&handle, &wrapped, b"other").await,
            Err(KeystoreError::UnwrapFailed)
        ));
    }
    // The imported root key's material is the one imported: a blob wrapped under
    // it here opens with a key imported afresh from the same material.
    let imported = &handles[0];
    assert_eq!(imported["origin"], "imported");
    let handle = std::fs::read(set.join(imported["handle_file"].as_str().unwrap())).unwrap();
    let blob = keystore
        .wrap(&handle, &SecretBytes::copy_from(b"again"), b"")
        .await
        .unwrap();
    let fresh = keystore
        .import_root_key("fresh", &SecretBytes::copy_from(&TEST_ROOT_MATERIAL))
        .await
        .unwrap();
    assert_eq!(
        keystore
            .unwrap(&fresh, &blob, b"")
            .await
            .unwrap()
            .expose_secret(),
        b"again"
    );
}

#[tokio::test]
async fn golden_master_key_file_directory_opens_and_unwraps() {
    for (set, manifest) in sets() {
        let (_temp, dir) = copy_dir(&set, "file-source");
        let master = dir.join(text(&manifest, "/file-source/master_key_file"));
        let keystore = SoftwareKeystore::open(&dir, MasterKeySource::File(master)).unwrap();
        assert_eq!(
            keystore.recovery_parameters(),
            Some(manifest["file-source"]["recovery_parameters"].clone())
        );
        check_handles(&set, &manifest, "file-source", &keystore).await;

        // The check value refuses another master key before anything is unwrapped.
        let (_other_temp, other) = copy_dir(&set, "file-source");
        let wrong = other.join("wrong.key");
        std::fs::write(&wrong, format!("{}\n", "ab".repeat(32))).unwrap();
        set_private(&wrong);
        let e = SoftwareKeystore::open(&other, MasterKeySource::File(wrong)).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }
}

#[tokio::test]
async fn golden_passphrase_directory_opens_and_unwraps() {
    for (set, manifest) in sets() {
        let (_temp, dir) = copy_dir(&set, "passphrase-source");
        let passphrase = text(&manifest, "/passphrase-source/passphrase");
        let keystore = SoftwareKeystore::open(
            &dir,
            MasterKeySource::Passphrase(SecretString::new(passphrase.into())),
        )
        .unwrap();
        assert_eq!(
            keystore.recovery_parameters(),
            Some(manifest["passphrase-source"]["recovery_parameters"].clone())
        );
        check_handles(&set, &manifest, "passphrase-source", &keystore).await;

        let (_other_temp, other) = copy_dir(&set, "passphrase-source");
        let e = SoftwareKeystore::open(
            &other,
            MasterKeySource::Passphrase(SecretString::new("not the passphrase at all".into())),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }
}

/// Makes a new set with today's code, in `tests/golden/$KCM_GOLDEN_SET` (which
/// must not exist yet):
///
/// ```text
/// KCM_GOLDEN_SET=set-2 cargo test -p kcm-keystore-software --test golden -- --ignored generate_golden_set
/// ```
#[tokio::test]
#[ignore = "makes a new golden set; run by hand, see tests/golden/README.md"]
async fn generate_golden_set() {
    let name = std::env::var("KCM_GOLDEN_SET").expect("KCM_GOLDEN_SET names the new set");
    let out = golden_dir().join(&name);
    assert!(
        !out.exists(),
        "{} exists: sets are never regenerated, make a new one",
        out.display()
    );
    let mut manifest = json!({
        "about": "Golden fixtures of the software keystore, made by kcm's own code; read by tests/golden.rs. Every key and passphrase here is a TEST value, public in this repository.",
        "kcm_commit": commit_of_today(),
        "kcm_version": env!("CARGO_PKG_VERSION"),
        "formats": {
            "handle": "format 1: 0x01, label length (u16 BE), label, AES-256-GCM(master key, root key, aad \"kcm-software-root-v1\" || label)",
            "check": format!("{CHECK_FILE}: JSON, format 1"),
            "params": format!("{PARAMS_FILE}: JSON, argon2id version 0x13"),
            "wrapped": "AES-256-GCM(root key): nonce (12) || ciphertext || tag (16)",
        },
        "wrapped_plaintext_hex": hex::encode(WRAPPED_PLAINTEXT),
    });

    // A master key file.
    let dir = out.join("file-source");
    std::fs::create_dir_all(&dir).unwrap();
    let master = dir.join("master.key");
    std::fs::write(&master, format!("{TEST_MASTER_KEY_HEX}\n")).unwrap();
    set_private(&master);
    let keystore = SoftwareKeystore::open(&dir, MasterKeySource::File(master)).unwrap();
    manifest["file-source"] = json!({
        "master_key_file": "master.key",
        "recovery_parameters": keystore.recovery_parameters(),
        "handles": handles(&out, "file-source", &keystore).await,
    });

    // A passphrase, with its parameters written by the restore path (the same
    // writer as a first start) at a low cost.
    let dir = out.join("passphrase-source");
    std::fs::create_dir_all(&dir).unwrap();
    let source = MasterKeySource::Passphrase(SecretString::new(TEST_PASSPHRASE.into()));
    let (memory_kib, iterations, lanes) = TEST_ARGON2;
    SoftwareKeystore::prepare_restore(
        &dir,
        Some(&json!({
            "master_key_source": "passphrase",
            "passphrase_parameters": {
                "algorithm": "argon2id",
                "version": 0x13,
                "salt_hex": "6b636d20676f6c64656e2073616c7421",
                "memory_kib": memory_kib,
                "iterations": iterations,
                "lanes": lanes,
            },
        })),
        &source,
    )
    .unwrap();
    let keystore = SoftwareKeystore::open(&dir, source).unwrap();
    manifest["passphrase-source"] = json!({
        "passphrase": TEST_PASSPHRASE,
        "recovery_parameters": keystore.recovery_parameters(),
        "handles": handles(&out, "passphrase-source", &keystore).await,
    });

    let mut text = serde_json::to_string_pretty(&manifest).unwrap();
    text.push('\n');
    std::fs::write(out.join("manifest.json"), text).unwrap();
}

/// An imported and a generated root key of `keystore`, a blob wrapped under each,
/// written under `out/handles/`.
async fn handles(out: &Path, source: &str, keystore: &SoftwareKeystore) -> Value {
    let dir = out.join("handles");
    std::fs::create_dir_all(&dir).unwrap();
    let imported = keystore
        .import_root_key(
            "kcm-root-00000000-0000-4000-8000-00000000a001",
            &SecretBytes::copy_from(&TEST_ROOT_MATERIAL),
        )
        .await
        .unwrap();
    let generated = keystore
        .create_root_key("kcm-root-00000000-0000-4000-8000-00000000a002")
        .await
        .unwrap();
    let mut list = Vec::new();
    for (origin, handle) in [("imported", imported), ("generated", generated)] {
        let wrapped = keystore
            .wrap(
                &handle,
                &SecretBytes::copy_from(WRAPPED_PLAINTEXT),
                WRAPPED_AAD,
            )
            .await
            .unwrap();
        let handle_file = format!("handles/{source}-{origin}.handle");
        let wrapped_file = format!("handles/{source}-{origin}.wrapped");
        std::fs::write(out.join(&handle_file), &handle).unwrap();
        std::fs::write(out.join(&wrapped_file), &wrapped).unwrap();
        list.push(json!({
            "origin": origin,
            "handle_file": handle_file,
            "wrapped_file": wrapped_file,
            "aad_hex": hex::encode(WRAPPED_AAD),
            "plaintext_hex": hex::encode(WRAPPED_PLAINTEXT),
        }));
    }
    json!(list)
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
