//! `/v1/root-keys`: a tenant's root keys and the kill switch.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use kcm_core::service::RootKeyChange;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::audit::query;
use crate::handlers::{created, ok, path_param, Outcome};
use crate::request::parse_json;
use crate::types::*;
use crate::RestApi;

/// Options of a root key state change.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StateChangeParams {
    /// `true`: change nothing, only report the systems and keys the change would
    /// affect (the impact preview).
    #[serde(default)]
    pub dry_run: bool,
}

/// Create a root key in the caller's tenant (tenant-admin), generated inside a keystore.
#[utoipa::path(
    post, path = "/v1/root-keys", tag = "root-keys", operation_id = "CreateRootKey",
    request_body = CreateRootKeyRequest,
    responses(
        (status = 201, description = "Root key generated in the keystore", body = RootKey),
        (status = 400, description = "Unknown keystore, description too long, or bad body", body = crate::error::ErrorBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn create_root_key(State(api): State<RestApi>, request: Request) -> Response {
    let mut call = api.begin("CreateRootKey", &request);
    let result: Outcome = async {
        let (req, caller) = call.accept(request).await?;
        let body: CreateRootKeyRequest = parse_json(&req.body)?;
        let info = api
            .service
            .create_root_key(
                caller,
                body.keystore.as_deref(),
                body.description.as_deref().unwrap_or_default(),
            )
            .await?;
        created(RootKey::from(&info))
    }
    .await;
    call.finish(result).await
}

/// List the root keys of the caller's tenant.
#[utoipa::path(
    get, path = "/v1/root-keys", tag = "root-keys", operation_id = "ListRootKeys",
    responses(
        (status = 200, description = "Root keys", body = RootKeyList),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
        (status = 503, description = "Store unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn list_root_keys(State(api): State<RestApi>, request: Request) -> Response {
    let mut call = api.begin("ListRootKeys", &request);
    let result: Outcome = async {
        let (_, caller) = call.accept(request).await?;
        let roots = api.service.list_root_keys(caller).await?;
        ok(RootKeyList {
            root_keys: roots.iter().map(RootKey::from).collect(),
        })
    }
    .await;
    call.finish(result).await
}

/// Get one root key of the caller's tenant.
#[utoipa::path(
    get, path = "/v1/root-keys/{id}", tag = "root-keys", operation_id = "GetRootKey",
    params(("id" = String, Path, description = "Root key id (UUID)")),
    responses(
        (status = 200, description = "The root key", body = RootKey),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "No such root key in the caller's tenant", body = crate::error::ErrorBody),
        (status = 503, description = "Store unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn get_root_key(
    State(api): State<RestApi>,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let mut call = api.begin("GetRootKey", &request);
    let result: Outcome = async {
        let id = path_param(id)?;
        let (_, caller) = call.accept(request).await?;
        let info = api.service.get_root_key(caller, &id).await?;
        ok(RootKey::from(&info))
    }
    .await;
    call.finish(result).await
}

/// One state change of the kill switch, shared by the three routes.
async fn change_state(
    api: RestApi,
    operation: &'static str,
    change: RootKeyChange,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<StateChangeParams>, QueryRejection>,
    request: Request,
) -> Response {
    let mut call = api.begin(operation, &request);
    let result: Outcome = async {
        let id = path_param(id)?;
        let (_, caller) = call.accept(request).await?;
        let params = query(params)?;
        let impact = api
            .service
            .change_root_key_state(caller, &id, change, params.dry_run)
            .await?;
        ok(RootKeyImpactBody::from(&impact))
    }
    .await;
    call.finish(result).await
}

/// Enable a disabled or suspended root key: everything below it works again.
#[utoipa::path(
    post, path = "/v1/root-keys/{id}/enable", tag = "root-keys", operation_id = "EnableRootKey",
    params(("id" = String, Path, description = "Root key id (UUID)"), StateChangeParams),
    responses(
        (status = 200, description = "Enabled (or, with dry_run, what enabling would restore)", body = RootKeyImpactBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
        (status = 404, description = "No such root key in the caller's tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The root key's state does not allow it", body = crate::error::ErrorBody),
        (status = 503, description = "Store unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn enable_root_key(
    State(api): State<RestApi>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<StateChangeParams>, QueryRejection>,
    request: Request,
) -> Response {
    change_state(
        api,
        "EnableRootKey",
        RootKeyChange::Enable,
        id,
        params,
        request,
    )
    .await
}

/// The kill switch: disable a root key, so every system and key below it refuses
/// every operation (on every node within the revocation bound).
#[utoipa::path(
    post, path = "/v1/root-keys/{id}/disable", tag = "root-keys", operation_id = "DisableRootKey",
    params(("id" = String, Path, description = "Root key id (UUID)"), StateChangeParams),
    responses(
        (status = 200, description = "Disabled (or, with dry_run, what disabling would cut off)", body = RootKeyImpactBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
        (status = 404, description = "No such root key in the caller's tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The root key's state does not allow it", body = crate::error::ErrorBody),
        (status = 503, description = "Store unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn disable_root_key(
    State(api): State<RestApi>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<StateChangeParams>, QueryRejection>,
    request: Request,
) -> Response {
    change_state(
        api,
        "DisableRootKey",
        RootKeyChange::Disable,
        id,
        params,
        request,
    )
    .await
}

/// Suspend a root key: everything below it may only decrypt.
#[utoipa::path(
    post, path = "/v1/root-keys/{id}/suspend", tag = "root-keys", operation_id = "SuspendRootKey",
    params(("id" = String, Path, description = "Root key id (UUID)"), StateChangeParams),
    responses(
        (status = 200, description = "Suspended (or, with dry_run, what suspending would affect)", body = RootKeyImpactBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
        (status = 404, description = "No such root key in the caller's tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The root key's state does not allow it", body = crate::error::ErrorBody),
        (status = 503, description = "Store unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn suspend_root_key(
    State(api): State<RestApi>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<StateChangeParams>, QueryRejection>,
    request: Request,
) -> Response {
    change_state(
        api,
        "SuspendRootKey",
        RootKeyChange::Suspend,
        id,
        params,
        request,
    )
    .await
}
