//! Errors as Barbican writes them: `{"code": 404, "title": "Not Found",
//! "description": "…"}` with the HTTP status in `code` and its reason phrase in
//! `title` (python-barbicanclient shows `title: description`).
//!
//! Core errors are mapped by [`status_of`], the only place that decides a status
//! for an [`ErrorKind`]; Keystone's answers by the constructors below.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::AuditOutcome;
use kcm_frontdoor::{HttpDoorError, HttpError};
use serde::Serialize;

/// The HTTP status of each core error kind, as Barbican would answer it.
///
/// The match has no catch-all: a kind added to the core does not compile until it
/// is mapped here.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    use ErrorKind::*;
    match kind {
        InvalidInput | InvalidAliasName | InvalidMarker | InvalidTag | MalformedPolicy
        | InvalidCiphertext | IncorrectKey | InvalidKeyUsage | InvalidSignature | InvalidMac
        | Unsupported | InvalidImportToken | ExpiredImportToken | IncorrectKeyMaterial => {
            StatusCode::BAD_REQUEST
        }
        // Barbican's LimitExceeded is a payload over max_allowed_secret_in_bytes.
        LimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        NotFound => StatusCode::NOT_FOUND,
        // A name taken, a payload already stored ("Secret already has data"), or an
        // object whose chain forbids the use: the request conflicts with the state.
        AlreadyExists | KeyDisabled | InvalidState => StatusCode::CONFLICT,
        AccessDenied => StatusCode::FORBIDDEN,
        UnknownAccessKey => StatusCode::UNAUTHORIZED,
        Throttled => StatusCode::TOO_MANY_REQUESTS,
        StoreUnavailable | KeystoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Unaudited | Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code the audit record and the log name a refusal by: the status's reason
/// phrase without spaces (`NotFound`, `RequestEntityTooLarge`).
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        408 => "RequestTimeout",
        409 => "Conflict",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    }
}

/// Barbican's title for a status (webob's reason phrases).
fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Request Entity Too Large",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// The body of every error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// The HTTP status.
    pub code: u16,
    /// Its reason phrase.
    pub title: String,
    /// What was wrong; never a secret.
    pub description: String,
}

/// What keystonemiddleware answers a request without a valid token with, in front
/// of every OpenStack service (Barbican's own error shape is not used for it).
pub const AUTHENTICATION_REQUIRED: &str = "The request you have made requires authentication.";

/// What a request was doing, in Barbican's words, for the errors the core gives it:
/// a refusal is "`<name>` attempt not allowed - …", a missing object `missing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// Barbican's name of the operation (`Secret retrieval`).
    pub name: &'static str,
    /// Barbican's 404 for the object the path names.
    pub missing: &'static str,
}

/// An error on its way to becoming a Barbican error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarbicanError {
    error: HttpError,
    /// The core's kind, when the core made the error (so that its words can be
    /// Barbican's for the action at hand, see [`BarbicanError::in_words_of`]).
    core: Option<ErrorKind>,
    /// A 401 carries Keystone's body and where to get a token
    /// (`WWW-Authenticate: Keystone uri="…"`), as keystonemiddleware sends them.
    www_authenticate: Option<String>,
}

impl BarbicanError {
    /// A refusal by the door itself (`failed` in the audit log).
    pub fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            error: HttpError::new(status, code_of(status), description),
            core: None,
            www_authenticate: None,
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }

    /// `400 Bad Request` for a body that does not match Barbican's schema `schema`
    /// (`Secret`, `Container`), in Barbican's words.
    pub fn schema(schema: &str, reason: &str, property: &str) -> Self {
        Self::bad_request(format!(
            "Provided object does not match schema '{schema}': {reason}. Invalid property: '{property}'"
        ))
    }

    /// `404 Not Found`.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }

    /// `405 Method Not Allowed` (Barbican gives no description).
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "")
    }

    /// `406 Not Acceptable`.
    pub fn not_acceptable(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, description)
    }

    /// `413 Request Entity Too Large`.
    pub fn too_large(description: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, description)
    }

    /// `415 Unsupported Media Type`, naming the types `expected`.
    pub fn unsupported_media_type(expected: &[&str]) -> Self {
        let list: Vec<String> = expected.iter().map(|t| format!("'{t}'")).collect();
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unexpected content type. Expected content types are: [{}]",
                list.join(", ")
            ),
        )
    }

    /// `401 Unauthorized`: no token, or one Keystone does not honour (`denied`).
    /// `keystone` (Keystone's base URL) is where to get one.
    pub fn unauthorized(keystone: Option<&str>) -> Self {
        let status = StatusCode::UNAUTHORIZED;
        let error = HttpError::new(status, code_of(status), AUTHENTICATION_REQUIRED)
            .classified(AuditOutcome::Denied);
        Self {
            error,
            core: None,
            www_authenticate: Some(match keystone {
                Some(uri) => format!("Keystone uri=\"{uri}/v3\""),
                None => "Keystone".into(),
            }),
        }
    }

    /// `403 Forbidden`: Keystone vouched for the caller, kcm does not admit them
    /// (`denied`).
    pub fn forbidden(description: impl Into<String>) -> Self {
        let status = StatusCode::FORBIDDEN;
        Self {
            error: HttpError::new(status, code_of(status), description)
                .classified(AuditOutcome::Denied),
            core: None,
            www_authenticate: None,
        }
    }

    /// `503 Service Unavailable`: the caller could not be authenticated because a
    /// dependency (Keystone) is down; the detail goes to the log, not the caller.
    pub fn unavailable(description: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, description)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.error.status
    }

    /// The response body (a 401 carries keystonemiddleware's `error` object too).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.error.status.as_u16(),
            title: title_of(self.error.status).to_owned(),
            description: self.error.message.clone(),
        }
    }

    /// The same error in Barbican's words for `action` when the core made it: a
    /// refusal names the action, a missing object is `action.missing` (or, for a
    /// secret without its payload or a missing metadata key, what Barbican says
    /// then), a payload stored twice is Barbican's conflict. Status, code and
    /// audit classification stay the core's.
    pub fn in_words_of(mut self, action: &Action) -> Self {
        let Some(kind) = self.core else {
            return self;
        };
        let message = &self.error.message;
        let words = match kind {
            ErrorKind::AccessDenied => Some(format!(
                "{} attempt not allowed - please review your user/project privileges",
                action.name
            )),
            ErrorKind::NotFound if message.contains("has no payload") => {
                Some("Not Found. Sorry but your secret has no payload.".into())
            }
            ErrorKind::NotFound if message.contains("metadata item") => {
                Some("Secret metadata not found.".into())
            }
            ErrorKind::NotFound if message.contains("no such consumer") => {
                Some("Consumer not found.".into())
            }
            ErrorKind::NotFound => Some(action.missing.into()),
            ErrorKind::InvalidState if message.contains("already has its payload") => {
                Some("Secret already has data, cannot modify it.".into())
            }
            _ => None,
        };
        if let Some(words) = words {
            self.error.message = words;
        }
        self
    }
}

impl From<Error> for BarbicanError {
    fn from(e: Error) -> Self {
        let status = status_of(e.kind());
        Self {
            error: HttpError::from_core(&e, status, code_of(status)),
            core: Some(e.kind()),
            www_authenticate: None,
        }
    }
}

impl From<kcm_frontdoor::AuthnError> for BarbicanError {
    fn from(e: kcm_frontdoor::AuthnError) -> Self {
        match e {
            kcm_frontdoor::AuthnError::Core(core) => core.into(),
            kcm_frontdoor::AuthnError::Signature { .. } => Self::unauthorized(None),
        }
    }
}

/// A body this door would not read: 413 in Barbican's words for one over its
/// `max_allowed_request_size_in_bytes`, 408 for one that did not arrive in time, 400
/// for one that could not be read. (Bodies are read after the token is checked, so
/// the budget of unauthenticated bodies never refuses one here; if it did, 503.)
impl From<kcm_frontdoor::BodyError> for BarbicanError {
    fn from(e: kcm_frontdoor::BodyError) -> Self {
        use kcm_frontdoor::BodyError::*;
        match e {
            TooLarge { limit } => {
                Self::too_large(format!("The request is larger than {limit} bytes."))
            }
            TimedOut { .. } => Self::new(StatusCode::REQUEST_TIMEOUT, e.to_string()),
            Busy => Self::unavailable(e.to_string()),
            Unreadable => Self::bad_request("The request body could not be read."),
        }
    }
}

impl IntoResponse for BarbicanError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = if status == StatusCode::UNAUTHORIZED {
            // keystonemiddleware's body (`error`), with Barbican's fields beside it:
            // python-barbicanclient reads `title` and `description`.
            let body = serde_json::json!({
                "code": 401,
                "title": "Unauthorized",
                "description": self.error.message,
                "error": {"code": 401, "title": "Unauthorized", "message": self.error.message},
            });
            (status, axum::Json(body)).into_response()
        } else {
            (status, axum::Json(self.body())).into_response()
        };
        let headers = response.headers_mut();
        if let Some(value) = self
            .www_authenticate
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl HttpDoorError for BarbicanError {
    fn http_error(&self) -> &HttpError {
        &self.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_frontdoor::DoorError;

    #[test]
    fn every_kind_has_a_status_of_the_right_class() {
        for kind in ErrorKind::ALL {
            let status = status_of(kind);
            let core = Error::new(kind, "x");
            assert_eq!(status.is_client_error(), core.is_client_error(), "{kind:?}");
        }
        assert_eq!(status_of(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ErrorKind::AccessDenied), StatusCode::FORBIDDEN);
        assert_eq!(status_of(ErrorKind::InvalidState), StatusCode::CONFLICT);
        assert_eq!(
            status_of(ErrorKind::LimitExceeded),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn the_body_is_barbicans() {
        let e = BarbicanError::from(Error::not_found("secret expired"));
        assert_eq!(
            serde_json::to_value(e.body()).unwrap(),
            serde_json::json!({"code": 404, "title": "Not Found", "description": "secret expired"})
        );
        let e = BarbicanError::too_large("too big");
        assert_eq!(e.body().title, "Request Entity Too Large");
        assert_eq!(e.code(), "RequestEntityTooLarge");
    }

    #[test]
    fn a_401_is_keystones() {
        let e = BarbicanError::unauthorized(Some("http://keystone:5000"));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Keystone uri=\"http://keystone:5000/v3\""
        );
    }

    #[test]
    fn core_errors_take_barbicans_words() {
        let action = Action {
            name: "Secret retrieval",
            missing: "Not Found. Provided secret id is invalid.",
        };
        let words = |e: Error| {
            BarbicanError::from(e)
                .in_words_of(&action)
                .body()
                .description
        };
        assert_eq!(
            words(Error::denied("no")),
            "Secret retrieval attempt not allowed - please review your user/project privileges"
        );
        assert_eq!(
            words(Error::not_found("object x does not exist")),
            "Not Found. Provided secret id is invalid."
        );
        assert_eq!(
            words(Error::not_found("object x has no payload")),
            "Not Found. Sorry but your secret has no payload."
        );
        assert_eq!(words(Error::invalid("bad name")), "bad name");
        // The door's own errors keep their words.
        let own = BarbicanError::forbidden("domain unknown").in_words_of(&action);
        assert_eq!(own.body().description, "domain unknown");
    }

    #[test]
    fn refusals_are_classified_by_origin() {
        kcm_frontdoor::conformance::assert_refusals_classified_by_origin::<BarbicanError>();
        assert_eq!(
            BarbicanError::forbidden("no role").audit_outcome(),
            AuditOutcome::Denied
        );
        assert_eq!(
            BarbicanError::unauthorized(None).audit_outcome(),
            AuditOutcome::Denied
        );
        assert_eq!(
            BarbicanError::bad_request("bad").audit_outcome(),
            AuditOutcome::Failed
        );
        assert_eq!(
            BarbicanError::unavailable("keystone down").audit_outcome(),
            AuditOutcome::Failed
        );
    }
}
