//! AWS KMS error shapes and the one mapping from core errors to them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kcm_core::error::{Error, ErrorKind};
use kcm_frontdoor::{AuthnError, BodyError, HttpDoorError, HttpError};

/// An error as the AWS JSON protocol reports it: `{"__type": ..., "message": ...}`,
/// where `__type` is the [`HttpError`]'s code (`NotFoundException`, …).
#[derive(Debug)]
pub struct AwsError(HttpError);

impl AwsError {
    /// A 400 error of `error_type`: a refusal by this door itself (`failed` in the
    /// audit log; authentication and authorisation refusals come from
    /// [`AuthnError`] and the core).
    pub fn bad_request(error_type: &'static str, message: impl Into<String>) -> Self {
        Self(HttpError::new(StatusCode::BAD_REQUEST, error_type, message))
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::bad_request("ValidationException", message)
    }

    /// `UnsupportedOperationException`: `what` is a part of the AWS API that kcm does
    /// not implement.
    pub fn unsupported(what: &str) -> Self {
        Self::bad_request(
            "UnsupportedOperationException",
            format!("{what} is not supported by this kcm release"),
        )
    }
}

/// The AWS error type and status for each core error kind. The match has no
/// catch-all: a kind added to the core does not compile until it is mapped here.
fn aws_type(kind: ErrorKind) -> (&'static str, StatusCode) {
    use ErrorKind::*;
    let bad = StatusCode::BAD_REQUEST;
    match kind {
        InvalidInput => ("ValidationException", bad),
        InvalidAliasName => ("InvalidAliasNameException", bad),
        InvalidMarker => ("InvalidMarkerException", bad),
        InvalidTag => ("TagException", bad),
        MalformedPolicy => ("MalformedPolicyDocumentException", bad),
        NotFound => ("NotFoundException", bad),
        AlreadyExists => ("AlreadyExistsException", bad),
        AccessDenied => ("AccessDeniedException", bad),
        UnknownAccessKey => ("UnrecognizedClientException", bad),
        InvalidCiphertext => ("InvalidCiphertextException", bad),
        IncorrectKey => ("IncorrectKeyException", bad),
        KeyDisabled => ("DisabledException", bad),
        InvalidState => ("KMSInvalidStateException", bad),
        InvalidKeyUsage => ("InvalidKeyUsageException", bad),
        InvalidSignature => ("KMSInvalidSignatureException", bad),
        InvalidMac => ("KMSInvalidMacException", bad),
        Unsupported => ("UnsupportedOperationException", bad),
        LimitExceeded => ("LimitExceededException", bad),
        InvalidImportToken => ("InvalidImportTokenException", bad),
        ExpiredImportToken => ("ExpiredImportTokenException", bad),
        IncorrectKeyMaterial => ("IncorrectKeyMaterialException", bad),
        // AWS KMS answers throttling with 400 too; SDKs retry it by its type.
        Throttled => ("ThrottlingException", bad),
        StoreUnavailable | KeystoreUnavailable => (
            "DependencyTimeoutException",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        // A change was made: AWS SDKs retry every 500 on their own, and a retried
        // CreateKey or CreateGrant would make a second one. KMS's internal error,
        // with a status SDKs do not retry, so that the caller reads the message.
        Unaudited => ("KMSInternalException", bad),
        Internal => ("KMSInternalException", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

impl From<Error> for AwsError {
    fn from(e: Error) -> Self {
        let (error_type, status) = aws_type(e.kind());
        Self(HttpError::from_core(&e, status, error_type))
    }
}

impl From<AuthnError> for AwsError {
    fn from(e: AuthnError) -> Self {
        let outcome = e.audit_outcome();
        match e {
            AuthnError::Core(core) => core.into(),
            AuthnError::Signature {
                error_type,
                message,
            } => Self(
                HttpError::new(StatusCode::BAD_REQUEST, error_type, message).classified(outcome),
            ),
        }
    }
}

/// A body this door would not read, in AWS's words: 413 for one over
/// [`MAX_BODY`](crate::MAX_BODY) (AWS's `RequestEntityTooLargeException`, as its
/// Lambda API answers), 408 for one that did not arrive in time, AWS's
/// `ThrottlingException` (which every SDK retries after a pause) when the server is
/// busy with other unauthenticated bodies.
impl From<BodyError> for AwsError {
    fn from(e: BodyError) -> Self {
        let (status, error_type) = match e {
            BodyError::TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
            ),
            BodyError::TimedOut { .. } => (StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException"),
            BodyError::Busy => (StatusCode::BAD_REQUEST, "ThrottlingException"),
            BodyError::Unreadable => (StatusCode::BAD_REQUEST, "ValidationException"),
        };
        Self(HttpError::new(status, error_type, e.to_string()))
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let HttpError { code, message, .. } = &self.0;
        let body = serde_json::json!({ "__type": code, "message": message });
        (
            self.0.status,
            [(http::header::CONTENT_TYPE, crate::CONTENT_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}

impl HttpDoorError for AwsError {
    fn http_error(&self) -> &HttpError {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_core::model::AuditOutcome;
    use kcm_frontdoor::DoorError;

    #[test]
    fn every_kind_maps_to_an_aws_type_with_the_cores_fault_split() {
        for kind in ErrorKind::ALL {
            let e = AwsError::from(Error::new(kind, "x"));
            assert!(e.code().ends_with("Exception"), "{kind:?}");
            // Only dependency and internal failures are 5xx, exactly as the core says —
            // but a change made without its audit record, which SDKs must not retry.
            let expected_client_error =
                Error::new(kind, "x").is_client_error() || kind == ErrorKind::Unaudited;
            assert_eq!(
                e.0.status.is_client_error(),
                expected_client_error,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn refusals_are_classified_by_origin() {
        kcm_frontdoor::conformance::assert_refusals_classified_by_origin::<AwsError>();
        // An error is classified by how it was made, never by its type name: the door's
        // own refusals are failures (authorisation refusals come from the core's
        // Error::denied).
        let own = AwsError::bad_request("AccessDeniedException", "x");
        assert_eq!(own.audit_outcome(), AuditOutcome::Failed);
    }
}
