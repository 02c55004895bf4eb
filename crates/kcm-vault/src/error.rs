//! Errors as Vault writes them: `{"errors": ["…"]}` with Vault's statuses — 400
//! for a bad request, 403 for a missing or invalid token or a refusal, 404 for
//! what does not exist, 405 for a method an endpoint does not take, 429 for a rate
//! limit, 500, and 503 when what kcm depends on does not answer.
//!
//! Core errors are mapped by [`status_of`], the only place that decides a status
//! for an [`ErrorKind`].

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::error::{Error, ErrorKind};
use kcm_frontdoor::{AuthnError, BodyError, HttpDoorError, HttpError};

/// The status and audit code of each core error kind.
///
/// The match has no catch-all: a kind added to the core does not compile until it
/// is mapped here.
pub fn status_of(kind: ErrorKind) -> (StatusCode, &'static str) {
    use ErrorKind::*;
    match kind {
        InvalidInput | InvalidAliasName | InvalidMarker | InvalidTag | MalformedPolicy
        | LimitExceeded | InvalidImportToken | ExpiredImportToken | IncorrectKeyMaterial
        | AlreadyExists | InvalidCiphertext | IncorrectKey | InvalidSignature | InvalidMac
        | InvalidKeyUsage | Unsupported => (StatusCode::BAD_REQUEST, "InvalidRequest"),
        // The key, or the chain above it (the kill switch), forbids the use: a
        // request that will not succeed by being sent again (no 5xx, which clients
        // retry).
        KeyDisabled | InvalidState => (StatusCode::BAD_REQUEST, "KeyUnusable"),
        NotFound => (StatusCode::NOT_FOUND, "NotFound"),
        AccessDenied | UnknownAccessKey => (StatusCode::FORBIDDEN, "PermissionDenied"),
        Throttled => (StatusCode::TOO_MANY_REQUESTS, "RateLimited"),
        StoreUnavailable | KeystoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
        Unaudited | Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Internal"),
    }
}

/// An error of the Vault door.
#[derive(Debug)]
pub struct VaultError {
    http: HttpError,
}

impl VaultError {
    /// A bad request (`failed` in the audit log).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            http: HttpError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message),
        }
    }

    /// What kcm asked on the caller's behalf (a Kubernetes API server) did not
    /// answer usefully: 503, which clients retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            http: HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", message),
        }
    }

    /// A path no endpoint has: Vault's 404 for an unsupported path.
    pub fn unknown_path(path: &str) -> Self {
        Self {
            http: HttpError::new(
                StatusCode::NOT_FOUND,
                "UnsupportedPath",
                format!("1 error occurred: unsupported path {path:?} (kcm serves sys/, auth/token/, Transit and KV version 2)"),
            ),
        }
    }

    /// A method the endpoint does not take.
    pub fn method_not_allowed() -> Self {
        Self {
            http: HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "unsupported operation: this endpoint does not take this method",
            ),
        }
    }

    /// No token, or one that is not a Vault token of kcm's: Vault's 403.
    pub fn missing_token() -> Self {
        Self {
            http: HttpError::new(
                StatusCode::FORBIDDEN,
                "PermissionDenied",
                "permission denied: no token (send X-Vault-Token)",
            )
            .classified(kcm_core::model::AuditOutcome::Denied),
        }
    }

    /// The status it carries.
    pub fn status(&self) -> StatusCode {
        self.http.status
    }

    /// What it says (never a secret), as a batch item's `error`.
    pub fn message_text(&self) -> &str {
        &self.http.message
    }
}

impl From<Error> for VaultError {
    fn from(e: Error) -> Self {
        let (status, code) = status_of(e.kind());
        Self {
            http: HttpError::from_core(&e, status, code),
        }
    }
}

impl From<AuthnError> for VaultError {
    fn from(e: AuthnError) -> Self {
        match e {
            AuthnError::Core(core) => core.into(),
            AuthnError::Signature { message, .. } => Self {
                http: HttpError::new(StatusCode::FORBIDDEN, "PermissionDenied", message)
                    .classified(kcm_core::model::AuditOutcome::Denied),
            },
        }
    }
}

impl From<BodyError> for VaultError {
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Busy => StatusCode::TOO_MANY_REQUESTS,
            BodyError::TimedOut { .. } | BodyError::Unreadable => StatusCode::BAD_REQUEST,
        };
        Self {
            http: HttpError::new(status, "InvalidRequest", e.to_string()),
        }
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        // Vault answers a missing object with an empty error list.
        let errors: Vec<&str> = if self.http.code == "NotFound" {
            vec![]
        } else {
            vec![self.http.message.as_str()]
        };
        let body = serde_json::json!({ "errors": errors });
        (
            self.http.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl HttpDoorError for VaultError {
    fn http_error(&self) -> &HttpError {
        &self.http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_error_has_a_status_and_keeps_its_audit_outcome() {
        for kind in ErrorKind::ALL {
            let e = VaultError::from(Error::new(kind, "m"));
            assert_eq!(e.status(), status_of(kind).0);
            assert_eq!(
                e.http.audit_outcome(),
                kcm_core::audit::outcome_of(kind),
                "{kind:?}"
            );
        }
        assert_eq!(
            status_of(ErrorKind::UnknownAccessKey).0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(status_of(ErrorKind::KeyDisabled).0, StatusCode::BAD_REQUEST);
    }
}
