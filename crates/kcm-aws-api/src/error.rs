//! AWS KMS error shapes and the one mapping from core errors to them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kcm_core::authz::Op;
use kcm_core::error::{Error, ErrorKind, Subject};
use kcm_core::lifecycle::KeyState;
use kcm_frontdoor::{AuthnError, BodyError, HttpDoorError, HttpError};

/// An error as the AWS JSON protocol reports it: `{"__type": ..., "message": ...}`,
/// where `__type` is the [`HttpError`]'s code (`NotFoundException`, …).
#[derive(Debug)]
pub struct AwsError {
    http: HttpError,
    /// What a core error was about, until [`AwsError::in_aws_words`] words it.
    subject: Option<Subject>,
}

impl AwsError {
    fn of(http: HttpError) -> Self {
        Self {
            http,
            subject: None,
        }
    }

    /// A 400 error of `error_type`: a refusal by this door itself (`failed` in the
    /// audit log; authentication and authorisation refusals come from
    /// [`AuthnError`] and the core).
    pub fn bad_request(error_type: &'static str, message: impl Into<String>) -> Self {
        Self::of(HttpError::new(StatusCode::BAD_REQUEST, error_type, message))
    }

    /// The error in AWS's sentences where the core said what it is about: a missing
    /// key or alias, a key whose state or usage refuses `op`, each named by its ARN
    /// in `region` and `account` (the caller's: a key of another account is not
    /// found). Other errors keep the core's message.
    pub fn in_aws_words(mut self, region: &str, account: &str, op: Op) -> Self {
        let Some(subject) = self.subject.take() else {
            return self;
        };
        let arn = |id| crate::ids::key_arn(region, account, id);
        let message = match subject {
            // Named by the ARN the caller wrote, whichever account it names.
            Subject::MissingKey { id, account: named } => format!(
                "Key '{}' does not exist",
                crate::ids::key_arn(region, named.as_deref().unwrap_or(account), id)
            ),
            Subject::MissingAlias {
                name,
                account: named,
            } => format!(
                "Alias {} is not found.",
                crate::ids::alias_arn(region, named.as_deref().unwrap_or(account), &name)
            ),
            Subject::KeyState(id, KeyState::Disabled) => format!("{} is disabled.", arn(id)),
            Subject::KeyState(id, KeyState::PendingDeletion) => {
                format!("{} is pending deletion.", arn(id))
            }
            Subject::KeyState(id, KeyState::PreActive) => {
                format!("{} is pending import.", arn(id))
            }
            Subject::KeyUsage(id, usage) => format!(
                "{} key usage is {usage} which is not valid for {}.",
                arn(id),
                op.aws_target().unwrap_or(op.as_str())
            ),
            Subject::NoMaterialPendingRotation(id) => format!(
                "No available key material pending rotation for the key: {}.",
                arn(id)
            ),
            Subject::KeyState(..) => return self,
        };
        self.http.message = message;
        self
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
        Self {
            subject: e.subject().cloned(),
            http: HttpError::from_core(&e, status, error_type),
        }
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
            } => Self::of(
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
        Self::of(HttpError::new(status, error_type, e.to_string()))
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let HttpError { code, message, .. } = &self.http;
        let body = serde_json::json!({ "__type": code, "message": message });
        (
            self.http.status,
            [(http::header::CONTENT_TYPE, crate::CONTENT_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}

impl HttpDoorError for AwsError {
    fn http_error(&self) -> &HttpError {
        &self.http
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
                e.http.status.is_client_error(),
                expected_client_error,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn core_refusals_about_a_key_are_worded_as_aws_words_them() {
        use kcm_core::keyspec::KeyUsage;
        use kcm_core::model::KeyId;
        let id = KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").unwrap();
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let worded = |e: Error, op: Op| {
            AwsError::from(e)
                .in_aws_words("us-east-1", "111122223333", op)
                .http
                .message
        };
        let about = |kind, subject| Error::new(kind, "kcm's words").about(subject);
        let cases = [
            (
                about(
                    ErrorKind::NotFound,
                    Subject::MissingKey { id, account: None },
                ),
                format!("Key '{arn}' does not exist"),
            ),
            (
                about(
                    ErrorKind::NotFound,
                    Subject::MissingKey {
                        id,
                        account: Some("444455556666".into()),
                    },
                ),
                format!(
                    "Key '{}' does not exist",
                    arn.replace("111122223333", "444455556666")
                ),
            ),
            (
                about(
                    ErrorKind::NotFound,
                    Subject::MissingAlias {
                        name: "alias/x".into(),
                        account: None,
                    },
                ),
                "Alias arn:aws:kms:us-east-1:111122223333:alias/x is not found.".into(),
            ),
            (
                about(
                    ErrorKind::KeyDisabled,
                    Subject::KeyState(id, KeyState::Disabled),
                ),
                format!("{arn} is disabled."),
            ),
            (
                about(
                    ErrorKind::InvalidState,
                    Subject::KeyState(id, KeyState::PendingDeletion),
                ),
                format!("{arn} is pending deletion."),
            ),
            (
                about(
                    ErrorKind::InvalidState,
                    Subject::KeyState(id, KeyState::PreActive),
                ),
                format!("{arn} is pending import."),
            ),
            (
                about(
                    ErrorKind::InvalidKeyUsage,
                    Subject::KeyUsage(id, KeyUsage::SignVerify),
                ),
                format!("{arn} key usage is SIGN_VERIFY which is not valid for Encrypt."),
            ),
            (
                about(
                    ErrorKind::InvalidState,
                    Subject::NoMaterialPendingRotation(id),
                ),
                format!("No available key material pending rotation for the key: {arn}."),
            ),
            // States AWS has no sentence for keep kcm's.
            (
                about(
                    ErrorKind::InvalidState,
                    Subject::KeyState(id, KeyState::Compromised),
                ),
                "kcm's words".into(),
            ),
            (
                Error::new(ErrorKind::NotFound, "kcm's words"),
                "kcm's words".into(),
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(worded(error, Op::Encrypt), expected);
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
