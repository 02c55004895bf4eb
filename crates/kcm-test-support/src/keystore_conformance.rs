//! The shared conformance suite every [`KeystoreProvider`] must pass.
//!
//! It tests the behaviour the trait documents, through the trait only, so the
//! software keystore, a PKCS#11 token, a keystore plugin and an XKS proxy are held
//! to one contract: keys made, imported or referred to; the wrap/unwrap round trip;
//! associated data bound into every blob; tampered, truncated and foreign blobs
//! refused as [`KeystoreError::UnwrapFailed`]; handles that name no key refused as
//! [`KeystoreError::KeyUnusable`]; destroy; the kill switch's disable and enable;
//! health; and concurrent use.
//!
//! Nothing is skipped. What a provider's [`Capabilities`] exclude is checked to be
//! refused with [`KeystoreError::Unsupported`], as the trait's defaults do. Where the
//! trait leaves a provider a choice, the provider's test states which one it made
//! ([`Expected::destroy`], [`Expected::disable`]) and the suite holds it to it.
//!
//! Use, from a provider crate's `tests/` (with `tokio` as a dev-dependency):
//!
//! ```text
//! kcm_test_support::keystore_conformance_tests!(make_subject);
//! ```
//!
//! generates one `#[tokio::test]` per check, each calling `make_subject().await`
//! for a [`Subject`] of its own. [`run_all`] runs every check in sequence instead.
//!
//! What stays with each provider's own tests: how its handles and blobs are laid
//! out, that imported material really is the key (that needs the blob format), its
//! persistence across a restart, its configuration errors, and how it recovers
//! from the outages of whatever it talks to.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::join_all;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::SecretBytes;

/// How a provider's [`KeystoreProvider::destroy`] treats a key kcm made or imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destroy {
    /// The key is erased: its handle names no key afterwards (`KeyUnusable`), and
    /// destroying it again succeeds.
    ErasesKey,
    /// The key's material lives in its (sealed) handle, which the core erases from
    /// the store; the provider only forgets what it cached, so the handle would
    /// still work (the software keystore).
    HandleCarriesKey,
}

/// How a provider treats [`KeystoreProvider::disable_root_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disable {
    /// It refuses every use of a disabled key (`KeyUnusable`) until it is enabled.
    RefusesUse,
    /// It keeps no switch of its own (the trait's default): kcm's state is the only
    /// authority, and the key keeps working.
    KcmOnly,
}

/// What the provider under test is expected to be and to choose.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    /// [`KeystoreProvider::kind`].
    pub kind: &'static str,
    /// [`KeystoreProvider::capabilities`].
    pub capabilities: Capabilities,
    /// What destroy does to a key kcm made or imported.
    pub destroy: Destroy,
    /// What disable does.
    pub disable: Disable,
}

/// Stands for the holder of keys a provider only refers to (HYOK): the customer
/// making a key in their own HSM, key manager or plugin, outside kcm.
#[async_trait]
pub trait KeyHolder: Send + Sync {
    /// Makes a new key the way its holder would and returns the reference that
    /// names it in the keystore's own terms (what
    /// [`KeystoreProvider::reference_root_key`] takes).
    async fn new_key(&self) -> String;

    /// A well-formed reference that names no key.
    fn missing_reference(&self) -> String;
}

/// One provider instance under test, with what it is expected to do.
pub struct Subject {
    /// The provider.
    pub keystore: Arc<dyn KeystoreProvider>,
    /// What it is expected to be and to choose.
    pub expected: Expected,
    /// The holder of keys it can refer to; required when it can refer to keys.
    pub holder: Option<Box<dyn KeyHolder>>,
    /// Whatever must live as long as the check runs (a temporary directory, a
    /// token, a child process, …).
    pub guard: Box<dyn Any + Send + Sync>,
}

impl Subject {
    /// A subject without a key holder, for a provider that cannot refer to keys.
    pub fn new(
        keystore: Arc<dyn KeystoreProvider>,
        expected: Expected,
        guard: impl Any + Send + Sync,
    ) -> Self {
        Self {
            keystore,
            expected,
            holder: None,
            guard: Box::new(guard),
        }
    }

    /// Adds the holder of the keys the provider refers to.
    pub fn with_holder(mut self, holder: impl KeyHolder + 'static) -> Self {
        self.holder = Some(Box::new(holder));
        self
    }

    fn ks(&self) -> &dyn KeystoreProvider {
        self.keystore.as_ref()
    }

    fn caps(&self) -> Capabilities {
        self.expected.capabilities
    }

    fn holder(&self) -> &dyn KeyHolder {
        self.holder
            .as_deref()
            .expect("a keystore that can refer to keys needs a KeyHolder in its Subject")
    }

    /// A new root key by the first way the provider offers: generated, imported,
    /// or referred to. What the other checks wrap with.
    async fn usable_key(&self, label: &str) -> Vec<u8> {
        let caps = self.caps();
        let handle = if caps.generate {
            self.ks().create_root_key(label).await
        } else if caps.import {
            self.ks()
                .import_root_key(label, &SecretBytes::random(32))
                .await
        } else if caps.reference {
            let reference = self.holder().new_key().await;
            self.ks().reference_root_key(&reference).await
        } else {
            panic!(
                "a keystore that can neither generate, import nor refer to keys has none to test"
            )
        };
        let handle = handle.unwrap_or_else(|e| panic!("a usable root key ({label}): {e:?}"));
        assert!(!handle.is_empty(), "an empty handle");
        handle
    }

    /// A new usable key (see [`Subject::usable_key`]) and the blob it wraps `secret`
    /// into with the associated data `b"aad"`: where most checks begin.
    async fn usable_key_with_blob(&self, label: &str, secret: &SecretBytes) -> (Vec<u8>, Vec<u8>) {
        let handle = self.usable_key(label).await;
        let blob = self.wrap(&handle, secret, b"aad").await;
        (handle, blob)
    }

    /// Every way the provider can give kcm a key, one key each, named by how.
    async fn keys_of_every_origin(&self) -> Vec<(&'static str, Vec<u8>)> {
        let caps = self.caps();
        let mut keys = Vec::new();
        if caps.generate {
            keys.push(("generated", ok(self.ks().create_root_key("gen").await)));
        }
        if caps.import {
            let material = SecretBytes::random(32);
            let handle = self.ks().import_root_key("byok", &material).await;
            keys.push(("imported", ok(handle)));
        }
        if caps.reference {
            let reference = self.holder().new_key().await;
            keys.push((
                "referenced",
                ok(self.ks().reference_root_key(&reference).await),
            ));
        }
        keys
    }

    async fn wrap(&self, handle: &[u8], plaintext: &SecretBytes, aad: &[u8]) -> Vec<u8> {
        ok(self.ks().wrap(handle, plaintext, aad).await)
    }

    async fn unwrap(&self, handle: &[u8], blob: &[u8], aad: &[u8]) -> SecretBytes {
        ok(self.ks().unwrap(handle, blob, aad).await)
    }

    /// Asserts `handle` still wraps and unwraps, and `blob` (made by it) still opens.
    async fn assert_usable(&self, handle: &[u8], blob: &[u8], plaintext: &SecretBytes, aad: &[u8]) {
        assert_eq!(&self.unwrap(handle, blob, aad).await, plaintext);
        let again = self.wrap(handle, plaintext, aad).await;
        assert_eq!(&self.unwrap(handle, &again, aad).await, plaintext);
        ok(self.ks().check_root_key(handle).await);
    }

    /// Asserts every use of `handle` is refused as `KeyUnusable`.
    async fn assert_unusable(&self, handle: &[u8], blob: &[u8], aad: &[u8], why: &str) {
        let plaintext = SecretBytes::random(32);
        unusable(self.ks().wrap(handle, &plaintext, aad).await, why);
        unusable(self.ks().unwrap(handle, blob, aad).await, why);
        unusable(self.ks().check_root_key(handle).await, why);
    }
}

/// The value of a call that must succeed.
#[track_caller]
fn ok<T>(result: KeystoreResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("expected success, got {e:?}"))
}

/// The name of `e`'s variant, for comparing errors by kind.
fn kind_of(e: &KeystoreError) -> &'static str {
    match e {
        KeystoreError::Unavailable(_) => "Unavailable",
        KeystoreError::KeyUnusable(_) => "KeyUnusable",
        KeystoreError::UnwrapFailed => "UnwrapFailed",
        KeystoreError::Misconfigured(_) => "Misconfigured",
        KeystoreError::Unsupported(_) => "Unsupported",
        _ => "an error kind this suite does not know",
    }
}

/// Asserts `result` failed with the [`KeystoreError`] variant named `expected`.
#[track_caller]
fn fails_as<T>(result: KeystoreResult<T>, expected: &str, what: &str) {
    let error = result.err();
    assert_eq!(
        error.as_ref().map(kind_of),
        Some(expected),
        "{what}: expected {expected}, got {error:?}"
    );
}

/// Asserts `result` is [`KeystoreError::UnwrapFailed`].
#[track_caller]
fn unwrap_failed<T>(result: KeystoreResult<T>, what: &str) {
    fails_as(result, "UnwrapFailed", what)
}

/// Asserts `result` is [`KeystoreError::KeyUnusable`].
#[track_caller]
fn unusable<T>(result: KeystoreResult<T>, what: &str) {
    fails_as(result, "KeyUnusable", what)
}

/// Asserts `result` is [`KeystoreError::Unsupported`].
#[track_caller]
fn unsupported<T>(result: KeystoreResult<T>, what: &str) {
    fails_as(result, "Unsupported", what)
}

/// Handles no provider issues: empty, the wrong format byte, too short, plain text.
const FOREIGN_HANDLES: [&[u8]; 5] = [
    b"",
    b"\x00",
    b"\x7fnot a handle",
    b"not-a-handle",
    &[0xAB; 17],
];

/// Lists every check, calling back the macro named `$callback` (an exported macro of
/// this crate) with `{ $args } check_a, check_b, …`. The single source of the list.
#[doc(hidden)]
#[macro_export]
macro_rules! __keystore_conformance_checks {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { { $($args)* }
            kind_and_capabilities_are_as_expected,
            a_healthy_keystore_passes_its_health_check,
            create_gives_distinct_keys_or_is_unsupported,
            import_takes_exactly_32_bytes_or_is_unsupported,
            reference_names_the_holders_key_or_is_unsupported,
            wrap_unwrap_round_trip_with_keys_of_every_origin,
            every_wrap_uses_a_fresh_nonce,
            unwrap_is_bound_to_the_associated_data,
            a_tampered_or_truncated_blob_does_not_unwrap,
            another_keys_blob_does_not_unwrap,
            a_handle_of_no_key_is_unusable,
            destroy_is_idempotent_and_touches_only_its_key,
            destroying_a_reference_leaves_the_holders_key,
            disable_and_enable_do_what_the_provider_says,
            concurrent_calls_all_succeed,
        }
    };
}

/// Generates one `#[tokio::test]` per keystore conformance check.
///
/// `$make` is anything callable with no arguments that returns a future of a
/// [`Subject`]: a closure returning an
/// async block, or the path of an `async fn`.
#[macro_export]
macro_rules! keystore_conformance_tests {
    ($make:expr) => {
        $crate::__keystore_conformance_checks!(__keystore_conformance_emit_tests { $make });
    };
}

/// Emits the tests for [`keystore_conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __keystore_conformance_emit_tests {
    ({ $make:expr } $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let subject = ($make)().await;
                $crate::keystore_conformance::checks::$name(&subject).await;
            }
        )*
    };
}

/// Emits [`run_all`].
#[doc(hidden)]
#[macro_export]
macro_rules! __keystore_conformance_emit_run_all {
    ({} $($name:ident),* $(,)?) => {
        /// Runs every check in sequence, each on a fresh subject from `make`.
        pub async fn run_all<F, Fut>(make: F)
        where
            F: Fn() -> Fut,
            Fut: Future<Output = Subject>,
        {
            $(
                {
                    let subject = make().await;
                    checks::$name(&subject).await;
                }
            )*
        }
    };
}

crate::__keystore_conformance_checks!(__keystore_conformance_emit_run_all {});

/// The individual checks; each expects a fresh, healthy provider.
pub mod checks {
    use super::*;

    /// The provider says what it is and what it can do, as expected.
    pub async fn kind_and_capabilities_are_as_expected(s: &Subject) {
        assert_eq!(s.ks().kind(), s.expected.kind);
        assert_eq!(s.ks().capabilities(), s.expected.capabilities);
    }

    /// `health` answers on a provider that works, and keeps answering.
    pub async fn a_healthy_keystore_passes_its_health_check(s: &Subject) {
        ok(s.ks().health().await);
        let handle = s.usable_key("after-health").await;
        ok(s.ks().health().await);
        ok(s.ks().check_root_key(&handle).await);
    }

    /// A provider that generates gives a new key per call (two calls with the same
    /// label are two keys); one that does not refuses as `Unsupported`.
    pub async fn create_gives_distinct_keys_or_is_unsupported(s: &Subject) {
        if !s.caps().generate {
            unsupported(s.ks().create_root_key("root").await, "create_root_key");
            return;
        }
        let a = ok(s.ks().create_root_key("same-label").await);
        let b = ok(s.ks().create_root_key("same-label").await);
        assert!(!a.is_empty());
        assert_ne!(a, b, "two keys, two handles");
        ok(s.ks().check_root_key(&a).await);
        let secret = SecretBytes::random(32);
        let blob = s.wrap(&a, &secret, b"aad").await;
        unwrap_failed(s.ks().unwrap(&b, &blob, b"aad").await, "the other key");
    }

    /// A provider that imports (BYOK) takes exactly 32 bytes of AES-256 material and
    /// refuses any other length; one that does not refuses as `Unsupported`.
    pub async fn import_takes_exactly_32_bytes_or_is_unsupported(s: &Subject) {
        let material = SecretBytes::random(32);
        if !s.caps().import {
            unsupported(s.ks().import_root_key("byok", &material).await, "import");
            return;
        }
        let handle = ok(s.ks().import_root_key("byok-1", &material).await);
        assert!(
            !handle
                .windows(material.len())
                .any(|w| w == material.expose_secret()),
            "the handle holds the imported material in the clear"
        );
        let secret = SecretBytes::copy_from(b"a system key");
        let blob = s.wrap(&handle, &secret, b"aad").await;
        assert_eq!(s.unwrap(&handle, &blob, b"aad").await, secret);
        // The same material imported again is a second key that opens the same blobs.
        let twin = ok(s.ks().import_root_key("byok-2", &material).await);
        assert_eq!(s.unwrap(&twin, &blob, b"aad").await, secret);
        for len in [0, 16, 31, 33, 64] {
            let wrong = SecretBytes::random(len);
            let result = s.ks().import_root_key("byok-bad", &wrong).await;
            assert!(result.is_err(), "{len} bytes of material were imported");
        }
    }

    /// A provider that refers to keys (HYOK) gives a handle for its holder's key that
    /// wraps and unwraps, and refuses a reference to no key as `KeyUnusable`; one
    /// that does not refuses as `Unsupported`.
    pub async fn reference_names_the_holders_key_or_is_unsupported(s: &Subject) {
        if !s.caps().reference {
            unsupported(s.ks().reference_root_key("any-key").await, "reference");
            return;
        }
        let reference = s.holder().new_key().await;
        let handle = ok(s.ks().reference_root_key(&reference).await);
        assert!(!handle.is_empty());
        // Referring to the same key twice names the same key.
        let again = ok(s.ks().reference_root_key(&reference).await);
        let secret = SecretBytes::random(32);
        let blob = s.wrap(&handle, &secret, b"aad").await;
        assert_eq!(s.unwrap(&again, &blob, b"aad").await, secret);
        ok(s.ks().check_root_key(&handle).await);
        let missing = s.holder().missing_reference();
        unusable(
            s.ks().reference_root_key(&missing).await,
            "a reference to no key",
        );
    }

    /// What is wrapped unwraps to the same bytes, with every key the provider can
    /// give, with and without associated data; the blob does not hold the plaintext.
    pub async fn wrap_unwrap_round_trip_with_keys_of_every_origin(s: &Subject) {
        let keys = s.keys_of_every_origin().await;
        assert!(!keys.is_empty(), "no way to get a key");
        for (origin, handle) in &keys {
            for (len, aad) in [
                (32, &b"system-1"[..]),
                (32, b""),
                (1, b"x"),
                (64, b"\x00\xff"),
            ] {
                let secret = SecretBytes::random(len);
                let blob = s.wrap(handle, &secret, aad).await;
                assert!(
                    !blob
                        .windows(secret.len())
                        .any(|w| len > 1 && w == secret.expose_secret()),
                    "{origin}: the plaintext is in the blob"
                );
                let back = s.unwrap(handle, &blob, aad).await;
                assert!(back.ct_eq(secret.expose_secret()), "{origin}: {len} bytes");
            }
        }
    }

    /// Wrapping the same plaintext twice gives two different blobs (a fresh nonce
    /// each time), and both unwrap.
    pub async fn every_wrap_uses_a_fresh_nonce(s: &Subject) {
        let handle = s.usable_key("nonce").await;
        let secret = SecretBytes::random(32);
        let first = s.wrap(&handle, &secret, b"aad").await;
        let second = s.wrap(&handle, &secret, b"aad").await;
        assert_ne!(first, second);
        assert_eq!(s.unwrap(&handle, &first, b"aad").await, secret);
        assert_eq!(s.unwrap(&handle, &second, b"aad").await, secret);
    }

    /// A blob unwraps only with the associated data it was wrapped with: any other
    /// (empty, longer, shorter, one bit off) is `UnwrapFailed`.
    pub async fn unwrap_is_bound_to_the_associated_data(s: &Subject) {
        let secret = SecretBytes::random(32);
        let (handle, blob) = s.usable_key_with_blob("aad", &secret).await;
        for aad in [&b"other"[..], b"", b"aad\0", b"aa", b"aae", b"AAD"] {
            let what = format!("unwrap with aad {:?}", String::from_utf8_lossy(aad));
            unwrap_failed(s.ks().unwrap(&handle, &blob, aad).await, &what);
        }
        let unbound = s.wrap(&handle, &secret, b"").await;
        unwrap_failed(
            s.ks().unwrap(&handle, &unbound, b"aad").await,
            "aad given where none was bound",
        );
        // The failures changed nothing.
        assert_eq!(s.unwrap(&handle, &blob, b"aad").await, secret);
    }

    /// Flipping any bit of any byte of a blob, cutting it short, or emptying it makes
    /// it `UnwrapFailed` (a blob that is not the provider's cannot authenticate), and
    /// the provider stays usable after all those failures.
    pub async fn a_tampered_or_truncated_blob_does_not_unwrap(s: &Subject) {
        let secret = SecretBytes::random(32);
        let (handle, blob) = s.usable_key_with_blob("tamper", &secret).await;
        for i in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x01;
            let what = format!("bit 0 of byte {i} flipped");
            unwrap_failed(s.ks().unwrap(&handle, &tampered, b"aad").await, &what);
        }
        let mut appended = blob.clone();
        appended.push(0);
        for (what, cut) in [
            ("the last byte cut", &blob[..blob.len() - 1]),
            ("cut to 20 bytes", &blob[..20]),
            ("cut to 5 bytes", &blob[..5]),
            ("empty", &blob[..0]),
            ("a byte appended", &appended[..]),
        ] {
            unwrap_failed(s.ks().unwrap(&handle, cut, b"aad").await, what);
        }
        assert_eq!(s.unwrap(&handle, &blob, b"aad").await, secret);
    }

    /// A blob wrapped by one key is `UnwrapFailed` under another key of the same
    /// provider.
    pub async fn another_keys_blob_does_not_unwrap(s: &Subject) {
        let first = s.usable_key("first").await;
        let second = s.usable_key("second").await;
        assert_ne!(first, second);
        let secret = SecretBytes::random(32);
        let blob = s.wrap(&first, &secret, b"aad").await;
        unwrap_failed(s.ks().unwrap(&second, &blob, b"aad").await, "the other key");
        let blob = s.wrap(&second, &secret, b"aad").await;
        unwrap_failed(s.ks().unwrap(&first, &blob, b"aad").await, "the first key");
    }

    /// A handle the provider never issued (wrong format, garbage, a handle changed in
    /// one bit) names no key: wrap and unwrap refuse it as `KeyUnusable`, and the
    /// genuine handle keeps working.
    pub async fn a_handle_of_no_key_is_unusable(s: &Subject) {
        let secret = SecretBytes::random(32);
        let (handle, blob) = s.usable_key_with_blob("genuine", &secret).await;
        let mut changed = handle.clone();
        *changed.last_mut().expect("a non-empty handle") ^= 0x01;
        let foreign = FOREIGN_HANDLES.iter().map(|h| h.to_vec());
        for bad in foreign.chain([changed]) {
            let what = format!("handle {bad:02x?}");
            unusable(s.ks().wrap(&bad, &secret, b"aad").await, &what);
            unusable(s.ks().unwrap(&bad, &blob, b"aad").await, &what);
        }
        assert_eq!(s.unwrap(&handle, &blob, b"aad").await, secret);
    }

    /// Destroying a key kcm made or imported does what the provider says
    /// ([`Destroy`]), succeeds again when repeated, and leaves every other key alone.
    /// A provider that can only refer to keys has nothing of its own to destroy:
    /// destroy changes nothing (see the next check).
    pub async fn destroy_is_idempotent_and_touches_only_its_key(s: &Subject) {
        let caps = s.caps();
        if !(caps.generate || caps.import) {
            let secret = SecretBytes::random(32);
            let (handle, blob) = s.usable_key_with_blob("kept", &secret).await;
            ok(s.ks().destroy(&handle).await);
            s.assert_usable(&handle, &blob, &secret, b"aad").await;
            return;
        }
        let secret = SecretBytes::random(32);
        let (doomed, doomed_blob) = s.usable_key_with_blob("doomed", &secret).await;
        let (kept, kept_blob) = s.usable_key_with_blob("kept", &secret).await;
        ok(s.ks().check_root_key(&doomed).await);
        ok(s.ks().destroy(&doomed).await);
        match s.expected.destroy {
            Destroy::ErasesKey => {
                s.assert_unusable(&doomed, &doomed_blob, b"aad", "a destroyed key")
                    .await
            }
            Destroy::HandleCarriesKey => {
                s.assert_usable(&doomed, &doomed_blob, &secret, b"aad")
                    .await
            }
        }
        ok(s.ks().destroy(&doomed).await);
        s.assert_usable(&kept, &kept_blob, &secret, b"aad").await;
    }

    /// A key the provider only refers to is the holder's: destroying the reference
    /// changes nothing, and the key keeps working. A provider that cannot refer to
    /// keys refuses to (see `reference_names_the_holders_key_or_is_unsupported`).
    pub async fn destroying_a_reference_leaves_the_holders_key(s: &Subject) {
        if !s.caps().reference {
            unsupported(s.ks().reference_root_key("any-key").await, "reference");
            return;
        }
        let reference = s.holder().new_key().await;
        let handle = ok(s.ks().reference_root_key(&reference).await);
        let secret = SecretBytes::random(32);
        let blob = s.wrap(&handle, &secret, b"aad").await;
        ok(s.ks().destroy(&handle).await);
        ok(s.ks().destroy(&handle).await);
        s.assert_usable(&handle, &blob, &secret, b"aad").await;
        let again = ok(s.ks().reference_root_key(&reference).await);
        assert_eq!(s.unwrap(&again, &blob, b"aad").await, secret);
    }

    /// The kill switch: disabling a key (twice: it is idempotent) does what the
    /// provider says ([`Disable`]), and enabling it makes it work again, with every
    /// blob made before.
    pub async fn disable_and_enable_do_what_the_provider_says(s: &Subject) {
        let secret = SecretBytes::random(32);
        let (handle, blob) = s.usable_key_with_blob("switched", &secret).await;
        let (other, other_blob) = s.usable_key_with_blob("bystander", &secret).await;
        ok(s.ks().disable_root_key(&handle).await);
        ok(s.ks().disable_root_key(&handle).await);
        match s.expected.disable {
            Disable::RefusesUse => {
                s.assert_unusable(&handle, &blob, b"aad", "a disabled key")
                    .await
            }
            Disable::KcmOnly => s.assert_usable(&handle, &blob, &secret, b"aad").await,
        }
        s.assert_usable(&other, &other_blob, &secret, b"aad").await;
        ok(s.ks().enable_root_key(&handle).await);
        ok(s.ks().enable_root_key(&handle).await);
        s.assert_usable(&handle, &blob, &secret, b"aad").await;
    }

    /// Many calls at once on one key all succeed and each gets its own plaintext
    /// back (the provider is `Send + Sync` and shared by every request).
    pub async fn concurrent_calls_all_succeed(s: &Subject) {
        let handle = s.usable_key("busy").await;
        let handle = &handle;
        let calls = (0..16u8).map(|i| async move {
            for round in 0..3u8 {
                let secret = SecretBytes::copy_from(&[i, round, 0xEE]);
                let aad = [b'a', i, round];
                let blob = s.wrap(handle, &secret, &aad).await;
                assert_eq!(s.unwrap(handle, &blob, &aad).await, secret);
            }
        });
        join_all(calls).await;
        ok(s.ks().health().await);
    }
}
