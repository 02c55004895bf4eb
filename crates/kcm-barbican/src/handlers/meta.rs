//! What is not a resource: version discovery (`GET /` public, counted, not
//! audited; `GET /v1` behind authentication, as in Barbican), and the refusals —
//! certificate authorities, unknown paths, wrong methods — which are audited like
//! every request.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kcm_frontdoor::Requested;

use crate::error::{Action, BarbicanError};
use crate::microversion::Microversion;
use crate::{versions, BarbicanApi, DOOR};

/// `GET /`: every version (300 Multiple Choices), without authentication.
pub(crate) async fn root(State(api): State<BarbicanApi>, request: Request) -> Response {
    let started = Instant::now();
    let mut response = match Microversion::of_request(request.headers()) {
        Err(e) => e.into_response(),
        Ok(asked) => {
            let refs = api.refs(request.headers());
            let body = Json(versions::versions(&refs, asked));
            let mut response = (StatusCode::MULTIPLE_CHOICES, body).into_response();
            asked
                .unwrap_or(Microversion::V1_0)
                .stamp(response.headers_mut());
            response
        }
    };
    let status = response.status().as_u16();
    api.front
        .metrics()
        .record(DOOR.name, "GetVersions", status, started.elapsed());
    if status != 300 {
        Microversion::V1_0.stamp(response.headers_mut());
    }
    response
}

/// `GET /v1`: this version, for an authenticated caller (a 401 otherwise, as
/// Barbican's `/v1` is behind keystonemiddleware). Audited like every
/// authenticated request; it makes no core call.
pub(crate) async fn v1(State(api): State<BarbicanApi>, request: Request) -> Response {
    const ACTION: Action = Action {
        name: "Version retrieval",
        missing: "The version you requested wasn't found",
    };
    api.serve(
        Requested::Unrecognised("GetVersion"),
        ACTION,
        request,
        async |call| {
            let body = versions::version(&call.refs, Some(call.version));
            Ok((StatusCode::OK, Json(body)).into_response())
        },
    )
    .await
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
