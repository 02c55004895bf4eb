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
//! rewritten chain cannot match a checkpoint signed before the rewrite.

pub mod export;
pub mod hash;
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
    /// The authenticated caller, if authentication succeeded.
    pub caller: Option<&'a crate::authz::Caller>,
    /// The access key id the request claimed, if authentication failed.
    pub claimed_access_key: Option<&'a str>,
    /// The outcome.
    pub outcome: AuditOutcome,
    /// The error type the caller saw (`AccessDeniedException`, `not_found`, …).
    pub error: Option<&'a str>,
}

/// The bytes an audit checkpoint signature covers.
pub fn checkpoint_message(tenant: Option<TenantId>, seq: u64, hash: &str, time: i64) -> Vec<u8> {
    let chain = tenant.map(|t| t.to_string()).unwrap_or_default();
    format!("kcm-audit-checkpoint-v1\n{chain}\n{seq}\n{hash}\n{time}").into_bytes()
}

/// Whether `checkpoint` carries a valid signature by `public_key` (raw Ed25519).
pub fn checkpoint_signature_valid(checkpoint: &AuditCheckpoint, public_key: &[u8]) -> bool {
    let Ok(signature) = hex::decode(&checkpoint.signature) else {
        return false;
    };
    let message = checkpoint_message(
        checkpoint.tenant,
        checkpoint.seq,
        &checkpoint.hash,
        checkpoint.time,
    );
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(&message, &signature)
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
        prev_hash: GENESIS_HASH.into(),
        hash: String::new(),
    }
}
