//! The HTTP layer of the request path: how an HTTP request begins a [`Call`], how
//! an HTTP response is an [`Answer`], and how an HTTP door's error is a [`DoorError`]
//! ([`HttpError`], [`HttpDoorError`]). Everything else in the path is protocol-free.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::audit::outcome_of;
use kcm_core::error::Error;
use kcm_core::model::AuditOutcome;

use crate::{Answer, Call, DoorError, FrontDoor, Requested};

impl FrontDoor {
    /// Starts serving `operation` for an HTTP request: the client address (from
    /// axum's connection info), the `Authorization` header and the listener's
    /// [`InFlight`](crate::connections::InFlight) are read now, before the door
    /// consumes the request.
    pub fn begin_http<B>(&self, operation: impl Into<Requested>, request: &Request<B>) -> Call<'_> {
        let source = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let authorization = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .cloned();
        let mut call = self.begin(operation, source, authorization);
        call.track(request.extensions().get());
        call.set_transport(request.extensions().get::<Transport>().copied());
        if let Some(id) = request.headers().get(CLIENT_REQUEST_ID_HEADER) {
            call.set_client_request_id(id.to_str().unwrap_or(""));
        }
        call
    }
}

/// How the request's connection is carried, as the listener that accepted it puts
/// it in the request's extensions (for key policies' `aws:SecureTransport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    /// The connection is TLS.
    pub tls: bool,
}

/// The header in which an HTTP client may name its own id for a request; it goes
/// into the request's audit record (`client_request_id`).
pub const CLIENT_REQUEST_ID_HEADER: &str = "x-kcm-client-request-id";

impl Answer for Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    fn set_request_id(&mut self, name: &'static str, request_id: &str) {
        if let Ok(value) = HeaderValue::from_str(request_id) {
            self.headers_mut().insert(name, value);
        }
    }
}

/// What an HTTP door's error carries, whatever body it is rendered into: the status,
/// the code the caller sees (an AWS error type, a REST code), the caller-safe message
/// and the audit classification decided where the error was made.
///
/// Each door keeps its own exhaustive `match` from [`ErrorKind`](kcm_core::error::ErrorKind)
/// to a status and code, and its own body; this is only the part they share, so that
/// [`DoorError`] is written once for all of them (see [`HttpDoorError`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// The error as the caller sees it on the wire.
    pub code: &'static str,
    /// Message naming what was wrong; never contains a secret.
    pub message: String,
    /// Set by the constructors, never by reading `code` (see [`DoorError`]).
    outcome: AuditOutcome,
}

impl HttpError {
    /// A refusal by the door itself (`failed` in the audit log).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            outcome: AuditOutcome::Failed,
        }
    }

    /// The core error `e` with the status and code its door's `match` gave its kind,
    /// classified by the core ([`kcm_core::audit::outcome_of`]).
    pub fn from_core(e: &Error, status: StatusCode, code: &'static str) -> Self {
        Self::new(status, code, e.message()).classified(outcome_of(e.kind()))
    }

    /// The same error with the audit classification `outcome`, for an error made
    /// where that is known (an authentication failure is `denied`).
    pub fn classified(self, outcome: AuditOutcome) -> Self {
        Self { outcome, ..self }
    }

    /// `denied` or `failed`, as decided where the error was made.
    pub fn audit_outcome(&self) -> AuditOutcome {
        self.outcome
    }
}

/// An HTTP door's error type: an [`HttpError`] that the door renders into its own
/// response body. Implementing this is all a door writes to get [`DoorError`].
pub trait HttpDoorError: From<Error> + IntoResponse {
    /// The status, code, message and classification this error carries.
    fn http_error(&self) -> &HttpError;
}

impl<E: HttpDoorError> DoorError for E {
    type Answer = Response;

    fn audit_outcome(&self) -> AuditOutcome {
        self.http_error().audit_outcome()
    }

    fn code(&self) -> &str {
        self.http_error().code
    }

    fn message(&self) -> &str {
        &self.http_error().message
    }

    fn is_server_error(&self) -> bool {
        self.http_error().status.is_server_error()
    }

    fn into_answer(self) -> Response {
        self.into_response()
    }
}
