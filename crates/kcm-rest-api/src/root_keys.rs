//! `/v1/root-keys`: a tenant's root keys and the kill switch.

use axum::extract::{Request, State};
use axum::response::Response;
use kcm_api_types::*;
use kcm_core::authz::Op;
use kcm_core::service::RootKeyChange;

use crate::call::{created, ok, query, PathParam, QueryParams};
use crate::error::{ErrorBody, RestError};
use crate::wire::ToWire;
use crate::RestApi;

/// Create a root key in the caller's tenant (tenant-admin), generated inside a keystore.
#[utoipa::path(
    post, path = "/v1/root-keys", tag = "root-keys", operation_id = "CreateRootKey",
    request_body = CreateRootKeyRequest,
    responses(
        (status = 201, description = "Root key generated in the keystore", body = RootKey),
        (status = 400, description = "Unknown keystore, description too long, or bad body", body = ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn create_root_key(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::CreateRootKey, request, async |call| {
        let body: CreateRootKeyRequest = call.json()?;
        let description = body.description.as_deref().unwrap_or_default();
        let info = call
            .service
            .create_root_key(call.caller, body.keystore.as_deref(), description);
        created(info.await?.to_wire())
    })
    .await
}

/// List the root keys of the caller's tenant.
#[utoipa::path(
    get, path = "/v1/root-keys", tag = "root-keys", operation_id = "ListRootKeys",
    responses(
        (status = 200, description = "Root keys", body = RootKeyList),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list_root_keys(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::ListRootKeys, request, async |call| {
        ok(call.service.list_root_keys(call.caller).await?.to_wire())
    })
    .await
}

/// Get one root key of the caller's tenant.
#[utoipa::path(
    get, path = "/v1/root-keys/{id}", tag = "root-keys", operation_id = "GetRootKey",
    params(("id" = String, Path, description = "Root key id (UUID)")),
    responses(
        (status = 200, description = "The root key", body = RootKey),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such root key in the caller's tenant", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_root_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::GetRootKey, id, request, async |call, id| {
        ok(call.service.get_root_key(call.caller, &id).await?.to_wire())
    })
    .await
}

/// The three routes of the kill switch differ only in their change and their words:
/// one definition makes each handler, its OpenAPI description included.
macro_rules! state_change_route {
    (
        $(#[doc = $doc:literal])+
        $handler:ident: $change:ident at $path:literal as $operation:literal, ok = $done:literal
    ) => {
        $(#[doc = $doc])+
        #[utoipa::path(
            post, path = $path, tag = "root-keys", operation_id = $operation,
            params(("id" = String, Path, description = "Root key id (UUID)"), StateChangeParams),
            responses(
                (status = 200, description = $done, body = RootKeyImpactBody),
                (status = 403, description = "Caller may not manage root keys", body = ErrorBody),
                (status = 404, description = "No such root key in the caller's tenant", body = ErrorBody),
                (status = 409, description = "The root key's state does not allow it", body = ErrorBody),
                (status = 503, description = "Store unavailable", body = ErrorBody),
            )
        )]
        pub(crate) async fn $handler(
            State(api): State<RestApi>,
            id: PathParam,
            params: QueryParams<StateChangeParams>,
            request: Request,
        ) -> Response {
            api.serve_at(RootKeyChange::$change.op(), id, request, async |call, id| {
                let dry_run = query(params)?.dry_run;
                let change = RootKeyChange::$change;
                let impact = call.service.change_root_key_state(call.caller, &id, change, dry_run);
                ok(impact.await?.to_wire())
            })
            .await
        }
    };
}

state_change_route! {
    /// Enable a disabled or suspended root key: everything below it works again.
    enable_root_key: Enable at "/v1/root-keys/{id}/enable" as "EnableRootKey",
    ok = "Enabled (or, with dry_run, what enabling would restore)"
}

state_change_route! {
    /// The kill switch: disable a root key, so every system and key below it refuses
    /// every operation (on every node within the revocation bound).
    disable_root_key: Disable at "/v1/root-keys/{id}/disable" as "DisableRootKey",
    ok = "Disabled (or, with dry_run, what disabling would cut off)"
}

state_change_route! {
    /// Suspend a root key: everything below it may only decrypt.
    suspend_root_key: Suspend at "/v1/root-keys/{id}/suspend" as "SuspendRootKey",
    ok = "Suspended (or, with dry_run, what suspending would affect)"
}

state_change_route! {
    /// Mark a root key compromised (NIST SP 800-57): everything below it may only
    /// decrypt, to recover data, for good — it can never be enabled again.
    mark_root_key_compromised: MarkCompromised at "/v1/root-keys/{id}/compromise" as "MarkRootKeyCompromised",
    ok = "Marked compromised (or, with dry_run, what marking it would affect)"
}

/// Import parameters for bringing your own root key (tenant-admin): an RSA wrapping
/// public key and a single-use token that expires after 24 hours.
#[utoipa::path(
    post, path = "/v1/root-keys/import-parameters", tag = "root-keys",
    operation_id = "GetRootKeyImportParameters",
    request_body = RootKeyImportParametersRequest,
    responses(
        (status = 200, description = "Wrap your key material to this key", body = RootKeyImportParameters),
        (status = 400, description = "Unknown keystore or algorithm, a keystore that cannot import, too many open imports", body = ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = ErrorBody),
    )
)]
pub(crate) async fn import_parameters(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::GetRootKeyImportParameters, request, async |call| {
        let body: RootKeyImportParametersRequest = call.json()?;
        let params = call
            .service
            .root_key_import_parameters(
                call.caller,
                body.keystore.as_deref(),
                body.wrapping_algorithm
                    .as_deref()
                    .unwrap_or("RSAES_OAEP_SHA_256"),
                body.wrapping_key_spec.as_deref().unwrap_or("RSA_3072"),
            )
            .await?;
        ok(params.to_wire())
    })
    .await
}

/// Import your own AES-256 key material as a root key (BYOK): the material, wrapped
/// to the import parameters' public key, is unwrapped and stored in the keystore as
/// non-extractable. The token is used up whatever the outcome.
#[utoipa::path(
    post, path = "/v1/root-keys/import", tag = "root-keys", operation_id = "ImportRootKey",
    request_body = ImportRootKeyRequest,
    responses(
        (status = 201, description = "Root key imported", body = RootKey),
        (status = 400, description = "Unknown, used or expired token; material that does not unwrap to 32 bytes", body = ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn import_root_key(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::ImportRootKey, request, async |call| {
        use base64::Engine as _;
        let body: ImportRootKeyRequest = call.json()?;
        let wrapped = base64::engine::general_purpose::STANDARD
            .decode(body.wrapped_key_material.trim())
            .map_err(|_| RestError::invalid_input("wrapped_key_material is not base64"))?;
        let info = call
            .service
            .import_root_key(
                call.caller,
                &body.import_token,
                &wrapped,
                body.description.as_deref().unwrap_or_default(),
            )
            .await?;
        created(info.to_wire())
    })
    .await
}

/// Hold your own key (HYOK): make a key that already lives in a keystore, and stays
/// yours there, a root key. kcm keeps only a reference; every unwrap below it calls
/// the keystore, and revoking the key there cuts everything below off.
#[utoipa::path(
    post, path = "/v1/root-keys/reference", tag = "root-keys", operation_id = "ReferenceRootKey",
    request_body = ReferenceRootKeyRequest,
    responses(
        (status = 201, description = "The key is now a root key (origin external)", body = RootKey),
        (status = 400, description = "Unknown keystore, a keystore that cannot refer, or a key that is missing, ambiguous, not AES-256 or not usable to encrypt and decrypt", body = ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = ErrorBody),
        (status = 409, description = "That key is already a root key of the tenant", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn reference_root_key(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::ReferenceRootKey, request, async |call| {
        let body: ReferenceRootKeyRequest = call.json()?;
        let info = call
            .service
            .reference_root_key(
                call.caller,
                body.keystore.as_deref(),
                &body.reference,
                body.description.as_deref().unwrap_or_default(),
            )
            .await?;
        created(info.to_wire())
    })
    .await
}

/// Rotate a generated root key: new material in the same keystore re-wraps every
/// system key below it (one commit); the old material is then destroyed. The root
/// key keeps its id; nothing below the system keys changes.
#[utoipa::path(
    post, path = "/v1/root-keys/{id}/rotate", tag = "root-keys", operation_id = "RotateRootKey",
    params(("id" = String, Path, description = "Root key id (UUID)")),
    responses(
        (status = 200, description = "Rotated; the systems below it", body = RootKeyImpactBody),
        (status = 400, description = "An imported or external root key (its material is the customer's)", body = ErrorBody),
        (status = 403, description = "Caller may not manage root keys", body = ErrorBody),
        (status = 404, description = "No such root key in the caller's tenant", body = ErrorBody),
        (status = 409, description = "The root key is not active", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn rotate_root_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::RotateRootKey, id, request, async |call, id| {
        let impact = call.service.rotate_root_key(call.caller, &id).await?;
        ok(impact.to_wire())
    })
    .await
}
