//! # kcm-keystore-pkcs11
//!
//! The PKCS#11 keystore: kcm's keystore provider for hardware security modules
//! (HSMs), network HSMs and SoftHSM2, through the vendor's PKCS#11 module loaded at
//! run time (via the `cryptoki` crate).
//!
//! ## Security model
//!
//! Root keys (L1) are **generated inside the token and never leave it**: each is an
//! AES-256 secret key object with `CKA_TOKEN`, `CKA_PRIVATE` and `CKA_SENSITIVE` set
//! and `CKA_EXTRACTABLE` clear, usable only for `CKA_ENCRYPT`/`CKA_DECRYPT` (not for
//! wrapping other token keys, not for derivation). kcm never sees its value. Wrap and
//! unwrap are `C_Encrypt`/`C_Decrypt` with `CKM_AES_GCM` inside the token, the
//! caller's associated data as GCM additional authenticated data.
//!
//! The **handle** the core stores holds no secret, only which key to use:
//! `0x01 ‖ CKA_ID` (17 bytes; the first byte is the format version, the CKA_ID is 16
//! random bytes chosen at generation). The key's `CKA_LABEL` is the label the core
//! gave, so operators can recognise it in vendor tools; [`key_id`] decodes a handle
//! to find it. A copy of kcm's database therefore unwraps nothing without the token
//! *and* its PIN.
//!
//! A **wrapped blob** is `0x01 ‖ IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. The IV
//! is fresh random bytes from the host's random source for every wrap (random 96-bit
//! IVs are safe for far more wraps than a root key ever makes: root keys only wrap
//! system keys, archive keys and the like).
//!
//! `destroy` is `C_DestroyObject`: afterwards every blob wrapped by that key is
//! unrecoverable. Destroying a key that is already gone succeeds (it is idempotent),
//! so a retried or repeated deletion does not fail.
//!
//! What this protects against: theft of the data directory or backups, and theft of
//! the host's disk. What it does not: someone who controls the running kcm process
//! (it holds the PIN and a logged-in session, so it can ask the token to unwrap) —
//! but they cannot copy the root keys out, and losing the host does not lose them.
//!
//! ## Configuration
//!
//! [`Pkcs11Config`]: the module path, the token's label (the slot is looked up by
//! label at every (re)connection, because slot ids may change when a token is
//! re-inserted or re-initialised), the user PIN, and `max_sessions`, the most
//! sessions kept open at once (calls beyond that wait for a free session). The PIN
//! never appears in `Debug` output, logs or error messages.
//!
//! The module is loaded and `C_Initialize`d (with OS locking) once per process and
//! path, and never finalised: a PKCS#11 module is process-global state, and
//! finalising it would pull the sessions out from under any other keystore of the
//! same process.
//!
//! ## Sessions and failures
//!
//! Up to `max_sessions` logged-in read/write sessions are pooled; each call takes
//! one, uses it on a blocking thread (`tokio::task::spawn_blocking`, never on an
//! async worker) and gives it back, so no session is used by two threads at once.
//! The object handle found for each CKA_ID is cached (and looked up again if the
//! token says the handle is invalid).
//!
//! If the token goes away — a device, session or login error such as
//! `CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, `CKR_SESSION_HANDLE_INVALID` or
//! `CKR_USER_NOT_LOGGED_IN` — the keystore drops its sessions and cached handles and
//! the call fails with [`KeystoreError::Unavailable`]; the next call looks the slot
//! up by label again and logs in again, so a token that comes back is used again
//! without restarting kcm.
//!
//! Login state in PKCS#11 belongs to the application and token, not the session:
//! logging in on a second session returns `CKR_USER_ALREADY_LOGGED_IN`, which is
//! success here. One consequence: a second keystore opened in the *same process* on
//! a token that is already logged in is not asked for a correct PIN by the token.
//!
//! ## Setting up SoftHSM2 for development
//!
//! ```sh
//! sudo apt-get install softhsm2            # Debian/Ubuntu; module: /usr/lib/softhsm/libsofthsm2.so
//! mkdir -p ~/kcm-hsm/tokens
//! cat > ~/kcm-hsm/softhsm2.conf <<EOF
//! directories.tokendir = $HOME/kcm-hsm/tokens
//! objectstore.backend = file
//! log.level = ERROR
//! EOF
//! export SOFTHSM2_CONF=~/kcm-hsm/softhsm2.conf   # read by the module at C_Initialize
//! softhsm2-util --init-token --free --label kcm --pin 1234 --so-pin 5678
//! softhsm2-util --show-slots                     # the token, labelled "kcm"
//! ```
//!
//! Then configure module `/usr/lib/softhsm/libsofthsm2.so`, token label `kcm` and the
//! PIN. `SOFTHSM2_CONF` must be set in kcm's environment too. SoftHSM2 discovers
//! tokens only when it is initialised, so restart kcm after creating a token. Its
//! "token" is files in the token directory, encrypted under the PIN: fine for
//! development and tests, not a hardware boundary. Two more SoftHSM2 habits: it
//! reports a GCM blob that does not authenticate as `CKR_GENERAL_ERROR` (mapped to
//! [`KeystoreError::UnwrapFailed`] for `C_Decrypt`), and it cannot simulate a token
//! that goes away and comes back — if its token directory disappears, the token
//! stays broken until the process re-initialises the module, i.e. restarts.
//!
//! ## What differs with a network HSM
//!
//! - **Module**: the vendor's PKCS#11 library (e.g. Thales Luna, Entrust nShield,
//!   AWS CloudHSM, Utimaco), installed with its client; use its path as `module`.
//! - **Client configuration**: the vendor client has its own configuration (server
//!   addresses, client certificates, partition or slot mapping), usually a file
//!   named by an environment variable or in a fixed place. The token label is the
//!   partition's label.
//! - **Latency**: every call is a network round trip (roughly a millisecond or
//!   more). Sessions are pooled so calls do not pay for `C_OpenSession`/`C_Login`,
//!   and the core caches unwrapped system keys, so the hot path (Encrypt, Decrypt,
//!   GenerateDataKey) does not call the HSM at all; only creating and rotating keys
//!   and cache refills do. Size `max_sessions` to the partition's session limit
//!   shared by all kcm nodes.
//! - **High availability and failover** between HSM appliances are handled by the
//!   vendor's client library (HA groups); kcm sees one token. When the client
//!   reports the device or sessions lost, kcm reconnects as described above.
//! - **PIN**: the partition's crypto-user (not crypto-officer) credential. Give it
//!   to kcm from a secret store or the environment, never in a world-readable file;
//!   some vendors use a password plus a client certificate, or a PED/quorum.
//! - **Attributes and IVs**: some HSMs in FIPS mode refuse caller-chosen GCM IVs
//!   and generate them internally; this keystore supplies its own IV and would need
//!   a change for those. The vendor's policy may also add attributes (e.g.
//!   `CKA_DESTROYABLE`) to the key template.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use kcm_core::crypto::fill_random;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::{SecretBytes, SecretString};
use tokio::sync::Semaphore;
use zeroize::Zeroize;

/// Format byte of root key handles kcm made (generated or imported): `[1][CKA_ID]`.
const HANDLE_FORMAT_V1: u8 = 1;
/// Format byte of handles of keys kcm only refers to (HYOK, the customer's own key
/// in the token): `[2][CKA_ID]`. kcm never destroys such a key.
const HANDLE_FORMAT_REFERENCE: u8 = 2;
/// Longest CKA_ID of a referenced key kcm accepts.
const MAX_REFERENCED_ID_LEN: usize = 64;
/// Format byte of version-1 wrapped blobs: `[1][IV][ciphertext ‖ tag]`.
const BLOB_FORMAT_V1: u8 = 1;
/// Length of the random CKA_ID given to each root key.
pub const KEY_ID_LEN: usize = 16;
/// AES-GCM IV length.
const IV_LEN: usize = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// AES-256 key length in bytes (`CKA_VALUE_LEN`).
const AES_256_LEN: u64 = 32;

/// A root key's CKA_ID.
type KeyId = Vec<u8>;

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

/// The CKA_ID of the root key a handle names (see the crate documentation for the
/// handle format); for finding the key with the token's own tools, and for tests.
///
/// Fails with [`KeystoreError::KeyUnusable`] when `handle` is not a handle of this
/// keystore.
pub fn key_id(handle: &[u8]) -> KeystoreResult<Vec<u8>> {
    match handle.split_first() {
        Some((&HANDLE_FORMAT_V1, id)) if id.len() == KEY_ID_LEN => Ok(id.to_vec()),
        Some((&HANDLE_FORMAT_REFERENCE, id)) if (1..=MAX_REFERENCED_ID_LEN).contains(&id.len()) => {
            Ok(id.to_vec())
        }
        _ => Err(bad_handle()),
    }
}

/// Whether `handle` names a key kcm only refers to (the customer's own, HYOK).
fn is_reference(handle: &[u8]) -> bool {
    handle.first() == Some(&HANDLE_FORMAT_REFERENCE)
}

fn bad_handle() -> KeystoreError {
    KeystoreError::KeyUnusable("the handle is not a root key handle of a pkcs11 keystore".into())
}

/// Root keys generated and used inside a PKCS#11 token. See the crate documentation.
pub struct Pkcs11Keystore {
    inner: Arc<Inner>,
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

/// What the blocking calls share.
struct Inner {
    ctx: Pkcs11,
    module: PathBuf,
    token_label: String,
    pin: SecretString,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The current connection to the token; `None` after it was lost.
    conn: Option<Conn>,
    /// Bumped whenever the connection is dropped, so a session taken out before
    /// that is closed instead of being given back.
    epoch: u64,
}

/// One connection to the token: its slot, idle logged-in sessions, found keys.
struct Conn {
    slot: Slot,
    idle: Vec<Session>,
    objects: HashMap<KeyId, ObjectHandle>,
}

/// A session taken from the pool for one call.
struct Lease {
    session: Session,
    slot: Slot,
    epoch: u64,
}

/// Why a blocking call failed, before it becomes a [`KeystoreError`] in
/// [`Inner::settle`], the one place that decides when the token counts as lost.
enum Failure {
    /// A PKCS#11 error not yet classified.
    Ck(CkError),
    /// The connection is unusable for a reason the token did not report as an error.
    Lost(&'static str),
    /// Already decided.
    Ks(KeystoreError),
}

impl From<CkError> for Failure {
    fn from(e: CkError) -> Self {
        Failure::Ck(e)
    }
}

impl From<KeystoreError> for Failure {
    fn from(e: KeystoreError) -> Self {
        Failure::Ks(e)
    }
}

fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Errors after which no session or object handle of the current connection can be
/// trusted: the device, token, session or login went away, or the token reports
/// `CKR_GENERAL_ERROR` ("unrecoverable"; reconnecting costs little). An unwrap's
/// authentication failure is decided before this (see [`is_authentication_failure`]).
fn is_connection_lost(e: &CkError) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::GeneralError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::SlotIdInvalid
                | RvError::CryptokiNotInitialized
        )
    )
}

/// How tokens report a GCM blob that does not authenticate (wrong key, wrong aad,
/// tampering) from `C_Decrypt`: PKCS#11 2.40 says `CKR_ENCRYPTED_DATA_INVALID`, 3.0
/// `CKR_AEAD_DECRYPT_FAILED` (0x35, which cryptoki 0.12 does not name), and SoftHSM2
/// answers `CKR_GENERAL_ERROR`. Only errors of `C_Decrypt` itself count, not of
/// `C_DecryptInit` (a key or mechanism problem).
fn is_authentication_failure(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::UnknownErrorCode(0x35)
                | RvError::GeneralError,
            Function::Decrypt
        )
    )
}

/// A short description of a PKCS#11 error for messages, e.g. `C_Login returned
/// PinIncorrect` (cryptoki's `Display` adds a paragraph of the specification).
fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent across a panic (it is a cache), so use it anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn misconfigured(msg: impl Into<String>) -> KeystoreError {
    KeystoreError::Misconfigured(msg.into())
}

/// Loads and initialises `path` once per process; see "Configuration".
fn load_module(path: &Path) -> KeystoreResult<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        misconfigured(format!(
            "cannot load the PKCS#11 module {}: {e}",
            path.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Already initialised by other code of this process: share it.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(misconfigured(format!(
                "the PKCS#11 module {} failed to initialise: {}",
                path.display(),
                describe(&e)
            )))
        }
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
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
        let inner = Inner {
            ctx: load_module(&config.module)?,
            module: config.module,
            token_label: config.token_label.trim().to_string(),
            pin: config.pin,
            state: Mutex::new(State::default()),
        };
        // Connect now so configuration mistakes surface at start, not on first use.
        // A missing token is a configuration error here; later it is `Unavailable`.
        let lease = inner.take().map_err(|f| match f {
            Failure::Ks(KeystoreError::Unavailable(msg)) => misconfigured(msg),
            f => inner.settle("login", f),
        })?;
        inner.give_back(lease);
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
    async fn run<T: Send + 'static>(
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

impl Inner {
    /// Takes a session, runs `op`, gives the session back; decides what failures mean.
    fn call<T>(
        &self,
        what: &'static str,
        op: impl FnOnce(&Inner, &Lease) -> Result<T, Failure>,
    ) -> KeystoreResult<T> {
        let lease = self.take().map_err(|f| self.settle(what, f))?;
        match op(self, &lease) {
            Ok(v) => {
                self.give_back(lease);
                Ok(v)
            }
            // Expected outcomes (wrong aad, unknown key): the session is fine.
            Err(Failure::Ks(e)) => {
                self.give_back(lease);
                Err(e)
            }
            // Anything else: do not reuse a session in an unknown state.
            Err(f) => {
                drop(lease);
                Err(self.settle(what, f))
            }
        }
    }

    /// Turns a failure into the caller's error; drops the connection if it is lost.
    fn settle(&self, what: &str, f: Failure) -> KeystoreError {
        let label = &self.token_label;
        let reason = match f {
            Failure::Ks(e) => return e,
            Failure::Ck(e) if !is_connection_lost(&e) => {
                return KeystoreError::Unavailable(format!(
                    "pkcs11 {what} failed on token \"{label}\": {}",
                    describe(&e)
                ))
            }
            Failure::Ck(e) => describe(&e),
            Failure::Lost(why) => why.to_string(),
        };
        tracing::warn!(token = %label, %reason, "pkcs11 token connection lost; reconnecting on the next call");
        self.disconnect();
        KeystoreError::Unavailable(format!(
            "pkcs11 token \"{label}\" is not reachable ({reason}); the next call reconnects"
        ))
    }

    /// Drops all pooled sessions and cached object handles.
    fn disconnect(&self) {
        let old = {
            let mut state = lock(&self.state);
            state.epoch += 1;
            state.conn.take()
        };
        drop(old); // closes the idle sessions, outside the lock
    }

    /// An idle session, or a new logged-in one; (re)connects first if needed.
    fn take(&self) -> Result<Lease, Failure> {
        let (slot, epoch, idle) = {
            let mut state = lock(&self.state);
            let epoch = state.epoch;
            if state.conn.is_none() {
                // Under the lock, so concurrent calls reconnect once.
                let slot = self.find_slot()?;
                if epoch > 0 {
                    tracing::info!(token = %self.token_label, "pkcs11 token found again; reconnecting");
                }
                state.conn = Some(Conn {
                    slot,
                    idle: Vec::new(),
                    objects: HashMap::new(),
                });
            }
            let conn = state.conn.as_mut().expect("connected above");
            (conn.slot, epoch, conn.idle.pop())
        };
        let session = match idle {
            Some(s) => s,
            None => self.open_session(slot)?,
        };
        Ok(Lease {
            session,
            slot,
            epoch,
        })
    }

    fn give_back(&self, lease: Lease) {
        let mut state = lock(&self.state);
        if state.epoch == lease.epoch {
            if let Some(conn) = state.conn.as_mut() {
                conn.idle.push(lease.session);
                return;
            }
        }
        drop(state);
        drop(lease); // from a dropped connection: close it
    }

    /// The slot whose token carries our label.
    fn find_slot(&self) -> Result<Slot, Failure> {
        let mut found = Vec::new();
        for slot in self.ctx.get_slots_with_token()? {
            // A slot whose token cannot be read is not ours; keep looking.
            let Ok(info) = self.ctx.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim();
            if label == self.token_label {
                return Ok(slot);
            }
            found.push(format!("\"{label}\""));
        }
        Err(KeystoreError::Unavailable(format!(
            "no token labelled \"{}\" in PKCS#11 module {} (tokens found: {})",
            self.token_label,
            self.module.display(),
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        ))
        .into())
    }

    fn open_session(&self, slot: Slot) -> Result<Session, Failure> {
        let session = self.ctx.open_rw_session(slot)?;
        let pin = AuthPin::from(self.pin.expose_secret());
        let label = &self.token_label;
        // Messages say what is wrong and never include the PIN.
        let problem = match session.login(UserType::User, Some(&pin)) {
            // Login is per application and token: another session already did it.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => return Ok(session),
            Err(e) => match rv(&e) {
                Some(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange) => {
                    format!("wrong PIN for pkcs11 token \"{label}\" (the token refused the login)")
                }
                Some(RvError::PinLocked) => format!(
                    "the user PIN of pkcs11 token \"{label}\" is locked after too many wrong \
                     PINs; the security officer must unlock or reset it"
                ),
                Some(RvError::PinExpired) => {
                    format!("the user PIN of pkcs11 token \"{label}\" has expired")
                }
                Some(RvError::UserPinNotInitialized) => {
                    format!("pkcs11 token \"{label}\" has no user PIN set; initialise it first")
                }
                _ => return Err(e.into()),
            },
        };
        Err(misconfigured(problem).into())
    }

    /// The token object of root key `id`, or `None` if the token has none.
    fn find_key(&self, s: &Session, id: &KeyId) -> Result<Option<ObjectHandle>, Failure> {
        let found = s.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
        ])?;
        if found.is_empty() && s.get_session_info()?.session_state() != SessionState::RwUser {
            // Private objects are invisible when logged out: that is no proof the key
            // is gone, so treat it as a lost login rather than `KeyUnusable`.
            return Err(Failure::Lost("the session is no longer logged in"));
        }
        Ok(found.first().copied())
    }

    /// Runs `op` with the object handle of key `id`: the cached one, or found anew
    /// when there is none or the token says it is no longer valid.
    fn with_key<T>(
        &self,
        s: &Session,
        id: &KeyId,
        op: impl Fn(ObjectHandle) -> cryptoki::error::Result<T>,
    ) -> Result<T, Failure> {
        let cached = lock(&self.state)
            .conn
            .as_ref()
            .and_then(|c| c.objects.get(id).copied());
        if let Some(handle) = cached {
            match op(handle) {
                Err(e)
                    if matches!(
                        rv(&e),
                        Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid)
                    ) => {}
                other => return Ok(other?),
            }
        }
        let Some(handle) = self.find_key(s, id)? else {
            self.forget(id);
            return Err(KeystoreError::KeyUnusable(format!(
                "pkcs11 token \"{}\" has no root key with CKA_ID {} (destroyed, or another token)",
                self.token_label,
                hex::encode(id)
            ))
            .into());
        };
        self.remember(id, handle);
        Ok(op(handle)?)
    }

    fn remember(&self, id: &KeyId, handle: ObjectHandle) {
        if let Some(conn) = lock(&self.state).conn.as_mut() {
            conn.objects.insert(id.clone(), handle);
        }
    }

    fn forget(&self, id: &KeyId) {
        if let Some(conn) = lock(&self.state).conn.as_mut() {
            conn.objects.remove(id);
        }
    }
}

/// The attributes every root key gets, generated or imported: an AES key kept in the
/// token, sensitive, never extractable, usable only to encrypt and decrypt.
fn root_key_template(label: &str, id: &KeyId) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

/// The handle the core stores for the key with `id`.
fn handle_of(id: &[u8]) -> Vec<u8> {
    [&[HANDLE_FORMAT_V1][..], id].concat()
}

#[async_trait]
impl KeystoreProvider for Pkcs11Keystore {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            generate: true,
            import: true,
            reference: true,
        }
    }

    async fn health(&self) -> KeystoreResult<()> {
        self.run("health check", |inner, lease| {
            // Both go to the token: is it there, and is our session still logged in?
            inner.ctx.get_token_info(lease.slot)?;
            if lease.session.get_session_info()?.session_state() != SessionState::RwUser {
                return Err(Failure::Lost("the session is no longer logged in"));
            }
            Ok(())
        })
        .await
    }

    async fn create_root_key(&self, label: &str) -> KeystoreResult<Vec<u8>> {
        let mut id: KeyId = vec![0; KEY_ID_LEN];
        fill_random(&mut id);
        let mut template = root_key_template(label, &id);
        template.push(Attribute::ValueLen(AES_256_LEN.into()));
        let handle = handle_of(&id);
        self.run("key generation", move |inner, lease| {
            let handle = lease
                .session
                .generate_key(&Mechanism::AesKeyGen, &template)?;
            inner.remember(&id, handle);
            Ok(())
        })
        .await?;
        Ok(handle)
    }

    async fn import_root_key(
        &self,
        label: &str,
        material: &SecretBytes,
    ) -> KeystoreResult<Vec<u8>> {
        if material.len() != AES_256_LEN as usize {
            return Err(misconfigured(format!(
                "imported key material must be {AES_256_LEN} bytes, got {}",
                material.len()
            )));
        }
        let mut id: KeyId = vec![0; KEY_ID_LEN];
        fill_random(&mut id);
        let mut template = root_key_template(label, &id);
        template.push(Attribute::Value(material.expose_secret().to_vec()));
        let handle = handle_of(&id);
        self.run("key import", move |inner, lease| {
            let created = lease.session.create_object(&template);
            // The template holds the material: wipe it whatever happened.
            for attribute in &mut template {
                if let Attribute::Value(value) = attribute {
                    value.zeroize();
                }
            }
            inner.remember(&id, created?);
            Ok(())
        })
        .await?;
        Ok(handle)
    }

    async fn reference_root_key(&self, reference: &str) -> KeystoreResult<Vec<u8>> {
        let named = match reference.split_once(':') {
            Some(("label", label)) if !label.is_empty() => {
                Attribute::Label(label.as_bytes().to_vec())
            }
            Some(("id", hex_id)) => Attribute::Id(
                hex::decode(hex_id)
                    .ok()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        KeystoreError::KeyUnusable(format!(
                            "{hex_id:?} is not a CKA_ID in hex (e.g. id:c0ffee01)"
                        ))
                    })?,
            ),
            _ => {
                return Err(KeystoreError::KeyUnusable(format!(
                    "{reference:?} names no key: use label:<CKA_LABEL> or id:<CKA_ID in hex>"
                )))
            }
        };
        let label = self.inner.token_label.clone();
        let id = self
            .run("key lookup", move |_, lease| {
                let s = &lease.session;
                let found = s.find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Token(true),
                    named,
                ])?;
                let unusable = |why: String| Failure::Ks(KeystoreError::KeyUnusable(why));
                let object = match found.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(unusable(format!(
                            "token \"{label}\" has no such secret key"
                        )))
                    }
                    _ => {
                        return Err(unusable(format!(
                            "token \"{label}\" has {} secret keys by that name; refer to one by id",
                            found.len()
                        )))
                    }
                };
                let wanted = [
                    AttributeType::KeyType,
                    AttributeType::ValueLen,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                    AttributeType::Id,
                ];
                let (mut aes256, mut encrypt, mut decrypt, mut id) = (0, false, false, Vec::new());
                for attribute in s.get_attributes(object, &wanted)? {
                    match attribute {
                        Attribute::KeyType(t) if t == KeyType::AES => aes256 += 1,
                        Attribute::ValueLen(len) if u64::from(len) == AES_256_LEN => aes256 += 1,
                        Attribute::Encrypt(v) => encrypt = v,
                        Attribute::Decrypt(v) => decrypt = v,
                        Attribute::Id(v) => id = v,
                        _ => {}
                    }
                }
                if aes256 != 2 {
                    return Err(unusable("the key is not an AES-256 key".into()));
                }
                if !(encrypt && decrypt) {
                    return Err(unusable(
                        "the key does not allow both encrypt and decrypt (CKA_ENCRYPT, CKA_DECRYPT)"
                            .into(),
                    ));
                }
                if id.is_empty() || id.len() > MAX_REFERENCED_ID_LEN {
                    return Err(unusable(format!(
                        "the key needs a CKA_ID of 1 to {MAX_REFERENCED_ID_LEN} bytes, unique \
                         among the token's keys"
                    )));
                }
                let same_id = s.find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Token(true),
                    Attribute::Id(id.clone()),
                ])?;
                if same_id.len() != 1 {
                    return Err(unusable(format!(
                        "{} secret keys share its CKA_ID {}; give it a unique one",
                        same_id.len(),
                        hex::encode(&id)
                    )));
                }
                Ok(id)
            })
            .await?;
        Ok([&[HANDLE_FORMAT_REFERENCE][..], &id].concat())
    }

    async fn check_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let id = key_id(handle)?;
        self.run("key check", move |inner, lease| {
            match inner.find_key(&lease.session, &id)? {
                Some(_) => Ok(()),
                None => Err(KeystoreError::KeyUnusable(format!(
                    "token \"{}\" has no key with CKA_ID {}",
                    inner.token_label,
                    hex::encode(&id)
                ))
                .into()),
            }
        })
        .await
    }

    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> KeystoreResult<Vec<u8>> {
        let id = key_id(handle)?;
        let mut iv = [0u8; IV_LEN];
        fill_random(&mut iv);
        let plaintext = plaintext.clone(); // zeroized when the task drops it
        let aad = aad.to_vec();
        let sealed = self
            .run("wrap", move |inner, lease| {
                inner.with_key(&lease.session, &id, |key| {
                    let mut iv = iv;
                    let params = GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into())?;
                    lease.session.encrypt(
                        &Mechanism::AesGcm(params),
                        key,
                        plaintext.expose_secret(),
                    )
                })
            })
            .await?;
        let mut blob = Vec::with_capacity(1 + IV_LEN + sealed.len());
        blob.push(BLOB_FORMAT_V1);
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> KeystoreResult<SecretBytes> {
        let id = key_id(handle)?;
        // A malformed blob cannot authenticate: same answer as a wrong key or aad.
        let (&format, rest) = wrapped.split_first().ok_or(KeystoreError::UnwrapFailed)?;
        if format != BLOB_FORMAT_V1 || rest.len() < IV_LEN + TAG_LEN {
            return Err(KeystoreError::UnwrapFailed);
        }
        let (iv, sealed) = rest.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().expect("split at IV_LEN");
        let sealed = sealed.to_vec();
        let aad = aad.to_vec();
        self.run("unwrap", move |inner, lease| {
            let result = inner.with_key(&lease.session, &id, |key| {
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into())?;
                // Straight into zeroizing storage.
                lease
                    .session
                    .decrypt(&Mechanism::AesGcm(params), key, &sealed)
                    .map(SecretBytes::new)
            });
            match result {
                Err(Failure::Ck(e)) if is_authentication_failure(&e) => {
                    Err(KeystoreError::UnwrapFailed.into())
                }
                other => other,
            }
        })
        .await
    }

    async fn destroy(&self, handle: &[u8]) -> KeystoreResult<()> {
        let id = key_id(handle)?;
        if is_reference(handle) {
            // The customer's own key: kcm only forgets it, it never destroys it.
            return Ok(());
        }
        self.run("destroy", move |inner, lease| {
            // Always look it up afresh (not the hot path). No key: already destroyed,
            // which is success, so that destroy is idempotent.
            if let Some(object) = inner.find_key(&lease.session, &id)? {
                match lease.session.destroy_object(object) {
                    Ok(()) => {}
                    // Destroyed concurrently by someone else: same outcome.
                    Err(e) if matches!(rv(&e), Some(RvError::ObjectHandleInvalid)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            inner.forget(&id);
            Ok(())
        })
        .await
    }
}
