//! The one mapping from core errors to HTTP, and the `/v1` error body
//! ([`ErrorBody`], shared with clients through `kcm_api_types`).
//!
//! Every error the REST API returns has the shape
//! `{"error": {"code": "<Code>", "message": "<what was wrong>"}}`. Core errors are
//! mapped by [`status_and_code`], the only place that decides a status for an
//! [`ErrorKind`]; authentication failures by [`RestError::from`] on
//! [`kcm_frontdoor::AuthnError`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::AuditOutcome;
use kcm_frontdoor::{AuthnError, BodyError, HttpDoorError, HttpError};

pub use kcm_api_types::{code, ErrorBody, ErrorDetail};

/// The HTTP status and REST error code of each core error kind.
///
/// This is the one place that decides them. The match has no catch-all: a kind added
/// to the core does not compile until it is mapped here.
pub fn status_and_code(kind: ErrorKind) -> (StatusCode, &'static str) {
    use ErrorKind::*;
    let bad = StatusCode::BAD_REQUEST;
    match kind {
        InvalidInput => (bad, code::INVALID_INPUT),
        InvalidAliasName => (bad, code::INVALID_ALIAS_NAME),
        InvalidMarker => (bad, code::INVALID_MARKER),
        InvalidTag => (bad, code::INVALID_TAG),
        MalformedPolicy => (bad, code::INVALID_INPUT),
        InvalidCiphertext => (bad, code::INVALID_CIPHERTEXT),
        IncorrectKey => (bad, code::INCORRECT_KEY),
        InvalidKeyUsage => (bad, code::INVALID_KEY_USAGE),
        InvalidSignature => (bad, code::INVALID_SIGNATURE),
        InvalidMac => (bad, code::INVALID_MAC),
        Unsupported => (bad, code::UNSUPPORTED),
        LimitExceeded => (bad, code::LIMIT_EXCEEDED),
        InvalidImportToken => (bad, code::INVALID_IMPORT_TOKEN),
        ExpiredImportToken => (bad, code::EXPIRED_IMPORT_TOKEN),
        IncorrectKeyMaterial => (bad, code::INCORRECT_KEY_MATERIAL),
        NotFound => (StatusCode::NOT_FOUND, code::NOT_FOUND),
        AlreadyExists => (StatusCode::CONFLICT, code::ALREADY_EXISTS),
        AccessDenied => (StatusCode::FORBIDDEN, code::ACCESS_DENIED),
        UnknownAccessKey => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED),
        KeyDisabled | InvalidState => (StatusCode::CONFLICT, code::INVALID_STATE),
        Throttled => (StatusCode::TOO_MANY_REQUESTS, code::THROTTLED),
        StoreUnavailable | KeystoreUnavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE)
        }
        Unaudited => (StatusCode::INTERNAL_SERVER_ERROR, code::UNAUDITED),
        Internal => (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL),
    }
}

/// An error on its way to becoming an HTTP response: an [`HttpError`] (status, code
/// from [`code`], message that never contains a secret, audit classification) with
/// the `/v1` [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestError(HttpError);

impl RestError {
    /// An error with an explicit status and code: a refusal by this door itself
    /// (`failed` in the audit log).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(HttpError::new(status, code, message))
    }

    /// `400 InvalidInput`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::INVALID_INPUT, message)
    }

    /// `401 Unauthenticated`: the request carries no usable credentials (`denied` in
    /// the audit log, like every authentication failure).
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        let refusal = HttpError::new(StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED, message);
        Self(refusal.classified(AuditOutcome::Denied))
    }

    /// `404 NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The response body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.0.code.to_string(),
                message: self.0.message.clone(),
            },
        }
    }
}

impl From<Error> for RestError {
    fn from(e: Error) -> Self {
        let (status, code) = status_and_code(e.kind());
        Self(HttpError::from_core(&e, status, code))
    }
}

impl From<AuthnError> for RestError {
    fn from(e: AuthnError) -> Self {
        match e {
            AuthnError::Core(core) => core.into(),
            // The AWS error type is meaningful to AWS clients only; the message already
            // says what was wrong with the signature.
            AuthnError::Signature { message, .. } => Self::unauthenticated(message),
        }
    }
}

/// A body this door would not read: 413 `PayloadTooLarge`, 408 `RequestTimeout`,
/// 503 `Unavailable` while the server is busy with other unauthenticated bodies
/// (retry), 400 `InvalidInput` for one that could not be read.
impl From<BodyError> for RestError {
    fn from(e: BodyError) -> Self {
        let (status, code) = match e {
            BodyError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, code::PAYLOAD_TOO_LARGE),
            BodyError::TimedOut { .. } => (StatusCode::REQUEST_TIMEOUT, code::REQUEST_TIMEOUT),
            BodyError::Busy => (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE),
            BodyError::Unreadable => (StatusCode::BAD_REQUEST, code::INVALID_INPUT),
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kcm\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl HttpDoorError for RestError {
    fn http_error(&self) -> &HttpError {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_frontdoor::DoorError;

    #[test]
    fn every_kind_has_the_documented_status_and_code() {
        use ErrorKind::*;
        for kind in ErrorKind::ALL {
            let (status, code) = status_and_code(kind);
            let expected = match kind {
                InvalidInput | MalformedPolicy => (400, "InvalidInput"),
                InvalidAliasName => (400, "InvalidAliasName"),
                InvalidMarker => (400, "InvalidMarker"),
                InvalidTag => (400, "InvalidTag"),
                NotFound => (404, "NotFound"),
                AlreadyExists => (409, "AlreadyExists"),
                AccessDenied => (403, "AccessDenied"),
                UnknownAccessKey => (401, "Unauthenticated"),
                InvalidCiphertext => (400, "InvalidCiphertext"),
                IncorrectKey => (400, "IncorrectKey"),
                KeyDisabled | InvalidState => (409, "InvalidState"),
                InvalidKeyUsage => (400, "InvalidKeyUsage"),
                InvalidSignature => (400, "InvalidSignature"),
                InvalidMac => (400, "InvalidMac"),
                Unsupported => (400, "Unsupported"),
                LimitExceeded => (400, "LimitExceeded"),
                InvalidImportToken => (400, "InvalidImportToken"),
                ExpiredImportToken => (400, "ExpiredImportToken"),
                IncorrectKeyMaterial => (400, "IncorrectKeyMaterial"),
                Throttled => (429, "Throttled"),
                StoreUnavailable | KeystoreUnavailable => (503, "Unavailable"),
                Unaudited => (500, "Unaudited"),
                Internal => (500, "Internal"),
            };
            assert_eq!((status.as_u16(), code), expected, "{kind:?}");
            // Only dependency and internal failures are 5xx, exactly as the core says.
            let core_error = Error::new(kind, "x");
            assert_eq!(
                status.is_client_error(),
                core_error.is_client_error(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn core_errors_keep_their_message() {
        let e = RestError::from(Error::not_found("system payments does not exist"));
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            serde_json::to_value(e.body()).unwrap(),
            serde_json::json!({"error": {"code": "NotFound", "message": "system payments does not exist"}})
        );
    }

    #[test]
    fn signature_failures_are_unauthenticated() {
        let e = RestError::from(AuthnError::Signature {
            error_type: "InvalidSignatureException",
            message: "the request signature does not match".into(),
        });
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(e.code(), "Unauthenticated");
        let response = e.into_response();
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn refusals_are_classified_by_origin() {
        kcm_frontdoor::conformance::assert_refusals_classified_by_origin::<RestError>();
        let outcome = |e: RestError| e.audit_outcome();
        assert_eq!(
            outcome(RestError::unauthenticated("no credentials")),
            AuditOutcome::Denied
        );
        assert_eq!(
            outcome(RestError::invalid_input("bad")),
            AuditOutcome::Failed
        );
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let e = RestError::from(Error::new(ErrorKind::StoreUnavailable, "down"));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
