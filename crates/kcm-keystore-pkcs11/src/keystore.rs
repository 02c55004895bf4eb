//! [`Pkcs11Keystore`]: its configuration, opening (load the module, find the token,
//! log in) and how each call reaches the session pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kcm_core::keystore::{KeystoreError, KeystoreResult};
use kcm_core::secret::SecretString;
use tokio::sync::Semaphore;

use crate::error::{misconfigured, Failure};
use crate::module::load_module;
use crate::pool::{Inner, Lease, State};

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

/// Root keys generated and used inside a PKCS#11 token. See the crate documentation.
pub struct Pkcs11Keystore {
    pub(crate) inner: Arc<Inner>,
    /// One permit per session: bounds the sessions open at once to `max_sessions`.
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Pkcs11Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Keystore")
            .field("module", &self.inner.module)
            .field("token_label", &self.inner.token_label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Keystore {
    /// Loads the module, finds the token by label and logs in.
    ///
    /// Fails with [`KeystoreError::Misconfigured`] naming the problem when the
    /// module cannot be loaded, no token has that label (the message lists the
    /// labels found), or the PIN is wrong or locked.
    pub fn open(config: Pkcs11Config) -> KeystoreResult<Self> {
        if config.max_sessions == 0 {
            return Err(misconfigured("pkcs11 max_sessions must be at least 1"));
        }
        let loaded = load_module(&config.module)?;
        let inner = Inner {
            ctx: loaded.ctx.clone(),
            loaded,
            module: config.module,
            token_label: config.token_label.trim().to_string(),
            pin: config.pin,
            state: Mutex::new(State::default()),
        };
        // Connect now so configuration mistakes surface at start, not on first use.
        // A missing token is a configuration error here; later it is `Unavailable`.
        let inside = inner.loaded.enter();
        let lease = inner.take().map_err(|f| match f {
            Failure::Ks(KeystoreError::Unavailable(msg)) => misconfigured(msg),
            f => inner.settle("login", f),
        })?;
        inner.give_back(lease);
        drop(inside);
        tracing::info!(
            module = %inner.module.display(),
            token = %inner.token_label,
            "pkcs11 keystore logged in to its token"
        );
        Ok(Self {
            inner: Arc::new(inner),
            permits: Arc::new(Semaphore::new(config.max_sessions)),
        })
    }

    /// Runs `op` with a pooled session on a blocking thread.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        op: impl FnOnce(&Inner, &Lease) -> Result<T, Failure> + Send + 'static,
    ) -> KeystoreResult<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| KeystoreError::Unavailable("the pkcs11 keystore is closed".into()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.call(what, op)
        })
        .await
        .map_err(|e| KeystoreError::Unavailable(format!("pkcs11 {what} task failed: {e}")))?
    }
}
