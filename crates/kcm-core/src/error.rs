//! The core's typed errors, sorted by who is at fault.
//!
//! Front doors map [`ErrorKind`] to their protocol in one exhaustive function each.
//! The enum is deliberately *not* `#[non_exhaustive]`: every front door is in this
//! workspace, so a new kind must fail to compile in each door's mapping rather than
//! fall silently into a catch-all 500.
//! Messages are safe to return to the caller: they name what was wrong and never
//! contain key material, secrets or internal details (those are logged instead).

use crate::keyspec::KeyUsage;
use crate::keystore::KeystoreError;
use crate::lifecycle::KeyState;
use crate::model::KeyId;
use crate::store::StoreError;

/// What went wrong, by cause.
///
/// Adding a kind: give it a place in [`ErrorKind::ALL`] and in `position` below, then
/// map it in every `match` the compiler points to (each front door, the audit
/// classification, [`Error::is_client_error`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    // --- the caller's fault ---
    /// A parameter is missing, malformed or out of range.
    InvalidInput,
    /// An alias name breaks the alias rules.
    InvalidAliasName,
    /// A paging marker was not one this server issued.
    InvalidMarker,
    /// A tag key or value breaks the tag rules.
    InvalidTag,
    /// A key policy document is not valid.
    MalformedPolicy,
    /// A key, alias, tenant, system or access key does not exist (or is not visible).
    NotFound,
    /// A name is already taken.
    AlreadyExists,
    /// The principal is not allowed to do this.
    AccessDenied,
    /// The access key id is unknown or disabled.
    UnknownAccessKey,
    /// A ciphertext is malformed, tampered with, or its context does not match.
    InvalidCiphertext,
    /// The ciphertext was made by a different key than the one named.
    IncorrectKey,
    /// The key is disabled.
    KeyDisabled,
    /// The key (or a key above it in the chain) is in a state that forbids this.
    InvalidState,
    /// The key's usage or spec does not allow this operation.
    InvalidKeyUsage,
    /// A signature did not verify (Verify).
    InvalidSignature,
    /// A MAC did not verify (VerifyMac).
    InvalidMac,
    /// The request asks for something kcm does not support.
    Unsupported,
    /// A limit was reached.
    LimitExceeded,
    /// An import token is unknown, used, or for another key.
    InvalidImportToken,
    /// An import token is genuine but past its lifetime (AWS answers
    /// `ExpiredImportTokenException` for this, apart from an invalid token).
    ExpiredImportToken,
    /// Imported key material is not the material imported into this key before.
    IncorrectKeyMaterial,
    /// The caller's access key or tenant exceeded its request-rate quota; nothing
    /// was done, and the same request succeeds once the caller slows down.
    Throttled,
    // --- a dependency's fault ---
    /// The store is unreachable; nothing was changed.
    StoreUnavailable,
    /// A keystore is unreachable; nothing was changed.
    KeystoreUnavailable,
    /// The request was carried out (a change committed), but its audit record could
    /// be written neither to the store nor to the node's audit spool. Not "nothing
    /// was changed": repeating the request would repeat the change.
    Unaudited,
    // --- ours ---
    /// A bug or corrupt data; details are in the server log.
    Internal,
}

impl ErrorKind {
    /// Every kind, each once: what tests iterate over when they check that a mapping
    /// covers all kinds, instead of keeping their own copy of the list.
    pub const ALL: [ErrorKind; 26] = [
        ErrorKind::InvalidInput,
        ErrorKind::InvalidAliasName,
        ErrorKind::InvalidMarker,
        ErrorKind::InvalidTag,
        ErrorKind::MalformedPolicy,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::AccessDenied,
        ErrorKind::UnknownAccessKey,
        ErrorKind::InvalidCiphertext,
        ErrorKind::IncorrectKey,
        ErrorKind::KeyDisabled,
        ErrorKind::InvalidState,
        ErrorKind::InvalidKeyUsage,
        ErrorKind::InvalidSignature,
        ErrorKind::InvalidMac,
        ErrorKind::Unsupported,
        ErrorKind::LimitExceeded,
        ErrorKind::InvalidImportToken,
        ErrorKind::ExpiredImportToken,
        ErrorKind::IncorrectKeyMaterial,
        ErrorKind::Throttled,
        ErrorKind::StoreUnavailable,
        ErrorKind::KeystoreUnavailable,
        ErrorKind::Unaudited,
        ErrorKind::Internal,
    ];

    /// The kind's index in [`ErrorKind::ALL`]. An exhaustive match, so a new kind does
    /// not compile until it has a position here; the check below then holds only if
    /// `ALL` lists it at that position.
    const fn position(self) -> usize {
        use ErrorKind::*;
        match self {
            InvalidInput => 0,
            InvalidAliasName => 1,
            InvalidMarker => 2,
            InvalidTag => 3,
            MalformedPolicy => 4,
            NotFound => 5,
            AlreadyExists => 6,
            AccessDenied => 7,
            UnknownAccessKey => 8,
            InvalidCiphertext => 9,
            IncorrectKey => 10,
            KeyDisabled => 11,
            InvalidState => 12,
            InvalidKeyUsage => 13,
            InvalidSignature => 14,
            InvalidMac => 15,
            Unsupported => 16,
            LimitExceeded => 17,
            InvalidImportToken => 18,
            ExpiredImportToken => 19,
            IncorrectKeyMaterial => 20,
            Throttled => 21,
            StoreUnavailable => 22,
            KeystoreUnavailable => 23,
            Unaudited => 24,
            Internal => 25,
        }
    }
}

// `ALL` holds every position exactly once (checked when the crate compiles): with
// `position` exhaustive and its values distinct, no kind can be missing or repeated.
const _: () = {
    let mut i = 0;
    while i < ErrorKind::ALL.len() {
        assert!(
            ErrorKind::ALL[i].position() == i,
            "ErrorKind::ALL is out of step with ErrorKind::position"
        );
        i += 1;
    }
};

/// What an error is about, for a door that words such errors its own way (the AWS
/// door names the key by its ARN, in AWS's sentences). The message stays the core's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// No key of this id in the caller's tenant (`account`: the account the
    /// caller's ARN named, if it named one).
    MissingKey {
        /// The key id.
        id: KeyId,
        /// The account of the ARN the key was named by.
        account: Option<String>,
    },
    /// No alias of this name in the caller's tenant (`account`: as for
    /// [`Subject::MissingKey`]).
    MissingAlias {
        /// The alias name (`alias/…`).
        name: String,
        /// The account of the ARN the alias was named by.
        account: Option<String>,
    },
    /// The key's own state refuses the operation.
    KeyState(KeyId, KeyState),
    /// The key's usage is not the one the operation needs.
    KeyUsage(KeyId, KeyUsage),
    /// The key (with imported material) has no new material to rotate to.
    NoMaterialPendingRotation(KeyId),
}

/// An error returned by the core.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// Boxed: errors travel in every `Result` of the core, and most have none.
    subject: Option<Box<Subject>>,
}

impl Error {
    /// An error of `kind` whose message is shown to the caller.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            subject: None,
        }
    }

    /// The same error, saying what it is about.
    pub fn about(mut self, subject: Subject) -> Self {
        self.subject = Some(Box::new(subject));
        self
    }

    /// What the error is about, when the core said.
    pub fn subject(&self) -> Option<&Subject> {
        self.subject.as_deref()
    }

    /// The kind, for mapping to a protocol.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The caller-safe message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::AccessDenied`].
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, message)
    }

    /// Shorthand for [`ErrorKind::AlreadyExists`]: "`what` already exists".
    pub fn already_exists(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::AlreadyExists, format!("{what} already exists"))
    }

    /// For a commit that creates something unique: the store's conflict becomes
    /// [`Error::already_exists`] naming `what` (the store's own wording names a
    /// table, not what the caller asked for); any other store error maps as usual.
    pub(crate) fn conflict_means_exists(
        what: impl std::fmt::Display,
    ) -> impl FnOnce(StoreError) -> Error {
        move |e| match e {
            StoreError::Conflict(_) => Error::already_exists(what),
            other => other.into(),
        }
    }

    /// A dependency that cannot serve right now: `detail` (which may name hosts or
    /// paths) goes to the log at warning level, the caller gets `kind` and `message`.
    fn unavailable(kind: ErrorKind, dependency: &str, detail: &str, message: &str) -> Self {
        tracing::warn!(msg = %detail, "{dependency} unavailable");
        Self::new(kind, message)
    }

    /// A request that changed what the store holds but whose audit record could not
    /// be written (`audit` says why): the caller must not read the error as "nothing
    /// was changed" and repeat a create. Logged as an error.
    pub fn carried_out_unaudited(operation: &str, audit: &Error) -> Self {
        tracing::error!(operation, error = %audit, "a change was committed but its audit record could not be written");
        Self::new(
            ErrorKind::Unaudited,
            "the request was carried out, but its audit record could not be written (the \
             server log says why); check its effect before repeating it",
        )
    }

    /// An internal error: `detail` is logged, the caller sees a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(ErrorKind::Internal, "internal error; see the server log")
    }

    /// True when the caller caused it (4xx in HTTP terms).
    pub fn is_client_error(&self) -> bool {
        use ErrorKind::*;
        match self.kind {
            InvalidInput | InvalidAliasName | InvalidMarker | InvalidTag | MalformedPolicy
            | NotFound | AlreadyExists | AccessDenied | UnknownAccessKey | InvalidCiphertext
            | IncorrectKey | KeyDisabled | InvalidState | InvalidKeyUsage | InvalidSignature
            | InvalidMac | Unsupported | LimitExceeded | InvalidImportToken
            | ExpiredImportToken | IncorrectKeyMaterial | Throttled => true,
            StoreUnavailable | KeystoreUnavailable | Unaudited | Internal => false,
        }
    }
}

/// What a caller is told when the disk holding the store is full.
pub const STORE_FULL: &str =
    "the key store's disk is full; nothing was changed, retry once the operator has freed space";

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => Error::new(ErrorKind::AlreadyExists, msg),
            StoreError::Unavailable(msg) => Error::unavailable(
                ErrorKind::StoreUnavailable,
                "store",
                &msg,
                "the key store is unavailable; nothing was changed, retry later",
            ),
            StoreError::Full(msg) => {
                Error::unavailable(ErrorKind::StoreUnavailable, "store", &msg, STORE_FULL)
            }
            StoreError::Refused(msg) => Error::new(ErrorKind::InvalidState, msg),
            // Deterministic: retrying cannot help, so not "unavailable" (503).
            e @ (StoreError::Corrupt(_) | StoreError::Unencodable(_)) => Error::internal(e),
        }
    }
}

impl From<KeystoreError> for Error {
    fn from(e: KeystoreError) -> Self {
        match e {
            KeystoreError::Unavailable(msg) => Error::unavailable(
                ErrorKind::KeystoreUnavailable,
                "keystore",
                &msg,
                "the keystore holding the root key is unavailable; retry later",
            ),
            KeystoreError::KeyUnusable(msg) => Error::new(
                ErrorKind::InvalidState,
                format!("the root key is not usable: {msg}"),
            ),
            KeystoreError::Unsupported(msg) => Error::new(ErrorKind::Unsupported, msg),
            // The operator's settings (credentials, paths) are the operator's to see:
            // the caller learns which side must act, the log says what is wrong.
            KeystoreError::Misconfigured(msg) => {
                tracing::error!(%msg, "keystore misconfigured");
                Error::new(
                    ErrorKind::KeystoreUnavailable,
                    "the keystore holding the root key is misconfigured; the operator must fix its settings (see the server log)",
                )
            }
            other => Error::internal(other),
        }
    }
}

/// Result of core calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a store that cannot be reached is "retry later"; a value it cannot hold
    /// or data it cannot read fail the same way every time, and say so.
    #[test]
    fn only_an_unreachable_store_is_unavailable() {
        let cases = [
            (
                StoreError::Unavailable("down".into()),
                ErrorKind::StoreUnavailable,
            ),
            (
                StoreError::Unencodable("too large".into()),
                ErrorKind::Internal,
            ),
            (StoreError::Corrupt("bad row".into()), ErrorKind::Internal),
            (
                StoreError::Conflict("taken".into()),
                ErrorKind::AlreadyExists,
            ),
            (
                StoreError::Refused("not empty".into()),
                ErrorKind::InvalidState,
            ),
        ];
        for (error, expected) in cases {
            let shown = format!("{error:?}");
            assert_eq!(Error::from(error).kind(), expected, "{shown}");
        }
    }
}
