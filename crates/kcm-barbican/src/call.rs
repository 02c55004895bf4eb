//! One Barbican request from start to finish, on the path every door shares:
//!
//! ```text
//! FrontDoor::begin ─► microversion, token, body (≤ 25 000 bytes) ─► Call::admit
//!                 ─► the handler's one core call ─► Call::finish (audit, request id, metrics)
//! ```
//!
//! [`BarbicanApi::serve`] does all but the core call, which the handler passes in,
//! so a handler is only the translation of its route onto one core call.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kcm_core::authz::Caller;
use kcm_core::error::Error;
use kcm_core::model::{ObjectId, SystemId};
use kcm_core::service::Service;
use kcm_frontdoor::Requested;
use serde::de::DeserializeOwned;

use crate::error::{Action, BarbicanError};
use crate::microversion::Microversion;
use crate::payload::MAX_REQUEST_BYTES;
use crate::refs::Refs;
use crate::request::parse_json;
use crate::BarbicanApi;

/// What a handler returns: the response, or the error to answer with.
pub(crate) type Outcome = Result<Response, BarbicanError>;

/// The header OpenStack services pass a request's global id in; it becomes the
/// audit record's `client_request_id`.
const OPENSTACK_REQUEST_ID: &str = "x-openstack-request-id";

/// An authenticated request, handed to the handler's core call.
pub(crate) struct Accepted<'a> {
    /// The core.
    pub(crate) service: &'a Service,
    /// Who sent the request (the core notes in it what the audit record needs).
    pub(crate) caller: &'a Caller,
    /// The caller's project's system: where new objects go, what lists show.
    pub(crate) system: SystemId,
    /// How refs are written in this answer.
    pub(crate) refs: Refs,
    /// The microversion the client speaks (1.0 when it names none).
    pub(crate) version: Microversion,
    /// The request's headers.
    pub(crate) headers: HeaderMap,
    uri: Uri,
    body: kcm_frontdoor::BodyBytes,
}

impl Accepted<'_> {
    /// The JSON body as `T` (Content-Type application/json), or a 400/415.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, BarbicanError> {
        parse_json(&self.headers, &self.body)
    }

    /// The raw body.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// The query parameters, decoded, in order.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    /// A header's value as text, if present and readable.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The object a path names: an id that is not a UUID names nothing (a 404, which
/// [`BarbicanApi::serve`] words as its action's missing object).
pub(crate) fn object_id(id: &str) -> Result<ObjectId, BarbicanError> {
    ObjectId::parse(id).ok_or_else(|| Error::not_found(format!("no object {id:?}")).into())
}

impl BarbicanApi {
    /// Serves `operation` (`action` in Barbican's words): read the request,
    /// authenticate it, run its core call, finish. Every answer says the
    /// microversion it speaks, as Barbican's do.
    pub(crate) async fn serve(
        &self,
        operation: impl Into<Requested>,
        action: Action,
        request: Request,
        run: impl AsyncFnOnce(Accepted<'_>) -> Outcome,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let mut call = self.front.begin(operation, source, None);
        call.track(parts.extensions.get());
        if let Some(id) = parts
            .headers
            .get(OPENSTACK_REQUEST_ID)
            .or_else(|| parts.headers.get(kcm_frontdoor::CLIENT_REQUEST_ID_HEADER))
            .and_then(|v| v.to_str().ok())
        {
            call.set_client_request_id(id);
        }
        let asked = Microversion::of_request(&parts.headers);
        let speaks = match &asked {
            Ok(version) => version.unwrap_or(Microversion::V1_0),
            Err(_) => Microversion::V1_0,
        };
        let result = async {
            let version = asked?.unwrap_or(Microversion::V1_0);
            let service = self.front.service();
            // The token is checked before the body is read: an unauthenticated
            // client never makes the server hold its body.
            let principal = self.auth.authenticate(service, &parts.headers).await?;
            let body = kcm_frontdoor::read_proven(&parts, body, MAX_REQUEST_BYTES).await?;
            let caller = call.admit(principal)?;
            let system = caller
                .principal
                .system_scope
                .ok_or_else(|| BarbicanError::forbidden("the caller is not scoped to a project"))?;
            let accepted = Accepted {
                service,
                caller,
                system,
                refs: self.refs(&parts.headers),
                version,
                headers: parts.headers,
                uri: parts.uri,
                body,
            };
            run(accepted).await
        }
        .await;
        let result = result.map_err(|e| e.in_words_of(&action));
        let mut response = call.finish(result).await;
        speaks.stamp(response.headers_mut());
        response
    }

    /// Answers `operation` with `error` straight away (unknown paths and methods,
    /// what this key manager does not serve): still audited and counted.
    pub(crate) async fn refuse(
        &self,
        operation: impl Into<Requested>,
        request: Request,
        error: BarbicanError,
    ) -> Response {
        let source = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let call = self.front.begin(operation, source, None);
        let mut response = call.finish(Err(error)).await;
        Microversion::V1_0.stamp(response.headers_mut());
        response
    }
}
