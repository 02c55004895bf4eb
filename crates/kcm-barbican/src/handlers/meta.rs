//! What is not a resource: version discovery (public, counted, not audited), and
//! the refusals — certificate authorities, unknown paths, wrong methods — which
//! are audited like every request.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kcm_frontdoor::Requested;

use crate::error::BarbicanError;
use crate::microversion::Microversion;
use crate::{versions, BarbicanApi, DOOR};

/// A version document: 300 for `GET /`, 200 for `GET /v1`.
async fn version_document(api: &BarbicanApi, request: Request, root: bool) -> Response {
    let started = Instant::now();
    let (name, response) = match Microversion::of_request(request.headers()) {
        Err(e) => ("GetVersions", e.into_response()),
        Ok(asked) => {
            let refs = api.refs(request.headers());
            let mut response = if root {
                (
                    StatusCode::MULTIPLE_CHOICES,
                    Json(versions::versions(&refs, asked)),
                )
                    .into_response()
            } else {
                (StatusCode::OK, Json(versions::version(&refs, asked))).into_response()
            };
            asked
                .unwrap_or(Microversion::V1_0)
                .stamp(response.headers_mut());
            (if root { "GetVersions" } else { "GetVersion" }, response)
        }
    };
    let status = response.status().as_u16();
    api.front
        .metrics()
        .record(DOOR.name, name, status, started.elapsed());
    response
}

/// `GET /`: every version (300 Multiple Choices).
pub(crate) async fn root(State(api): State<BarbicanApi>, request: Request) -> Response {
    version_document(&api, request, true).await
}

/// `GET /v1`: this version.
pub(crate) async fn v1(State(api): State<BarbicanApi>, request: Request) -> Response {
    version_document(&api, request, false).await
}

/// `/v1/cas…`: certificate authorities are not served.
pub(crate) async fn certificate_authorities(
    State(api): State<BarbicanApi>,
    request: Request,
) -> Response {
    api.refuse(
        Requested::Unrecognised("CertificateAuthorities"),
        request,
        BarbicanError::not_found(
            "Certificate authorities are not supported: this key manager is no certificate \
             authority",
        ),
    )
    .await
}

/// Any path no route serves.
pub(crate) async fn unknown_path(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.refuse(
        Requested::Unrecognised("UnknownPath"),
        request,
        BarbicanError::not_found("The resource could not be found."),
    )
    .await
}

/// A known path with a method it does not serve.
pub(crate) async fn method_not_allowed(
    State(api): State<BarbicanApi>,
    request: Request,
) -> Response {
    api.refuse(
        Requested::Unrecognised("MethodNotAllowed"),
        request,
        BarbicanError::method_not_allowed(),
    )
    .await
}
