//! One REST call from start to finish: the request path every door shares
//! ([`kcm_frontdoor::Call`]), with what is REST's own — reading the body, choosing
//! between bearer and SigV4 authentication — folded into two helpers, so that a
//! handler is only the translation of its route onto one core call:
//!
//! ```text
//! api.serve_at(Op::GetSystem, id, request, async |call, id| {
//!     ok(call.service.get_system(call.caller, &id).await?.to_wire())
//! })
//! .await
//! ```
//!
//! [`RestApi::serve`] and [`RestApi::serve_at`] begin the call, read and authenticate
//! the request, run the handler's core call with the authenticated caller and finish
//! ([`kcm_frontdoor::Call::finish`]: the audit record, durable before the response
//! goes out, the log line of a refusal, the `x-kcm-request-id` header, the metrics).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kcm_core::authz::Caller;
use kcm_core::service::Service;
use kcm_frontdoor::{BodyBytes, Requested};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::RestError;
use crate::request::{authenticate, parse_json};
use crate::RestApi;

/// What a handler returns: the response, or the error to answer with.
pub(crate) type Outcome = Result<Response, RestError>;

/// The `{id}` or `{id_or_name}` of a route, as axum extracts it; checked by
/// [`RestApi::serve_at`] so that a bad one is answered (and audited) like any refusal.
pub(crate) type PathParam = Result<Path<String>, PathRejection>;

/// A route's query parameters as axum extracts them; read with [`query`] inside the
/// call, after authentication, so that a bad one is answered and audited too.
pub(crate) type QueryParams<T> = Result<Query<T>, QueryRejection>;

/// The query parameters, or a 400 naming what is wrong with them.
pub(crate) fn query<T>(params: QueryParams<T>) -> Result<T, RestError> {
    params
        .map(|Query(params)| params)
        .map_err(|e| RestError::invalid_input(format!("invalid query: {}", e.body_text())))
}

/// An authenticated request, handed to the handler's core call.
pub(crate) struct Accepted<'a> {
    /// The core.
    pub(crate) service: &'a Service,
    /// Who sent the request (the core notes in it what the audit record needs).
    pub(crate) caller: &'a Caller,
    body: BodyBytes,
}

impl Accepted<'_> {
    /// The JSON body as `T`, or a 400 naming what is wrong with it.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, RestError> {
        parse_json(&self.body)
    }
}

impl RestApi {
    /// Serves `operation` (its stable name, as in the audit log and the metrics): read
    /// and authenticate the request, then `run` its core call.
    pub(crate) async fn serve(
        &self,
        operation: impl Into<Requested>,
        request: Request,
        run: impl AsyncFnOnce(Accepted<'_>) -> Outcome,
    ) -> Response {
        self.serve_checked(operation, request, Ok(()), async |call, ()| run(call).await)
            .await
    }

    /// Serves `operation` on the resource its path names: the path parameter is
    /// checked first, then the request is read and authenticated, then `run` gets both.
    pub(crate) async fn serve_at(
        &self,
        operation: impl Into<Requested>,
        id: PathParam,
        request: Request,
        run: impl AsyncFnOnce(Accepted<'_>, String) -> Outcome,
    ) -> Response {
        let id = id
            .map(|Path(id)| id)
            .map_err(|e| RestError::invalid_input(format!("invalid path parameter: {e}")));
        self.serve_checked(operation, request, id, run).await
    }

    /// Answers `operation` with `error` straight away (unknown paths and methods):
    /// still audited and counted, like every request.
    pub(crate) async fn refuse(
        &self,
        operation: impl Into<Requested>,
        request: Request,
        error: RestError,
    ) -> Response {
        let call = self.front.begin_http(operation, &request);
        call.finish(Err(error)).await
    }

    /// The one body behind [`RestApi::serve`] and [`RestApi::serve_at`]: `checked` is
    /// what was read from the URL before authentication.
    async fn serve_checked<T>(
        &self,
        operation: impl Into<Requested>,
        request: Request,
        checked: Result<T, RestError>,
        run: impl AsyncFnOnce(Accepted<'_>, T) -> Outcome,
    ) -> Response {
        let mut call = self.front.begin_http(operation, &request);
        let result = async {
            let input = checked?;
            let (caller, body) = authenticate(request, &mut call).await?;
            let accepted = Accepted {
                service: self.service(),
                caller,
                body,
            };
            run(accepted, input).await
        }
        .await;
        call.finish(result).await
    }
}

/// `200 OK` with `body` as JSON.
pub(crate) fn ok(body: impl Serialize) -> Outcome {
    Ok(Json(body).into_response())
}

/// `201 Created` with `body` as JSON.
pub(crate) fn created(body: impl Serialize) -> Outcome {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
