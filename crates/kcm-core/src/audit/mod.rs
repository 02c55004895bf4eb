//! The tamper-evident audit log.
//!
//! Every request on every front door ends in exactly one [`crate::model::AuditRecord`]: the front
//! door reports how it ended ([`AuditEvent`]), the core adds what it noted while
//! serving it (the keys touched, see [`crate::authz::Caller`]), and the group-commit
//! writer (`audit/writer.rs`) makes it durable before the front door sends its response.
//!
//! **Chains.** Each tenant has its own chain (the operator has one too). A record
//! commits to its chain position (`seq`) and to the previous record's hash, so
//! altering, removing, inserting or reordering records breaks the chain where it
//! happened ([`verify`]). Because anyone can recompute SHA-256, the server also
//! signs **checkpoints** — "chain X had N records ending in hash H" — with an
//! Ed25519 audit signing key that exists only wrapped by a keystore root key; a
//! rewritten chain cannot match a checkpoint signed before the rewrite. Each
//! checkpoint signs the one before it too, so the checkpoints form a chain of their
//! own that cannot lose a member unseen. The newest records, after the last
//! checkpoint, are vouched for by a **signed head**, made on request and kept outside
//! the store; and a running server compares the store's chains with what it wrote
//! itself (`heads.rs`), so cutting the end off a chain is seen either way.

pub mod export;
pub mod hash;
pub(crate) mod heads;
pub(crate) mod spool;
pub mod verify;
pub(crate) mod writer;

use aws_lc_rs::signature::{self, UnparsedPublicKey};

use crate::model::{AuditCheckpoint, AuditOutcome, TenantId};

pub use hash::{record_hash, GENESIS_HASH};

/// How a request ended, as its front door saw it.
#[derive(Debug)]
pub struct AuditEvent<'a> {
    /// `aws`, `rest`, …
    pub front_door: &'static str,
    /// Operation name (the core's [`crate::authz::Op`] name where one was reached).
    pub operation: &'a str,
    /// The request id returned to the caller.
    pub request_id: &'a str,
    /// Client address, when known.
    pub source: Option<String>,
    /// The id the client gave its request, when it gave a valid one.
    pub client_request_id: Option<&'a str>,
    /// What the request said of itself, recorded as given (see
    /// [`crate::model::AuditRecord::detail`]).
    pub detail: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The authenticated caller, if authentication succeeded.
    pub caller: Option<&'a crate::authz::Caller>,
    /// The access key id the request claimed, if authentication failed.
    pub claimed_access_key: Option<&'a str>,
    /// The outcome.
    pub outcome: AuditOutcome,
    /// The error type the caller saw (`AccessDeniedException`, `not_found`, …).
    pub error: Option<&'a str>,
}

/// The bytes a checkpoint's signature covers: the chain, the record it vouches for
/// (`seq`, `hash`), when it was signed, and the checkpoint before it in the same chain
/// (its `seq` and signature; empty for the first). The link makes the checkpoints one
/// chain of their own: one deleted, reordered or spliced in from elsewhere breaks the
/// signature of the next, which no one without the signing key can redo.
pub fn checkpoint_message(
    tenant: Option<TenantId>,
    seq: u64,
    hash: &str,
    time: i64,
    prev: Option<&AuditCheckpoint>,
) -> Vec<u8> {
    let chain = tenant.map(|t| t.to_string()).unwrap_or_default();
    let (prev_seq, prev_signature) = prev.map_or((0, ""), |p| (p.seq, p.signature.as_str()));
    format!("kcm-audit-checkpoint-v2\n{chain}\n{seq}\n{hash}\n{time}\n{prev_seq}\n{prev_signature}")
        .into_bytes()
}

/// What checkpoints signed before they were linked covered (see [`Signature::Unlinked`]).
fn unlinked_checkpoint_message(
    tenant: Option<TenantId>,
    seq: u64,
    hash: &str,
    time: i64,
) -> Vec<u8> {
    let chain = tenant.map(|t| t.to_string()).unwrap_or_default();
    format!("kcm-audit-checkpoint-v1\n{chain}\n{seq}\n{hash}\n{time}").into_bytes()
}

/// The bytes a signed head's signature covers: "this chain had `seq` records ending in
/// `hash` at `time`", made on request and kept outside the store (a file, a SIEM), so
/// that cutting records off the end of the chain — with the checkpoints that covered
/// them — is seen by whoever holds a head signed before the cut. Labelled apart from
/// checkpoints, so one cannot stand in for the other.
pub fn head_message(tenant: Option<TenantId>, seq: u64, hash: &str, time: i64) -> Vec<u8> {
    let chain = tenant.map(|t| t.to_string()).unwrap_or_default();
    format!("kcm-audit-head-v1\n{chain}\n{seq}\n{hash}\n{time}").into_bytes()
}

/// What a checkpoint's signature says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    /// Valid, and signed as the successor of the checkpoint given as `prev`.
    Linked,
    /// Valid, in the form kcm signed before checkpoints were linked (no `prev`):
    /// vouches for its record, not for the checkpoints around it.
    Unlinked,
    /// Not a signature by this key over this checkpoint after that `prev`.
    Invalid,
}

/// Checks `checkpoint`'s signature by `public_key` (raw Ed25519) as the successor of
/// `prev` (the checkpoint before it in its chain; `None` for the first).
pub fn checkpoint_signature(
    checkpoint: &AuditCheckpoint,
    prev: Option<&AuditCheckpoint>,
    public_key: &[u8],
) -> Signature {
    let c = checkpoint;
    let linked = checkpoint_message(c.tenant, c.seq, &c.hash, c.time, prev);
    if signed_by(&c.signature, &linked, public_key) {
        return Signature::Linked;
    }
    let unlinked = unlinked_checkpoint_message(c.tenant, c.seq, &c.hash, c.time);
    if signed_by(&c.signature, &unlinked, public_key) {
        return Signature::Unlinked;
    }
    Signature::Invalid
}

/// Whether `head` (see [`head_message`]) carries a valid signature by `public_key`.
pub fn head_signature_valid(head: &AuditCheckpoint, public_key: &[u8]) -> bool {
    let message = head_message(head.tenant, head.seq, &head.hash, head.time);
    signed_by(&head.signature, &message, public_key)
}

fn signed_by(signature_hex: &str, message: &[u8], public_key: &[u8]) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, &signature)
        .is_ok()
}

/// Classifies a refusal for the audit record: authentication and authorisation
/// refusals are `denied`, everything else `failed`. Front doors classify the core
/// errors they answer with through this, so the classification follows the error's
/// origin rather than the name a protocol gives it.
pub fn outcome_of(kind: crate::error::ErrorKind) -> AuditOutcome {
    use crate::error::ErrorKind::*;
    match kind {
        AccessDenied | UnknownAccessKey => AuditOutcome::Denied,
        InvalidInput | InvalidAliasName | InvalidMarker | InvalidTag | MalformedPolicy
        | NotFound | AlreadyExists | InvalidCiphertext | IncorrectKey | KeyDisabled
        | InvalidState | InvalidKeyUsage | InvalidSignature | InvalidMac | Unsupported
        | LimitExceeded | InvalidImportToken | ExpiredImportToken | IncorrectKeyMaterial
        | Throttled | StoreUnavailable | KeystoreUnavailable | Unaudited | Internal => {
            AuditOutcome::Failed
        }
    }
}

/// A record of the kind tests chain and hash: an Encrypt on the AWS door, in the
/// operator's chain, first in its chain; tests change what they need.
#[cfg(test)]
pub(crate) fn test_record(seq: u64) -> crate::model::AuditRecord {
    crate::model::AuditRecord {
        seq,
        time: 1_000 + seq as i64,
        tenant: None,
        principal: "KCMTESTTESTTESTTESTT".into(),
        role: None,
        front_door: "aws".into(),
        operation: "Encrypt".into(),
        keys: vec![],
        system: None,
        outcome: AuditOutcome::Success,
        error: None,
        request_id: format!("req-{seq}"),
        source: None,
        client_request_id: None,
        detail: None,
        prev_hash: GENESIS_HASH.into(),
        hash: String::new(),
    }
}
