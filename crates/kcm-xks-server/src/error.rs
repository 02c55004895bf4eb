//! Errors as the XKS proxy API writes them: `{"errorName": …, "errorMessage": …}`
//! with the status the specification's "Error Codes" table gives each name.
//!
//! Core errors are mapped by [`error_name_of`], the only place that decides an
//! error name for an [`ErrorKind`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::AuditOutcome;
use kcm_frontdoor::{AuthnError, BodyError, HttpDoorError, HttpError};
use serde::Serialize;

/// The specification's error names, each with its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorName {
    /// 400: an input parameter is invalid.
    Validation,
    /// 400: the key or key store is disabled, deactivated or blocked.
    InvalidState,
    /// 400: the ciphertext, IV, AAD or tag is corrupted, missing or invalid.
    InvalidCiphertext,
    /// 400: the key does not support the operation.
    InvalidKeyUsage,
    /// 401: the SigV4 signature is invalid.
    AuthenticationFailed,
    /// 403: the operation is not authorised.
    AccessDenied,
    /// 404: the external key is not found.
    KeyNotFound,
    /// 404: the URI path is not valid.
    InvalidUriPath,
    /// 429: the request rate is too high.
    Throttling,
    /// 501: not implemented, or over a size this proxy supports.
    UnsupportedOperation,
    /// 503: a dependency timed out.
    DependencyTimeout,
    /// 500: a generic server error.
    Internal,
}

impl ErrorName {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::Validation => "ValidationException",
            ErrorName::InvalidState => "InvalidStateException",
            ErrorName::InvalidCiphertext => "InvalidCiphertextException",
            ErrorName::InvalidKeyUsage => "InvalidKeyUsageException",
            ErrorName::AuthenticationFailed => "AuthenticationFailedException",
            ErrorName::AccessDenied => "AccessDeniedException",
            ErrorName::KeyNotFound => "KeyNotFoundException",
            ErrorName::InvalidUriPath => "InvalidUriPathException",
            ErrorName::Throttling => "ThrottlingException",
            ErrorName::UnsupportedOperation => "UnsupportedOperationException",
            ErrorName::DependencyTimeout => "DependencyTimeoutException",
            ErrorName::Internal => "InternalException",
        }
    }

    /// The status the specification gives it.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorName::Validation
            | ErrorName::InvalidState
            | ErrorName::InvalidCiphertext
            | ErrorName::InvalidKeyUsage => StatusCode::BAD_REQUEST,
            ErrorName::AuthenticationFailed => StatusCode::UNAUTHORIZED,
            ErrorName::AccessDenied => StatusCode::FORBIDDEN,
            ErrorName::KeyNotFound | ErrorName::InvalidUriPath => StatusCode::NOT_FOUND,
            ErrorName::Throttling => StatusCode::TOO_MANY_REQUESTS,
            ErrorName::UnsupportedOperation => StatusCode::NOT_IMPLEMENTED,
            ErrorName::DependencyTimeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorName::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The error name of each core error kind.
///
/// The match has no catch-all: a kind added to the core does not compile until it
/// is mapped here.
pub fn error_name_of(kind: ErrorKind) -> ErrorName {
    use ErrorKind::*;
    match kind {
        InvalidInput | InvalidAliasName | InvalidMarker | InvalidTag | MalformedPolicy
        | LimitExceeded | InvalidImportToken | ExpiredImportToken | IncorrectKeyMaterial
        | AlreadyExists => ErrorName::Validation,
        // A ciphertext of another key, or one whose MAC or signature does not hold,
        // is a ciphertext this key cannot decrypt.
        InvalidCiphertext | IncorrectKey | InvalidSignature | InvalidMac => {
            ErrorName::InvalidCiphertext
        }
        // The key, or the chain above it (the kill switch), forbids the use.
        KeyDisabled | InvalidState => ErrorName::InvalidState,
        InvalidKeyUsage => ErrorName::InvalidKeyUsage,
        NotFound => ErrorName::KeyNotFound,
        AccessDenied => ErrorName::AccessDenied,
        UnknownAccessKey => ErrorName::AuthenticationFailed,
        Throttled => ErrorName::Throttling,
        Unsupported => ErrorName::UnsupportedOperation,
        // The store or the root key's keystore (an HSM) did not answer: the
        // specification's "timed out while trying to access a dependency layer".
        StoreUnavailable | KeystoreUnavailable => ErrorName::DependencyTimeout,
        Unaudited | Internal => ErrorName::Internal,
    }
}

/// An error of the XKS door.
#[derive(Debug)]
pub struct XksError {
    http: HttpError,
    /// `Allow: POST` on a 405.
    allow_post: bool,
}

impl XksError {
    /// A refusal by the door itself (`failed` in the audit log).
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            http: HttpError::new(name.status(), name.as_str(), message),
            allow_post: false,
        }
    }

    /// An invalid parameter.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorName::Validation, message)
    }

    /// A method other than POST on an API URI: 405, which the specification
    /// requires and its error table does not name.
    pub fn method_not_allowed() -> Self {
        Self {
            http: HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the XKS proxy API takes POST only",
            ),
            allow_post: true,
        }
    }

    /// The error name it carries.
    pub fn name(&self) -> &'static str {
        self.http.code
    }
}

impl From<Error> for XksError {
    fn from(e: Error) -> Self {
        let name = error_name_of(e.kind());
        Self {
            http: HttpError::from_core(&e, name.status(), name.as_str()),
            allow_post: false,
        }
    }
}

impl From<AuthnError> for XksError {
    fn from(e: AuthnError) -> Self {
        let outcome = e.audit_outcome();
        match e {
            AuthnError::Core(core) if core.kind() != ErrorKind::UnknownAccessKey => core.into(),
            AuthnError::Core(core) => Self::authentication_failed(core.message(), outcome),
            AuthnError::Signature { message, .. } => Self::authentication_failed(&message, outcome),
        }
    }
}

impl XksError {
    fn authentication_failed(message: &str, outcome: AuditOutcome) -> Self {
        let name = ErrorName::AuthenticationFailed;
        Self {
            http: HttpError::new(name.status(), name.as_str(), message).classified(outcome),
            allow_post: false,
        }
    }
}

impl From<BodyError> for XksError {
    fn from(e: BodyError) -> Self {
        let name = match e {
            // Over the largest body a request the specification defines can have.
            BodyError::TooLarge { .. } => ErrorName::UnsupportedOperation,
            BodyError::Busy => ErrorName::Throttling,
            BodyError::TimedOut { .. } | BodyError::Unreadable => ErrorName::Validation,
        };
        Self::new(name, e.to_string())
    }
}

/// The body of every error.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    error_name: &'a str,
    error_message: String,
}

/// The specification's `errorMessage`: printable ASCII, under 512 characters.
fn printable(message: &str) -> String {
    message
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(511)
        .collect()
}

impl IntoResponse for XksError {
    fn into_response(self) -> Response {
        if self.allow_post {
            let mut response = self.http.status.into_response();
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let body = ErrorBody {
            error_name: self.http.code,
            error_message: printable(&self.http.message),
        };
        let json = serde_json::to_vec(&body).expect("an error body serialises");
        (
            self.http.status,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response()
    }
}

impl HttpDoorError for XksError {
    fn http_error(&self) -> &HttpError {
        &self.http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name has the status of the specification's table.
    #[test]
    fn names_carry_the_specifications_statuses() {
        let table = [
            (ErrorName::Validation, "ValidationException", 400),
            (ErrorName::InvalidState, "InvalidStateException", 400),
            (
                ErrorName::InvalidCiphertext,
                "InvalidCiphertextException",
                400,
            ),
            (ErrorName::InvalidKeyUsage, "InvalidKeyUsageException", 400),
            (
                ErrorName::AuthenticationFailed,
                "AuthenticationFailedException",
                401,
            ),
            (ErrorName::AccessDenied, "AccessDeniedException", 403),
            (ErrorName::KeyNotFound, "KeyNotFoundException", 404),
            (ErrorName::InvalidUriPath, "InvalidUriPathException", 404),
            (ErrorName::Throttling, "ThrottlingException", 429),
            (
                ErrorName::UnsupportedOperation,
                "UnsupportedOperationException",
                501,
            ),
            (
                ErrorName::DependencyTimeout,
                "DependencyTimeoutException",
                503,
            ),
            (ErrorName::Internal, "InternalException", 500),
        ];
        for (name, text, status) in table {
            assert_eq!(name.as_str(), text);
            assert_eq!(name.status().as_u16(), status, "{text}");
        }
    }

    #[test]
    fn every_core_error_has_a_name_and_keeps_its_audit_outcome() {
        for kind in ErrorKind::ALL {
            let e = XksError::from(Error::new(kind, "m"));
            assert_eq!(e.name(), error_name_of(kind).as_str());
            assert_eq!(
                e.http.audit_outcome(),
                kcm_core::audit::outcome_of(kind),
                "{kind:?}"
            );
        }
        assert_eq!(
            error_name_of(ErrorKind::KeyDisabled),
            ErrorName::InvalidState
        );
        assert_eq!(error_name_of(ErrorKind::NotFound), ErrorName::KeyNotFound);
    }

    #[test]
    fn messages_are_printable_ascii_under_512_characters() {
        let m = printable(&format!("é\n{}", "x".repeat(600)));
        assert!(m.len() < 512 && m.starts_with("??x"));
        assert!(m.chars().all(|c| (' '..='~').contains(&c)));
    }
}
