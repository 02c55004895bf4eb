//! Loading a vendor's PKCS#11 module: once per process and path (see
//! "Configuration" in the crate documentation), and initialising it again when a
//! lost token cannot be found otherwise (see "Sessions and failures").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use kcm_core::keystore::KeystoreResult;

use crate::error::{describe, misconfigured};
use crate::pool::lock;

/// The least time between two re-initialisations of one module: each one ends
/// every session of every keystore on the module, so a token that stays away must
/// not cause one per call.
pub(crate) const REINITIALIZE_INTERVAL: Duration = Duration::from_secs(1);

/// One loaded and initialised module, shared by every keystore of the process that
/// names its path.
pub(crate) struct Module {
    /// The module's functions (clones share the loaded library).
    pub(crate) ctx: Pkcs11,
    /// Held for reading by every use of the module, for writing by a
    /// re-initialisation: `C_Finalize` must not run while another thread is inside
    /// the module.
    calls: RwLock<()>,
    /// Bumped by each re-initialisation: sessions and object handles of an earlier
    /// generation are gone (and their numbers may be handed out again).
    generation: AtomicU64,
    /// When the module was last initialised.
    initialized_at: Mutex<Instant>,
}

/// Loads and initialises `path` once per process; see "Configuration".
pub(crate) fn load_module(path: &Path) -> KeystoreResult<Arc<Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(module) = modules.get(path) {
        return Ok(Arc::clone(module));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        misconfigured(format!(
            "cannot load the PKCS#11 module {}: {e}",
            path.display()
        ))
    })?;
    initialize(&ctx).map_err(|e| {
        misconfigured(format!(
            "the PKCS#11 module {} failed to initialise: {}",
            path.display(),
            describe(&e)
        ))
    })?;
    let module = Arc::new(Module {
        ctx,
        calls: RwLock::new(()),
        generation: AtomicU64::new(0),
        initialized_at: Mutex::new(Instant::now()),
    });
    modules.insert(path.to_path_buf(), Arc::clone(&module));
    Ok(module)
}

fn initialize(ctx: &Pkcs11) -> cryptoki::error::Result<()> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Already initialised by other code of this process: share it.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Module {
    /// Leave to use the module: held for the length of one call.
    pub(crate) fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.calls.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The current generation (see [`Module::reinitialize`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `C_Finalize` then `C_Initialize`, so that the module looks for its tokens
    /// afresh: some modules see a token that went away and came back only then
    /// (SoftHSM2 keeps a token whose files disappeared broken until it is
    /// initialised again; vendors' clients may keep a failed connection likewise).
    ///
    /// Waits until no other thread is inside the module. Does nothing when the
    /// module changed generation since the caller saw `seen` (another keystore did
    /// it meanwhile) or was initialised less than [`REINITIALIZE_INTERVAL`] ago.
    /// Every session of the old generation is gone afterwards, in every keystore
    /// on this module: each notices by the generation and logs in again. Returns
    /// whether the module is of a newer generation than `seen` now.
    pub(crate) fn reinitialize(&self, path: &Path, seen: u64) -> bool {
        let _exclusive = self.calls.write().unwrap_or_else(|e| e.into_inner());
        let mut initialized_at = lock(&self.initialized_at);
        if self.generation() != seen {
            return true;
        }
        if initialized_at.elapsed() < REINITIALIZE_INTERVAL {
            return false;
        }
        if let Err(e) = self.ctx.clone().finalize() {
            tracing::debug!(module = %path.display(), error = %describe(&e), "C_Finalize failed");
        }
        // Sessions of the old generation are invalid from here on, whatever happens next.
        self.generation.fetch_add(1, Ordering::AcqRel);
        *initialized_at = Instant::now();
        match initialize(&self.ctx) {
            Ok(()) => tracing::warn!(
                module = %path.display(),
                "pkcs11 module initialised again to find a lost token (every session on it was closed)"
            ),
            // Calls fail with CKR_CRYPTOKI_NOT_INITIALIZED (a lost connection) and
            // the next one tries again.
            Err(e) => tracing::warn!(
                module = %path.display(),
                error = %describe(&e),
                "pkcs11 module could not be initialised again; retrying on a later call"
            ),
        }
        true
    }
}
