//! # kcm-keystore-pkcs11
//!
//! SKELETON: the public API only; the implementation is being written.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;

use async_trait::async_trait;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::{SecretBytes, SecretString};

/// How to reach one token.
#[derive(Debug)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (shared library) to load.
    pub module: PathBuf,
    /// Label of the token to use; its slot is looked up by this label.
    pub token_label: String,
    /// The token's user PIN.
    pub pin: SecretString,
    /// Most sessions kept open at once.
    pub max_sessions: usize,
}

/// Root keys generated and used inside a PKCS#11 token.
pub struct Pkcs11Keystore {
    _config: Pkcs11Config,
}

impl Pkcs11Keystore {
    /// Loads the module, finds the token by label and logs in.
    pub fn open(config: Pkcs11Config) -> KeystoreResult<Self> {
        Err(KeystoreError::Misconfigured(format!(
            "pkcs11 keystore not implemented yet ({})",
            config.module.display()
        )))
    }
}

#[async_trait]
impl KeystoreProvider for Pkcs11Keystore {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            generate: true,
            import: false,
            reference: false,
        }
    }
    async fn health(&self) -> KeystoreResult<()> {
        Err(KeystoreError::Unavailable("not implemented".into()))
    }
    async fn create_root_key(&self, _label: &str) -> KeystoreResult<Vec<u8>> {
        Err(KeystoreError::Unavailable("not implemented".into()))
    }
    async fn wrap(&self, _h: &[u8], _p: &SecretBytes, _aad: &[u8]) -> KeystoreResult<Vec<u8>> {
        Err(KeystoreError::Unavailable("not implemented".into()))
    }
    async fn unwrap(&self, _h: &[u8], _w: &[u8], _aad: &[u8]) -> KeystoreResult<SecretBytes> {
        Err(KeystoreError::Unavailable("not implemented".into()))
    }
    async fn destroy(&self, _h: &[u8]) -> KeystoreResult<()> {
        Err(KeystoreError::Unavailable("not implemented".into()))
    }
}
