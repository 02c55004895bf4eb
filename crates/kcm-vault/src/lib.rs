//! # kcm-vault
//!
//! The subset of HashiCorp Vault's HTTP API that storage and platform software
//! asks a key manager for — Ceph's RADOS Gateway, ceph-csi, Transit KMS plugins,
//! sops, Terraform, scripts using `hvac` — as a front door of kcm, so that their
//! keys hang below kcm's root keys and kill switch.
//!
//! Served under `/v1/` on a listener of its own, in Vault's JSON shapes (data in
//! `data`, errors as `{"errors": […]}`, [`error`]). A request carries a Vault token
//! (`X-Vault-Token` or `Authorization: Bearer`): a kcm access key of the Vault kind,
//! `kcm.<id>.<secret>`, scoped to one system. Each request takes the path every door
//! shares ([`kcm_frontdoor::Call`]: begin as the door `vault`, admit the token's
//! principal, one core call, finish with the audit record); authorisation is the
//! core's. [`route`] tells the endpoints apart; [`sys`] answers `sys/` and the
//! token's own endpoints; [`transit`] is the Transit engine, whose keys are kcm
//! service keys named by aliases; [`kv`] is KV version 2, whose secrets are the
//! core's versioned secrets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod kubernetes;
pub mod kv;
pub mod request;
pub mod route;
pub mod sys;
pub mod transit;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_frontdoor::{Door, FrontDoor, Requested};

use error::VaultError;
use route::{Mounts, NoRoute, Route};

/// How audit records and metrics name this front door.
pub const DOOR: Door = Door {
    name: "vault",
    request_id_header: "x-kcm-request-id",
};

/// The largest request body: 1 MiB (a Transit batch of many items).
pub const MAX_BODY: usize = 1024 * 1024;

/// The door, shared by all requests.
#[derive(Clone, Debug)]
pub struct VaultApi {
    front: FrontDoor,
    mounts: Arc<Mounts>,
    kubernetes: Option<Arc<kubernetes::KubernetesAuth>>,
}

impl VaultApi {
    /// The door over `front`, with the engines at `mounts`.
    pub fn new(front: FrontDoor, mounts: Mounts) -> Self {
        Self {
            front,
            mounts: Arc::new(mounts),
            kubernetes: None,
        }
    }

    /// The door with Kubernetes service-account login (`auth/kubernetes/login`).
    pub fn with_kubernetes(mut self, auth: kubernetes::KubernetesAuth) -> Self {
        self.kubernetes = Some(Arc::new(auth));
        self
    }
}

/// The largest login body (a service account token is a few KB).
const MAX_LOGIN_BODY: usize = 32 * 1024;

/// The door's router: every path goes to [`handle`].
pub fn router(api: VaultApi) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(api)
}

/// One request: route, begin, the token, the body, one core call, finish.
pub async fn handle(State(api): State<VaultApi>, request: axum::extract::Request) -> Response {
    let route = route::route(
        request.method(),
        request.uri().path(),
        request.uri().query(),
        &api.mounts,
    );
    let requested = match &route {
        Ok(r) => match r.op() {
            Some(op) => Requested::Op(op),
            None => Requested::Unrecognised(r.name()),
        },
        Err(NoRoute::MethodNotAllowed) => Requested::Unrecognised("MethodNotAllowed"),
        Err(NoRoute::UnknownPath) => Requested::Unrecognised("UnknownPath"),
    };
    let mut call = api.front.begin_http(requested, &request);
    let result: Result<Response, VaultError> = async {
        let route = route.map_err(|e| match e {
            NoRoute::MethodNotAllowed => VaultError::method_not_allowed(),
            NoRoute::UnknownPath => VaultError::unknown_path(request.uri().path()),
        })?;
        if route.is_public() {
            return Ok(sys::public(&route, call.service()));
        }
        if route == Route::KubernetesLogin {
            let auth = api
                .kubernetes
                .as_deref()
                .ok_or_else(|| VaultError::unknown_path(request.uri().path()))?;
            let (parts, body) = request.into_parts();
            let body = kcm_frontdoor::read_unproven(&parts, body, MAX_LOGIN_BODY).await?;
            let login = auth
                .login(call.service(), &request::Request::parse(body.bytes())?)
                .await?;
            call.admit(login.session.principal.clone())?;
            tracing::info!(
                role = %login.role.name,
                namespace = %login.account.namespace,
                service_account = %login.account.name,
                access_key = %login.session.principal.access_key_id,
                "Vault Kubernetes login"
            );
            return Ok(auth_answer(
                call.request_id(),
                kubernetes::login_auth(&login),
                None,
            ));
        }
        let (parts, body) = request.into_parts();
        let token = token_of(&parts.headers)?;
        let principal = call.service().authenticate_vault_token(&token).await?;
        call.admit(principal)?;
        check_namespace(&call, &parts.headers).await?;
        let body = kcm_frontdoor::read_proven(&parts, body, MAX_BODY).await?;
        let request_id = call.request_id().to_owned();
        let data = match route {
            Route::SysMounts | Route::SysMountOf(_) => sys::mounts(&route, &api.mounts)?,
            Route::TokenLookupSelf | Route::TokenRenewSelf => {
                return Ok(sys::token_self(&route, &call, &request_id, &token))
            }
            _ if route.is_kv() => kv::serve(&call, &route, &api.mounts.kv, &body).await?,
            _ => transit::serve(&call, &route, &body).await?,
        };
        Ok(match data {
            Some(data) => answer(&request_id, data),
            None => StatusCode::NO_CONTENT.into_response(),
        })
    }
    .await;
    call.finish(result).await
}

/// The Vault token of a request: `X-Vault-Token` (which Ceph's RADOS Gateway sends
/// twice: every copy must be the same token) or `Authorization: Bearer`.
fn token_of(headers: &HeaderMap) -> Result<zeroize::Zeroizing<String>, VaultError> {
    let mut tokens = headers
        .get_all("x-vault-token")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let token = match tokens.next() {
        Some(first) => {
            if tokens.any(|other| other != first) {
                return Err(VaultError::invalid(
                    "the request carries two different X-Vault-Token headers",
                ));
            }
            first
        }
        None => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(VaultError::missing_token)?,
    };
    Ok(zeroize::Zeroizing::new(token.to_owned()))
}

/// `X-Vault-Namespace`, which some clients send (RGW's `rgw_crypt_vault_namespace`):
/// a token acts in one system, so a namespace, when sent, must be that system's
/// name or id.
async fn check_namespace(
    call: &kcm_frontdoor::Call<'_>,
    headers: &HeaderMap,
) -> Result<(), VaultError> {
    let Some(namespace) = headers
        .get("x-vault-namespace")
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim_matches('/'))
        .filter(|n| !n.is_empty())
    else {
        return Ok(());
    };
    let caller = call.caller().expect("checked after admission");
    if call.service().names_own_system(caller, namespace).await? {
        Ok(())
    } else {
        Err(VaultError::from(kcm_core::error::Error::new(
            kcm_core::error::ErrorKind::AccessDenied,
            format!("permission denied: namespace {namespace:?} is not this token's system"),
        )))
    }
}

/// The system a token acts in: a Vault token is scoped to one.
pub fn token_system(
    caller: &kcm_core::authz::Caller,
) -> Result<kcm_core::model::SystemId, VaultError> {
    caller.principal.system_scope.ok_or_else(|| {
        VaultError::from(kcm_core::error::Error::new(
            kcm_core::error::ErrorKind::AccessDenied,
            "permission denied: a Vault token acts in one system",
        ))
    })
}

/// Vault's response envelope around `data`.
pub fn answer(request_id: &str, data: serde_json::Value) -> Response {
    envelope(
        request_id,
        data,
        serde_json::Value::Null,
        serde_json::Value::Null,
    )
}

/// Vault's response envelope of a login or a token renewal: the token in `auth`.
pub fn auth_answer(request_id: &str, auth: serde_json::Value, warning: Option<&str>) -> Response {
    let warnings = warning.map_or(serde_json::Value::Null, |w| serde_json::json!([w]));
    envelope(request_id, serde_json::Value::Null, auth, warnings)
}

fn envelope(
    request_id: &str,
    data: serde_json::Value,
    auth: serde_json::Value,
    warnings: serde_json::Value,
) -> Response {
    let body = serde_json::json!({
        "request_id": request_id,
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": warnings,
        "auth": auth,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
