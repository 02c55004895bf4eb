//! The PKCS#11 keystore against a real SoftHSM2 (no mocks): the shared keystore
//! conformance suite, and what is the PKCS#11 keystore's own (handle and blob
//! layout, attributes in the token, configuration errors, the session pool, and
//! recovery after the token went away).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` and discovers its tokens once, at `C_Initialize`,
//! and a module is initialised once per process. So this one test binary sets up one
//! temporary token directory with a pool of fresh tokens before anything loads the
//! module ([`hsm`], with `kcm_test_support::softhsm`), inside a `OnceLock`, so tests
//! running in parallel all wait for it. Each test then takes a token of its own
//! ([`Hsm::token`]), so tests never share a token or its login state.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider};
use kcm_core::secret::{SecretBytes, SecretString};
use kcm_keystore_pkcs11::{key_id, Pkcs11Config, Pkcs11Keystore};
use kcm_test_support::keystore_conformance::{Destroy, Disable, Expected, KeyHolder, Subject};
use kcm_test_support::softhsm::{SoftHsm, PIN};

/// Tokens created up front; at least the number of tests that call `token()`
/// (the conformance suite's checks included).
const TOKENS: usize = 40;

struct Hsm {
    tokens: SoftHsm,
    /// The test's own view of the module (the same library instance as the
    /// keystore's), for inspecting the token behind the keystore's back.
    ctx: Pkcs11,
}

fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let tokens = SoftHsm::with_tokens(TOKENS);
        // Set before any thread loads the module; every test waits for this OnceLock.
        std::env::set_var("SOFTHSM2_CONF", tokens.conf());
        let ctx = Pkcs11::new(tokens.module()).expect("load SoftHSM2");
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        Hsm { tokens, ctx }
    })
}

impl Hsm {
    /// A fresh token no other test uses; returns its label.
    fn token(&self) -> String {
        self.tokens.token()
    }

    fn config(&self, label: &str, pin: &str, max_sessions: usize) -> Pkcs11Config {
        Pkcs11Config {
            module: self.tokens.module().to_owned(),
            token_label: label.to_string(),
            pin: SecretString::new(pin.to_string()),
            max_sessions,
        }
    }

    fn open(&self, label: &str) -> Pkcs11Keystore {
        Pkcs11Keystore::open(self.config(label, PIN, 4)).expect("open keystore")
    }

    /// A keystore open on a fresh token, and the token's label (for a second
    /// keystore or the test's own session on it).
    fn open_fresh(&self) -> (String, Pkcs11Keystore) {
        let label = self.token();
        let ks = self.open(&label);
        (label, ks)
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

    /// Makes an AES-256 key in token `token` the way its holder would, outside kcm.
    fn customer_key(&self, token: &str, name: &str, id: &[u8], decrypt: bool) {
        self.session(token)
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
            .unwrap();
    }
}

/// The customer, making keys in the token kcm uses (HYOK), referred to by label.
struct Customer {
    token: String,
    made: std::sync::atomic::AtomicU8,
}

#[async_trait::async_trait]
impl KeyHolder for Customer {
    async fn new_key(&self) -> String {
        let n = self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("customer-{n}");
        hsm().customer_key(&self.token, &name, &[0xc0, n], true);
        format!("label:{name}")
    }

    fn missing_reference(&self) -> String {
        "label:nobody".into()
    }
}

/// A keystore on a fresh token, as a conformance subject.
async fn subject() -> Subject {
    let hsm = hsm();
    let token = hsm.token();
    let expected = Expected {
        kind: "pkcs11",
        capabilities: Capabilities {
            generate: true,
            import: true,
            reference: true,
        },
        destroy: Destroy::ErasesKey,
        // The token keeps no switch of kcm's: kcm's own state refuses the key.
        disable: Disable::KcmOnly,
    };
    let customer = Customer {
        token: token.clone(),
        made: Default::default(),
    };
    Subject::new(Arc::new(hsm.open(&token)), expected, ()).with_holder(customer)
}

kcm_test_support::keystore_conformance_tests!(subject);

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

/// Handles and blobs are laid out as the crate documentation says; an empty
/// plaintext wraps too (the suite wraps 1 to 64 bytes).
#[tokio::test]
async fn handles_and_blobs_have_the_documented_layout() {
    let hsm = hsm();
    let ks = hsm.open(&hsm.token());
    let handle = ks.create_root_key("root-1").await.unwrap();
    assert_eq!(handle.len(), 17, "format byte and 16-byte CKA_ID");
    let key = secret(&[7u8; 32]);
    let blob = ks.wrap(&handle, &key, b"system-1").await.unwrap();
    assert_eq!(blob.len(), 1 + 12 + 32 + 16);
    let empty = ks.wrap(&handle, &secret(b""), b"").await.unwrap();
    assert!(ks.unwrap(&handle, &empty, b"").await.unwrap().is_empty());
}

#[tokio::test]
async fn generated_key_stays_inside_the_token() {
    let hsm = hsm();
    let (label, ks) = hsm.open_fresh();
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

/// Handles of this keystore's format that name no key: a reference handle of an
/// unknown CKA_ID, and a handle too short for a CKA_ID.
#[tokio::test]
async fn malformed_handles_are_unusable() {
    let hsm = hsm();
    let ks = hsm.open(&hsm.token());
    for bad in [&[2u8; 17][..], &[1u8; 5]] {
        let r = ks.wrap(bad, &secret(b"k"), b"").await;
        assert!(matches!(r, Err(KeystoreError::KeyUnusable(_))), "{r:?}");
    }
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
    let (label, first) = hsm.open_fresh();
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
    let (label, ks) = hsm.open_fresh();
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
    let (label, ks) = hsm.open_fresh();
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
}

/// A customer's own key in the token (HYOK) is referred to by label or by CKA_ID,
/// both naming the same key; references that do not name one AES-256 key usable to
/// encrypt and decrypt are refused. (Using it, and destroying the reference leaving
/// it alone, is the conformance suite's.)
#[tokio::test]
async fn a_customer_key_is_referred_to_by_label_or_id() {
    let hsm = hsm();
    let label = hsm.token();
    hsm.customer_key(&label, "customer-root", &[0xc0, 0xff, 0xee], true);
    hsm.customer_key(&label, "encrypt-only", &[0xe0], false);
    let ks = hsm.open(&label);

    let by_label = ks.reference_root_key("label:customer-root").await.unwrap();
    let by_id = ks.reference_root_key("id:c0ffee").await.unwrap();
    assert_eq!(by_label, by_id);
    assert_eq!(key_id(&by_label).unwrap(), vec![0xc0, 0xff, 0xee]);
    let blob = ks
        .wrap(&by_label, &secret(b"system key"), b"aad")
        .await
        .unwrap();
    let back = ks.unwrap(&by_id, &blob, b"aad").await.unwrap();
    assert!(back.ct_eq(b"system key"));

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
}
