//! Checks that every door runs in its own tests (behind the `conformance` feature,
//! which only the doors' dev-dependencies turn on): what each door must do alike,
//! written once so that the doors to come are held to it too.

use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::AuditOutcome;

use crate::{AuthnError, DoorError};

/// Asserts that the door error `E` keeps the audit classification of the errors it
/// is made from: authentication failures and the core's authorisation refusals are
/// `denied`; everything else the core or the authenticator reports is `failed`.
///
/// A door adds the checks of its own constructors (its own refusals are `failed`
/// whatever code they carry).
pub fn assert_refusals_classified_by_origin<E: DoorError + From<AuthnError>>() {
    let denied = |e: E| e.audit_outcome() == AuditOutcome::Denied;
    assert!(denied(Error::denied("no").into()));
    assert!(denied(
        Error::new(ErrorKind::UnknownAccessKey, "who").into()
    ));
    assert!(denied(
        AuthnError::Signature {
            error_type: "InvalidSignatureException",
            message: "the request signature does not match".into(),
        }
        .into()
    ));
    assert!(!denied(Error::not_found("gone").into()));
    assert!(!denied(
        AuthnError::Core(Error::new(ErrorKind::StoreUnavailable, "down")).into()
    ));
}
