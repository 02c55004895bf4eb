//! The PKCS#11 keystore against a real SoftHSM2 (no mocks).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` and discovers its tokens once, at `C_Initialize`,
//! and a module is initialised once per process. So this one test binary sets up one
//! temporary token directory before anything loads the module: [`hsm`] writes the
//! config, sets the variable and creates a pool of fresh tokens with
//! `softhsm2-util`, all inside a `OnceLock`, so tests running in parallel all wait
//! for it. Each test then takes a token of its own ([`Hsm::token`]), so tests never
//! share a token or its login state.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use kcm_core::keystore::{KeystoreError, KeystoreProvider};
use kcm_core::secret::{SecretBytes, SecretString};
use kcm_keystore_pkcs11::{key_id, Pkcs11Config, Pkcs11Keystore};

const PIN: &str = "user-pin-4711";
const SO_PIN: &str = "so-pin-0815";
/// Tokens created up front; at least the number of tests that call `token()`.
const TOKENS: usize = 24;

struct Hsm {
    _dir: tempfile::TempDir,
    module: PathBuf,
    next: AtomicUsize,
    /// The test's own view of the module (the same library instance as the
    /// keystore's), for inspecting the token behind the keystore's back.
    ctx: Pkcs11,
}

/// Where SoftHSM2's module is; fails (not skips) when it is not installed.
fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("KCM_TEST_PKCS11_MODULE") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "KCM_TEST_PKCS11_MODULE={} does not exist",
            p.display()
        );
        return p;
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect(
        "SoftHSM2 is not installed: these tests need it. Install the `softhsm2` package \
         (apt-get install softhsm2) or set KCM_TEST_PKCS11_MODULE to libsofthsm2.so",
    )
}

fn token_label(i: usize) -> String {
    format!("kcm-test-{i:02}")
}

fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let module = module_path();
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("write softhsm2.conf");
        // Set before any thread loads the module; every test waits for this OnceLock.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for i in 0..TOKENS {
            let out = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(["--init-token", "--free", "--label", &token_label(i)])
                .args(["--pin", PIN, "--so-pin", SO_PIN])
                .output()
                .expect("softhsm2-util not found: install the `softhsm2` package");
            assert!(
                out.status.success(),
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ctx = Pkcs11::new(&module).expect("load SoftHSM2");
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        Hsm {
            _dir: dir,
            module,
            next: AtomicUsize::new(0),
            ctx,
        }
    })
}

impl Hsm {
    /// A fresh token no other test uses; returns its label.
    fn token(&self) -> String {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        assert!(i < TOKENS, "more tests than tokens: raise TOKENS");
        token_label(i)
    }

    fn config(&self, label: &str, pin: &str, max_sessions: usize) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: label.to_string(),
            pin: SecretString::new(pin.to_string()),
            max_sessions,
        }
    }

    fn open(&self, label: &str) -> Pkcs11Keystore {
        Pkcs11Keystore::open(self.config(label, PIN, 4)).expect("open keystore")
    }

    /// A logged-in session of the test's own on token `label`.
    fn session(&self, label: &str) -> Session {
        let slot = self
            .ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| self.ctx.get_token_info(*s).unwrap().label().trim() == label)
            .expect("token slot");
        let session = self.ctx.open_rw_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("login: {e}"),
        }
        session
    }
}

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::copy_from(bytes)
}

fn misconfigured_message(result: Result<Pkcs11Keystore, KeystoreError>) -> String {
    match result {
        Err(KeystoreError::Misconfigured(msg)) => msg,
        Err(e) => panic!("expected Misconfigured, got {e:?}"),
        Ok(_) => panic!("expected Misconfigured, the keystore opened"),
    }
}

#[tokio::test]
async fn generate_wrap_unwrap_round_trip() {
    let hsm = hsm();
    let ks = hsm.open(&hsm.token());
    assert_eq!(ks.kind(), "pkcs11");
    ks.health().await.unwrap();
    let handle = ks.create_root_key("root-1").await.unwrap();
    assert_eq!(handle.len(), 17, "format byte and 16-byte CKA_ID");
    let key = secret(&[7u8; 32]);
    let blob = ks.wrap(&handle, &key, b"system-1").await.unwrap();
    assert_eq!(blob.len(), 1 + 12 + 32 + 16);
    assert!(
        !blob.windows(32).any(|w| w == [7u8; 32]),
        "plaintext in blob"
    );
    let back = ks.unwrap(&handle, &blob, b"system-1").await.unwrap();
    assert!(back.ct_eq(key.expose_secret()));
    // A fresh IV every time.
    let again = ks.wrap(&handle, &key, b"system-1").await.unwrap();
    assert_ne!(blob, again);
    // Empty plaintext and empty aad work too.
    let empty = ks.wrap(&handle, &secret(b""), b"").await.unwrap();
    assert!(ks.unwrap(&handle, &empty, b"").await.unwrap().is_empty());
}

#[tokio::test]
async fn unwrap_rejects_wrong_aad_tampering_and_other_keys() {
    let hsm = hsm();
    let ks = hsm.open(&hsm.token());
    let handle = ks.create_root_key("root-a").await.unwrap();
    let other = ks.create_root_key("root-b").await.unwrap();
    let blob = ks
        .wrap(&handle, &secret(b"data key"), b"aad")
        .await
        .unwrap();

    let fails = |r: Result<SecretBytes, KeystoreError>| {
        assert!(matches!(r, Err(KeystoreError::UnwrapFailed)), "{r:?}")
    };
    fails(ks.unwrap(&handle, &blob, b"other aad").await);
    fails(ks.unwrap(&other, &blob, b"aad").await);
    for i in 0..blob.len() {
        let mut tampered = blob.clone();
        tampered[i] ^= 0x01;
        fails(ks.unwrap(&handle, &tampered, b"aad").await);
    }
    fails(ks.unwrap(&handle, &blob[..blob.len() - 1], b"aad").await);
    fails(ks.unwrap(&handle, &blob[..20], b"aad").await);
    fails(ks.unwrap(&handle, b"", b"aad").await);
    // The sessions stay usable after all those failures.
    let back = ks.unwrap(&handle, &blob, b"aad").await.unwrap();
    assert_eq!(back.expose_secret(), b"data key");
}

#[tokio::test]
async fn generated_key_stays_inside_the_token() {
    let hsm = hsm();
    let label = hsm.token();
    let ks = hsm.open(&label);
    let handle = ks.create_root_key("root-attrs").await.unwrap();

    let session = hsm.session(&label);
    let id = key_id(&handle).unwrap();
    let found = session.find_objects(&[Attribute::Id(id.to_vec())]).unwrap();
    assert_eq!(
        found.len(),
        1,
        "exactly one object with the handle's CKA_ID"
    );
    let attrs = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Private,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::ValueLen,
                AttributeType::Label,
                AttributeType::NeverExtractable,
                AttributeType::AlwaysSensitive,
            ],
        )
        .unwrap();
    let has = |a: Attribute| {
        assert!(
            attrs.iter().any(|b| format!("{b:?}") == format!("{a:?}")),
            "{a:?} missing in {attrs:?}"
        )
    };
    has(Attribute::Token(true));
    has(Attribute::Sensitive(true));
    has(Attribute::Extractable(false));
    has(Attribute::Private(true));
    has(Attribute::Encrypt(true));
    has(Attribute::Decrypt(true));
    has(Attribute::ValueLen(32.into()));
    has(Attribute::Label(b"root-attrs".to_vec()));
    has(Attribute::NeverExtractable(true));
    has(Attribute::AlwaysSensitive(true));
    // And the token refuses to reveal the value.
    let value = session.get_attributes(found[0], &[AttributeType::Value]);
    assert!(
        !matches!(&value, Ok(v) if !v.is_empty()),
        "CKA_VALUE readable: {value:?}"
    );
}

#[tokio::test]
async fn unknown_and_malformed_handles_are_unusable() {
    let hsm = hsm();
    let ks = hsm.open(&hsm.token());
    let unknown = [&[1u8][..], &[0xAB; 16]].concat();
    let r = ks.wrap(&unknown, &secret(b"k"), b"").await;
    assert!(matches!(r, Err(KeystoreError::KeyUnusable(_))), "{r:?}");
    for bad in [&b""[..], &[2u8; 17], &[1u8; 5]] {
        let r = ks.wrap(bad, &secret(b"k"), b"").await;
        assert!(matches!(r, Err(KeystoreError::KeyUnusable(_))), "{r:?}");
    }
}

#[tokio::test]
async fn destroy_makes_the_key_unusable_and_is_idempotent() {
    let hsm = hsm();
    let ks = hsm.open(&hsm.token());
    let handle = ks.create_root_key("root-doomed").await.unwrap();
    let keep = ks.create_root_key("root-kept").await.unwrap();
    let blob = ks.wrap(&handle, &secret(b"k"), b"a").await.unwrap();
    let kept_blob = ks.wrap(&keep, &secret(b"k2"), b"a").await.unwrap();
    ks.check_root_key(&handle).await.unwrap();
    ks.destroy(&handle).await.unwrap();
    let r = ks.check_root_key(&handle).await;
    assert!(matches!(r, Err(KeystoreError::KeyUnusable(_))), "{r:?}");
    ks.check_root_key(&keep).await.unwrap();
    let r = ks.unwrap(&handle, &blob, b"a").await;
    assert!(matches!(r, Err(KeystoreError::KeyUnusable(_))), "{r:?}");
    let r = ks.wrap(&handle, &secret(b"k"), b"a").await;
    assert!(matches!(r, Err(KeystoreError::KeyUnusable(_))), "{r:?}");
    ks.destroy(&handle).await.unwrap();
    // Only that key is gone.
    let back = ks.unwrap(&keep, &kept_blob, b"a").await.unwrap();
    assert_eq!(back.expose_secret(), b"k2");
}

#[tokio::test]
async fn a_key_destroyed_by_another_keystore_is_unusable() {
    // The first keystore has the key's object handle cached.
    let hsm = hsm();
    let label = hsm.token();
    let (a, b) = (hsm.open(&label), hsm.open(&label));
    let handle = a.create_root_key("root-shared").await.unwrap();
    let blob = a.wrap(&handle, &secret(b"k"), b"").await.unwrap();
    b.destroy(&handle).await.unwrap();
    let r = a.unwrap(&handle, &blob, b"").await;
    assert!(matches!(r, Err(KeystoreError::KeyUnusable(_))), "{r:?}");
}

#[tokio::test]
async fn wrong_pin_is_misconfigured_and_not_echoed() {
    let hsm = hsm();
    let label = hsm.token();
    let wrong = "not-the-pin-9876";
    let msg = misconfigured_message(Pkcs11Keystore::open(hsm.config(&label, wrong, 2)));
    assert!(msg.contains("wrong PIN"), "{msg}");
    assert!(msg.contains(&label), "{msg}");
    assert!(!msg.contains(wrong) && !msg.contains(PIN), "{msg}");
    // The right PIN still works afterwards.
    hsm.open(&label);
}

#[tokio::test]
async fn unknown_token_label_is_misconfigured_and_lists_labels() {
    let hsm = hsm();
    let msg = misconfigured_message(Pkcs11Keystore::open(hsm.config("no-such-token", PIN, 2)));
    assert!(msg.contains("no token labelled \"no-such-token\""), "{msg}");
    assert!(
        msg.contains("\"kcm-test-00\""),
        "lists the labels found: {msg}"
    );
    assert!(!msg.contains(PIN), "{msg}");
}

#[tokio::test]
async fn missing_module_is_misconfigured_and_names_the_path() {
    let hsm = hsm();
    let mut config = hsm.config("kcm-test-00", PIN, 2);
    config.module = PathBuf::from("/nonexistent/libpkcs11-missing.so");
    let msg = misconfigured_message(Pkcs11Keystore::open(config));
    assert!(msg.contains("/nonexistent/libpkcs11-missing.so"), "{msg}");
    assert!(!msg.contains(PIN), "{msg}");
    let msg = misconfigured_message(Pkcs11Keystore::open(hsm.config("kcm-test-00", PIN, 0)));
    assert!(msg.contains("max_sessions"), "{msg}");
}

#[tokio::test]
async fn debug_output_has_no_pin() {
    let hsm = hsm();
    let label = hsm.token();
    let config = hsm.config(&label, PIN, 2);
    assert!(!format!("{config:?}").contains(PIN));
    let ks = Pkcs11Keystore::open(config).unwrap();
    let shown = format!("{ks:?}");
    assert!(shown.contains(&label) && !shown.contains(PIN), "{shown}");
}

#[tokio::test]
async fn a_restarted_keystore_unwraps_what_the_first_wrapped() {
    let hsm = hsm();
    let label = hsm.token();
    let first = hsm.open(&label);
    let handle = first.create_root_key("root-persistent").await.unwrap();
    let blob = first
        .wrap(&handle, &secret(b"system key"), b"sys")
        .await
        .unwrap();
    // Dropping it closes its sessions, which logs the application out of the token.
    drop(first);
    let second = hsm.open(&label);
    let back = second.unwrap(&handle, &blob, b"sys").await.unwrap();
    assert_eq!(back.expose_secret(), b"system key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_share_a_bounded_pool() {
    let hsm = hsm();
    let label = hsm.token();
    let ks = Arc::new(Pkcs11Keystore::open(hsm.config(&label, PIN, 4)).unwrap());
    let handle = Arc::new(ks.create_root_key("root-busy").await.unwrap());
    let tasks: Vec<_> = (0..32u8)
        .map(|i| {
            let (ks, handle) = (Arc::clone(&ks), Arc::clone(&handle));
            tokio::spawn(async move {
                for round in 0..5u8 {
                    let plain = secret(&[i, round, 0xEE]);
                    let aad = [b'a', i, round];
                    let blob = ks.wrap(&handle, &plain, &aad).await.unwrap();
                    let back = ks.unwrap(&handle, &blob, &aad).await.unwrap();
                    assert_eq!(back, plain);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn recovers_after_the_token_logs_out() {
    // What a rebooted or failed-over HSM looks like to a client: the login is gone.
    // The keystore must answer Unavailable once, then reconnect and log in again.
    let hsm = hsm();
    let label = hsm.token();
    let ks = hsm.open(&label);
    let handle = ks.create_root_key("root-resilient").await.unwrap();
    let blob = ks.wrap(&handle, &secret(b"k"), b"").await.unwrap();

    // Login state is per application and token: logging out here logs out the
    // keystore's pooled sessions too.
    hsm.session(&label).logout().unwrap();
    let r = ks.unwrap(&handle, &blob, b"").await;
    assert!(
        matches!(&r, Err(KeystoreError::Unavailable(m)) if m.contains("not reachable")),
        "{r:?}"
    );

    let back = ks.unwrap(&handle, &blob, b"").await.unwrap();
    assert_eq!(back.expose_secret(), b"k");
    ks.health().await.unwrap();
}

#[tokio::test]
async fn health_notices_a_lost_login_and_recovers() {
    let hsm = hsm();
    let label = hsm.token();
    let ks = hsm.open(&label);
    ks.health().await.unwrap();
    hsm.session(&label).logout().unwrap();
    let r = ks.health().await;
    assert!(
        matches!(&r, Err(KeystoreError::Unavailable(m)) if m.contains("not reachable")),
        "{r:?}"
    );
    ks.health().await.unwrap();
}

/// An imported root key is the customer's material itself (what the token wraps
/// opens with that material outside it), kept as non-extractable as a generated one.
#[tokio::test]
async fn imported_material_is_the_root_key_and_stays_in_the_token() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let hsm = hsm();
    let ks = hsm.open(&hsm.token());
    assert!(ks.capabilities().import);
    let material = [42u8; 32];
    let handle = ks
        .import_root_key("byok-1", &secret(&material))
        .await
        .unwrap();
    let blob = ks
        .wrap(&handle, &secret(b"a system key"), b"aad")
        .await
        .unwrap();
    // The blob is format byte ‖ IV ‖ ciphertext ‖ tag: open it with the material.
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &material).unwrap());
    let nonce = Nonce::try_assume_unique_for_key(&blob[1..13]).unwrap();
    let mut sealed = blob[13..].to_vec();
    let opened = key
        .open_in_place(nonce, Aad::from(b"aad"), &mut sealed)
        .unwrap();
    assert_eq!(opened, b"a system key");
    assert!(ks
        .import_root_key("byok-2", &secret(&[1u8; 16]))
        .await
        .is_err());
}

/// A customer's own key in the token (HYOK) is referred to by label or id; kcm wraps
/// with it, and destroying the reference leaves the key alone.
#[tokio::test]
async fn a_referenced_customer_key_is_used_and_never_destroyed() {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{KeyType, ObjectClass};
    let hsm = hsm();
    let label = hsm.token();
    let session = hsm.session(&label);
    let customer = |name: &str, id: &[u8], decrypt: bool| {
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(decrypt),
                    Attribute::Label(name.as_bytes().to_vec()),
                    Attribute::Id(id.to_vec()),
                ],
            )
            .unwrap()
    };
    customer("customer-root", &[0xc0, 0xff, 0xee], true);
    customer("encrypt-only", &[0xe0], false);
    let ks = hsm.open(&label);
    assert!(ks.capabilities().reference);

    let by_label = ks.reference_root_key("label:customer-root").await.unwrap();
    let by_id = ks.reference_root_key("id:c0ffee").await.unwrap();
    assert_eq!(by_label, by_id);
    assert_eq!(key_id(&by_label).unwrap(), vec![0xc0, 0xff, 0xee]);
    let blob = ks
        .wrap(&by_label, &secret(b"system key"), b"aad")
        .await
        .unwrap();

    for bad in [
        "label:nobody",
        "label:encrypt-only",
        "id:zz",
        "id:",
        "customer-root",
    ] {
        let err = ks.reference_root_key(bad).await.unwrap_err();
        assert!(
            matches!(err, KeystoreError::KeyUnusable(_)),
            "{bad}: {err:?}"
        );
    }

    // Forgetting the reference leaves the customer's key in place and working.
    ks.destroy(&by_label).await.unwrap();
    let back = ks.unwrap(&by_id, &blob, b"aad").await.unwrap();
    assert!(back.ct_eq(b"system key"));
}
