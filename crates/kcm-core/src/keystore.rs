//! The keystore-provider trait: where root keys (L1) live and how they wrap.
//!
//! The trait is shaped by kcm's operations, not by any one vendor API: create a root
//! key and get back an opaque handle, wrap and unwrap with it (AEAD with associated
//! data), destroy it. Root key material never leaves a provider in plaintext.

use async_trait::async_trait;

use crate::secret::SecretBytes;

/// What a provider can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Can generate root keys.
    pub generate: bool,
    /// Can import customer material (BYOK).
    pub import: bool,
    /// Can reference keys that live elsewhere (HYOK).
    pub reference: bool,
}

/// Why a keystore call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The keystore cannot be reached right now; the caller may retry.
    #[error("keystore unavailable: {0}")]
    Unavailable(String),
    /// The handle names no usable key (destroyed, revoked by its holder, wrong keystore).
    #[error("root key not usable: {0}")]
    KeyUnusable(String),
    /// Unwrap failed authentication: wrong key, wrong associated data, or tampering.
    #[error("unwrap failed: wrapped blob does not authenticate")]
    UnwrapFailed,
    /// The keystore's own configuration or state is wrong (bad master key, …).
    #[error("keystore misconfigured: {0}")]
    Misconfigured(String),
    /// The keystore cannot do this at all (see [`Capabilities`]).
    #[error("not supported by this keystore: {0}")]
    Unsupported(String),
}

/// Result of keystore calls.
pub type KeystoreResult<T> = Result<T, KeystoreError>;

/// A keystore provider instance.
#[async_trait]
pub trait KeystoreProvider: Send + Sync + 'static {
    /// The kind of provider (`software`, `pkcs11`, …).
    fn kind(&self) -> &'static str;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Checks the keystore is reachable and usable.
    async fn health(&self) -> KeystoreResult<()>;

    /// Creates a new AES-256 root key; `label` names it inside the keystore.
    /// Returns an opaque handle to store.
    async fn create_root_key(&self, label: &str) -> KeystoreResult<Vec<u8>>;

    /// Stores `material` (32 bytes of a customer's own AES-256 key, BYOK) as a new
    /// root key, as non-extractable as a generated one; `label` names it inside the
    /// keystore. Returns an opaque handle to store. The default refuses: only
    /// providers whose [`Capabilities::import`] is true implement it.
    async fn import_root_key(
        &self,
        label: &str,
        material: &SecretBytes,
    ) -> KeystoreResult<Vec<u8>> {
        let _ = (label, material);
        Err(KeystoreError::Unsupported(format!(
            "the {} keystore cannot import key material",
            self.kind()
        )))
    }

    /// Refers to a key that already lives in the keystore and stays the customer's
    /// (HYOK): `reference` names it in the keystore's own terms (for PKCS#11
    /// `label:<CKA_LABEL>` or `id:<CKA_ID in hex>`). Checks the key can wrap and
    /// unwrap, and returns a handle to store. kcm never destroys such a key. The
    /// default refuses: only providers whose [`Capabilities::reference`] is true
    /// implement it.
    async fn reference_root_key(&self, reference: &str) -> KeystoreResult<Vec<u8>> {
        let _ = reference;
        Err(KeystoreError::Unsupported(format!(
            "the {} keystore cannot refer to keys it does not hold",
            self.kind()
        )))
    }

    /// Whether the root key behind `handle` is still there and usable, without
    /// using it (for status pages; a referenced key's holder may have revoked it).
    /// The default trusts the handle.
    async fn check_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let _ = handle;
        Ok(())
    }

    /// Tells the keystore the root key behind `handle` was disabled in kcm (the kill
    /// switch), so a keystore that can refuses to use it too. kcm's own state is
    /// the authority: kcm refuses every use below a disabled root whatever this
    /// returns. The default does nothing.
    async fn disable_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let _ = handle;
        Ok(())
    }

    /// Undoes [`KeystoreProvider::disable_root_key`] before kcm enables the root key
    /// again. The default does nothing.
    async fn enable_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let _ = handle;
        Ok(())
    }

    /// Wraps `plaintext` with the root key behind `handle`, binding `aad`.
    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> KeystoreResult<Vec<u8>>;

    /// Unwraps a blob made by [`KeystoreProvider::wrap`] with the same handle and `aad`.
    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> KeystoreResult<SecretBytes>;

    /// Erases the root key behind `handle` where the keystore supports it. A key
    /// the provider only refers to ([`KeystoreProvider::reference_root_key`]) is the
    /// customer's: for it this must change nothing.
    async fn destroy(&self, handle: &[u8]) -> KeystoreResult<()>;

    /// Non-secret settings a fresh installation needs, besides the keystore's own
    /// secret (master key, passphrase, HSM access), to reach the same root keys
    /// again — e.g. the software keystore's passphrase salt. Backup archives carry
    /// them so a restore into an empty data directory can use them. `None` (the
    /// default) when there are none.
    fn recovery_parameters(&self) -> Option<serde_json::Value> {
        None
    }
}
