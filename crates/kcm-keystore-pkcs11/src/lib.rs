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
//! path. A PKCS#11 module is process-global state, shared by every keystore of the
//! process on it, so it is finalised only to find a lost token again (below), with
//! no call of any keystore inside it, and every keystore on it then logs in again.
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
//! `CKR_USER_NOT_LOGGED_IN`, or a search that finds no key while the token itself
//! cannot be read (`C_GetTokenInfo` fails) — the keystore drops its sessions and
//! cached handles and the call fails with [`KeystoreError::Unavailable`]; the next
//! call looks the slot up by label again and logs in again, so a token that comes
//! back is used again without restarting kcm. A key is reported missing
//! ([`KeystoreError::KeyUnusable`]; for `destroy`, already destroyed) only when the
//! token that answered is there and is ours.
//!
//! Some modules see a token that went away and came back only after `C_Finalize`
//! and `C_Initialize` (SoftHSM2 does; a vendor's client may keep a failed connection
//! likewise). So while a lost token cannot be found again, a call initialises the
//! module again — at most once a second per module, once no call is inside it — and
//! looks again. Sessions of the old initialisation are forgotten, not closed: their
//! handles may already be numbered anew for someone else. Another keystore on the
//! same module notices the new initialisation at its next call and logs in again
//! without failing it.
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
//! [`KeystoreError::UnwrapFailed`] for `C_Decrypt`), and a token whose directory
//! disappears stays broken until the module is initialised again, which the
//! keystore does (see "Sessions and failures"; `tests/token_loss.rs` moves a
//! token's directory away and back).
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

//!
//! ## Code map
//!
//! One module per job: `handle` (the handle format: which key a handle names),
//! `blob` (the wrapped-blob format), `module` (loading a PKCS#11 module once per
//! process, and initialising it again), `error` (what a PKCS#11 error means: a lost token, a blob that does
//! not authenticate, or something else), `pool` (the session pool, reconnection and
//! key lookup, on blocking threads), `keystore` ([`Pkcs11Keystore`], its
//! configuration and opening) and `provider` (the [`KeystoreProvider`] methods).
//!
//! [`KeystoreProvider`]: kcm_core::keystore::KeystoreProvider
//! [`KeystoreError::Unavailable`]: kcm_core::keystore::KeystoreError::Unavailable
//! [`KeystoreError::UnwrapFailed`]: kcm_core::keystore::KeystoreError::UnwrapFailed
//! [`KeystoreError::KeyUnusable`]: kcm_core::keystore::KeystoreError::KeyUnusable

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blob;
mod error;
mod handle;
mod keystore;
mod module;
mod pool;
mod provider;

pub use handle::{key_id, KEY_ID_LEN};
pub use keystore::{Pkcs11Config, Pkcs11Keystore};
