//! What a PKCS#11 error means for kcm: the token or its login went away (drop the
//! connection and reconnect), a blob did not authenticate, or something else.

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use kcm_core::keystore::KeystoreError;

/// Why a blocking call failed, before it becomes a [`KeystoreError`] in
/// `Inner::settle` (in `pool`), the one place that decides when the token counts as lost.
pub(crate) enum Failure {
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

pub(crate) fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Errors after which no session or object handle of the current connection can be
/// trusted: the device, token, session or login went away, or the token reports
/// `CKR_GENERAL_ERROR` ("unrecoverable"; reconnecting costs little). An unwrap's
/// authentication failure is decided before this (see [`is_authentication_failure`]).
pub(crate) fn is_connection_lost(e: &CkError) -> bool {
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
pub(crate) fn is_authentication_failure(e: &CkError) -> bool {
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
pub(crate) fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

pub(crate) fn misconfigured(msg: impl Into<String>) -> KeystoreError {
    KeystoreError::Misconfigured(msg.into())
}
