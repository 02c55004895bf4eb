//! `/v1/root-keys`: a tenant's root keys and the kill switch.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use kcm_core::service::RootKeyChange;

use crate::audit::query;
use crate::handlers::{created, ok, path_param, Outcome};
use crate::request::parse_json;
use kcm_api_types::*;

use crate::wire::{all, ToWire};
use crate::RestApi;

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
            .service()
            .create_root_key(
                caller,
                body.keystore.as_deref(),
                body.description.as_deref().unwrap_or_default(),
            )
            .await?;
        created(info.to_wire())
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
        let roots = api.service().list_root_keys(caller).await?;
        ok(RootKeyList {
            root_keys: all(&roots),
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
        let info = api.service().get_root_key(caller, &id).await?;
        ok(info.to_wire())
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
            .service()
            .change_root_key_state(caller, &id, change, params.dry_run)
            .await?;
        ok(impact.to_wire())
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

/// Import parameters for bringing your own root key (tenant-admin): an RSA wrapping
/// public key and a single-use token that expires after 24 hours (or a restart).
#[utoipa::path(
    post, path = "/v1/root-keys/import-parameters", tag = "root-keys",
    operation_id = "GetRootKeyImportParameters",
    request_body = RootKeyImportParametersRequest,
    responses(
        (status = 200, description = "Wrap your key material to this key", body = RootKeyImportParameters),
        (status = 400, description = "Unknown keystore or algorithm, a keystore that cannot import, too many open imports", body = crate::error::ErrorBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn import_parameters(State(api): State<RestApi>, request: Request) -> Response {
    let mut call = api.begin("GetRootKeyImportParameters", &request);
    let result: Outcome = async {
        let (req, caller) = call.accept(request).await?;
        let body: RootKeyImportParametersRequest = parse_json(&req.body)?;
        let params = api
            .service()
            .root_key_import_parameters(
                caller,
                body.keystore.as_deref(),
                body.wrapping_algorithm
                    .as_deref()
                    .unwrap_or("RSAES_OAEP_SHA_256"),
                body.wrapping_key_spec.as_deref().unwrap_or("RSA_3072"),
            )
            .await?;
        ok(params.to_wire())
    }
    .await;
    call.finish(result).await
}

/// Import your own AES-256 key material as a root key (BYOK): the material, wrapped
/// to the import parameters' public key, is unwrapped and stored in the keystore as
/// non-extractable. The token is used up whatever the outcome.
#[utoipa::path(
    post, path = "/v1/root-keys/import", tag = "root-keys", operation_id = "ImportRootKey",
    request_body = ImportRootKeyRequest,
    responses(
        (status = 201, description = "Root key imported", body = RootKey),
        (status = 400, description = "Unknown, used or expired token; material that does not unwrap to 32 bytes", body = crate::error::ErrorBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn import_root_key(State(api): State<RestApi>, request: Request) -> Response {
    let mut call = api.begin("ImportRootKey", &request);
    let result: Outcome = async {
        use base64::Engine as _;
        let (req, caller) = call.accept(request).await?;
        let body: ImportRootKeyRequest = parse_json(&req.body)?;
        let wrapped = base64::engine::general_purpose::STANDARD
            .decode(body.wrapped_key_material.trim())
            .map_err(|_| {
                crate::error::RestError::invalid_input("wrapped_key_material is not base64")
            })?;
        let info = api
            .service()
            .import_root_key(
                caller,
                &body.import_token,
                &wrapped,
                body.description.as_deref().unwrap_or_default(),
            )
            .await?;
        created(info.to_wire())
    }
    .await;
    call.finish(result).await
}

/// Hold your own key (HYOK): make a key that already lives in a keystore, and stays
/// yours there, a root key. kcm keeps only a reference; every unwrap below it calls
/// the keystore, and revoking the key there cuts everything below off.
#[utoipa::path(
    post, path = "/v1/root-keys/reference", tag = "root-keys", operation_id = "ReferenceRootKey",
    request_body = ReferenceRootKeyRequest,
    responses(
        (status = 201, description = "The key is now a root key (origin external)", body = RootKey),
        (status = 400, description = "Unknown keystore, a keystore that cannot refer, or a key that is missing, ambiguous, not AES-256 or not usable to encrypt and decrypt", body = crate::error::ErrorBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
        (status = 409, description = "That key is already a root key of the tenant", body = crate::error::ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn reference_root_key(State(api): State<RestApi>, request: Request) -> Response {
    let mut call = api.begin("ReferenceRootKey", &request);
    let result: Outcome = async {
        let (req, caller) = call.accept(request).await?;
        let body: ReferenceRootKeyRequest = parse_json(&req.body)?;
        let info = api
            .service()
            .reference_root_key(
                caller,
                body.keystore.as_deref(),
                &body.reference,
                body.description.as_deref().unwrap_or_default(),
            )
            .await?;
        created(info.to_wire())
    }
    .await;
    call.finish(result).await
}

/// Rotate a generated root key: new material in the same keystore re-wraps every
/// system key below it (one commit); the old material is then destroyed. The root
/// key keeps its id; nothing below the system keys changes.
#[utoipa::path(
    post, path = "/v1/root-keys/{id}/rotate", tag = "root-keys", operation_id = "RotateRootKey",
    params(("id" = String, Path, description = "Root key id (UUID)")),
    responses(
        (status = 200, description = "Rotated; the systems below it", body = RootKeyImpactBody),
        (status = 400, description = "An imported or external root key (its material is the customer's)", body = crate::error::ErrorBody),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = crate::error::ErrorBody),
        (status = 404, description = "No such root key in the caller's tenant", body = crate::error::ErrorBody),
        (status = 409, description = "The root key is not active", body = crate::error::ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("sigv4" = []))
)]
pub(crate) async fn rotate_root_key(
    State(api): State<RestApi>,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let mut call = api.begin("RotateRootKey", &request);
    let result: Outcome = async {
        let id = path_param(id)?;
        let (_, caller) = call.accept(request).await?;
        let impact = api.service().rotate_root_key(caller, &id).await?;
        ok(impact.to_wire())
    }
    .await;
    call.finish(result).await
}
