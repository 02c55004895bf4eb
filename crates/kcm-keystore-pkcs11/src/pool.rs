//! The session pool: one connection to the token (its slot, idle logged-in
//! sessions, the object handles found for each key), used on blocking threads.
//! [`Inner::call`] lends a session to one operation and decides, through
//! [`Inner::settle`], when a failure means the token is lost: then the connection is
//! dropped and the next call finds the token by label and logs in again — after
//! initialising the module again if the token cannot be found otherwise.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use kcm_core::keystore::{KeystoreError, KeystoreResult};
use kcm_core::secret::SecretString;

use crate::error::{describe, is_connection_lost, misconfigured, rv, Failure};
use crate::handle::KeyId;
use crate::module::Module;

/// What the blocking calls share.
pub(crate) struct Inner {
    pub(crate) ctx: Pkcs11,
    /// The loaded module `ctx` belongs to, shared with other keystores on it.
    pub(crate) loaded: Arc<Module>,
    pub(crate) module: PathBuf,
    pub(crate) token_label: String,
    pub(crate) pin: SecretString,
    pub(crate) state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
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
    /// The module's generation when it connected (see [`Module::reinitialize`]).
    generation: u64,
}

impl Conn {
    /// Lets the connection go. Its sessions are closed only if the module was not
    /// initialised again since they were opened: after that their handles mean
    /// nothing, or — numbered afresh — another keystore's new sessions.
    fn discard(self, current_generation: u64) {
        if self.generation != current_generation {
            for session in self.idle {
                // Leaks the session's small struct rather than C_CloseSession a
                // handle that may now belong to someone else.
                std::mem::forget(session);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the idle sessions is a call into the module like any other: not
        // while it is being initialised again, and not for sessions it forgot.
        let conn = lock(&self.state).conn.take();
        if let Some(conn) = conn {
            let _inside = self.loaded.enter();
            conn.discard(self.loaded.generation());
        }
    }
}

/// A session taken from the pool for one call.
pub(crate) struct Lease {
    pub(crate) session: Session,
    pub(crate) slot: Slot,
    epoch: u64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent across a panic (it is a cache), so use it anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Takes a session, runs `op`, gives the session back; decides what failures mean.
    pub(crate) fn call<T>(
        &self,
        what: &'static str,
        op: impl FnOnce(&Inner, &Lease) -> Result<T, Failure>,
    ) -> KeystoreResult<T> {
        let mut inside = self.loaded.enter();
        let lease = match self.take() {
            Ok(lease) => lease,
            Err(f) if self.lost() && !matches!(f, Failure::Ks(KeystoreError::Misconfigured(_))) => {
                // The token was lost and is not found again: some modules notice a
                // token that came back only once initialised again. Not while
                // inside the module ourselves: re-initialising waits for every call.
                let reason = self.settle(what, f);
                let seen = self.loaded.generation();
                drop(inside);
                if !self.loaded.reinitialize(&self.module, seen) {
                    return Err(reason); // done less than a second ago: fail fast
                }
                inside = self.loaded.enter();
                self.take().map_err(|f| self.settle(what, f))?
            }
            Err(f) => return Err(self.settle(what, f)),
        };
        let result = self.run_op(what, lease, op);
        drop(inside);
        result
    }

    /// Whether the connection was lost and not made again since.
    fn lost(&self) -> bool {
        let state = lock(&self.state);
        state.epoch > 0 && state.conn.is_none()
    }

    fn run_op<T>(
        &self,
        what: &'static str,
        lease: Lease,
        op: impl FnOnce(&Inner, &Lease) -> Result<T, Failure>,
    ) -> KeystoreResult<T> {
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
    pub(crate) fn settle(&self, what: &str, f: Failure) -> KeystoreError {
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
        if let Some(old) = old {
            old.discard(self.loaded.generation()); // closes the idle sessions, outside the lock
        }
    }

    /// An idle session, or a new logged-in one; (re)connects first if needed.
    pub(crate) fn take(&self) -> Result<Lease, Failure> {
        let generation = self.loaded.generation();
        let mut state = lock(&self.state);
        if state
            .conn
            .as_ref()
            .is_some_and(|conn| conn.generation != generation)
        {
            // The module was initialised again (by this keystore or another on
            // it): every session and handle of the connection is gone.
            state.epoch += 1;
            if let Some(stale) = state.conn.take() {
                stale.discard(generation);
            }
        }
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
                generation,
            });
        }
        let conn = state.conn.as_mut().expect("connected above");
        let (slot, idle) = (conn.slot, conn.idle.pop());
        drop(state);
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

    pub(crate) fn give_back(&self, lease: Lease) {
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
    pub(crate) fn find_key(
        &self,
        s: &Session,
        id: &KeyId,
    ) -> Result<Option<ObjectHandle>, Failure> {
        let found = s.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
        ])?;
        if found.is_empty() {
            // No key is proof it is gone only if the token is still there: a token
            // whose storage went away (SoftHSM2's files removed, a device pulled)
            // may answer a search with nothing. Then it is a lost token, retryable,
            // not `KeyUnusable` — nor, for `destroy`, a key already destroyed.
            let info = s.get_session_info()?;
            let token = self.ctx.get_token_info(info.slot_id())?;
            if token.label().trim() != self.token_label {
                return Err(Failure::Lost("another token is in its slot"));
            }
            // Private objects are invisible when logged out: that is no proof the key
            // is gone, so treat it as a lost login rather than `KeyUnusable`.
            if info.session_state() != SessionState::RwUser {
                return Err(Failure::Lost("the session is no longer logged in"));
            }
        }
        Ok(found.first().copied())
    }

    /// Runs `op` with the object handle of key `id`: the cached one, or found anew
    /// when there is none or the token says it is no longer valid.
    pub(crate) fn with_key<T>(
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

    pub(crate) fn remember(&self, id: &KeyId, handle: ObjectHandle) {
        if let Some(conn) = lock(&self.state).conn.as_mut() {
            conn.objects.insert(id.clone(), handle);
        }
    }

    pub(crate) fn forget(&self, id: &KeyId) {
        if let Some(conn) = lock(&self.state).conn.as_mut() {
            conn.objects.remove(id);
        }
    }
}
