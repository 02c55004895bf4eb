//! One handler per route, each the translation of its route onto one
//! [`kcm_core::service::Service`] call: parse the JSON, call, shape the answer.
//! Reading, authenticating, auditing and counting the request are the request
//! path's ([`RestApi::serve`](crate::RestApi)); every decision (authorisation,
//! validation, lifecycle) is the core's.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_api_types::*;
use kcm_core::authz::Op;
use kcm_core::model::{CredentialKind, Role, ALL_ROLES};
use kcm_core::service::NewSystem;
use kcm_frontdoor::Requested;

use crate::call::{created, ok, query, PathParam, QueryParams};
use crate::error::{code, ErrorBody, RestError};
use crate::wire::ToWire;
use crate::RestApi;

// ---------------------------------------------------------------- tenants

/// Create a tenant (system-admin only).
///
/// Creates the tenant with its own root key, a `default` system and a first
/// tenant-admin access key, whose secret is returned only in this response.
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants", operation_id = "CreateTenant",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Tenant created", body = CreateTenantResponse),
        (status = 400, description = "Invalid name or body", body = ErrorBody),
        (status = 403, description = "Caller is not system-admin", body = ErrorBody),
        (status = 409, description = "A tenant with this name exists", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn create_tenant(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::CreateTenant, request, async |call| {
        let body: CreateTenantRequest = call.json()?;
        created(
            call.service
                .create_tenant(call.caller, &body.name)
                .await?
                .to_wire(),
        )
    })
    .await
}

/// List every tenant (system-admin only).
#[utoipa::path(
    get, path = "/v1/tenants", tag = "tenants", operation_id = "ListTenants",
    responses(
        (status = 200, description = "All tenants", body = TenantList),
        (status = 403, description = "Caller is not system-admin", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list_tenants(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::ListTenants, request, async |call| {
        ok(call.service.list_tenants(call.caller).await?.to_wire())
    })
    .await
}

/// Get one tenant by id or name.
///
/// The operator sees every tenant; a tenant's access key sees only its own tenant.
#[utoipa::path(
    get, path = "/v1/tenants/{id_or_name}", tag = "tenants", operation_id = "GetTenant",
    params(("id_or_name" = String, Path, description = "Tenant id (UUID) or name")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such tenant (or not visible)", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_tenant(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::GetTenant, id, request, async |call, id| {
        ok(call.service.get_tenant(call.caller, &id).await?.to_wire())
    })
    .await
}

// ---------------------------------------------------------------- access keys

fn parse_role(name: &str) -> Result<Role, RestError> {
    Role::parse(name).ok_or_else(|| {
        let valid: Vec<&str> = ALL_ROLES.iter().map(|r| r.as_str()).collect();
        RestError::invalid_input(format!(
            "unknown role {name:?}: valid roles are {}",
            valid.join(", ")
        ))
    })
}

/// The kind a create request asks for (`sigv4` when it names none).
fn parse_credential_kind(kind: Option<&str>) -> Result<CredentialKind, RestError> {
    match kind {
        None => Ok(CredentialKind::SigV4),
        Some(name) => CredentialKind::parse(name).ok_or_else(|| {
            RestError::invalid_input(format!("kind {name:?} is not one of: sigv4, xks, vault"))
        }),
    }
}

/// The system an XKS access key is for: such a key is a key-user of one system,
/// limited to the XKS operations, which the request cannot change.
fn xks_key_request(role: Role, body: &CreateAccessKeyRequest) -> Result<&str, RestError> {
    if role != Role::KeyUser {
        return Err(RestError::invalid_input(
            "an access key of kind xks has role key-user",
        ));
    }
    if body.operations.is_some() {
        return Err(RestError::invalid_input(
            "an access key of kind xks may call the XKS operations only: omit operations",
        ));
    }
    body.system.as_deref().ok_or_else(|| {
        RestError::invalid_input(
            "an access key of kind xks needs system: the kcm system that serves one external key store of AWS KMS",
        )
    })
}

/// Create an access key in the caller's tenant (tenant-admin).
///
/// The secret access key is returned only in this response.
#[utoipa::path(
    post, path = "/v1/access-keys", tag = "access-keys", operation_id = "CreateAccessKey",
    request_body = CreateAccessKeyRequest,
    responses(
        (status = 201, description = "Access key created; the secret is shown once", body = CreatedAccessKey),
        (status = 400, description = "Unknown role, invalid description or body", body = ErrorBody),
        (status = 403, description = "Caller may not manage access keys, or the new key's role, operations or system scope would exceed its own", body = ErrorBody),
        (status = 404, description = "The named system does not exist", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn create_access_key(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::CreateAccessKey, request, async |call| {
        let body: CreateAccessKeyRequest = call.json()?;
        let role = parse_role(&body.role)?;
        let description = body.description.clone().unwrap_or_default();
        let new = match parse_credential_kind(body.kind.as_deref())? {
            CredentialKind::SigV4 => {
                call.service
                    .create_access_key(
                        call.caller,
                        role,
                        body.system.as_deref(),
                        body.operations.as_deref(),
                        description,
                    )
                    .await?
            }
            CredentialKind::Xks => {
                let system = xks_key_request(role, &body)?;
                call.service
                    .create_xks_access_key(call.caller, system, description)
                    .await?
            }
            CredentialKind::Vault => {
                let system = body.system.as_deref().ok_or_else(|| {
                    RestError::invalid_input(
                        "an access key of kind vault needs system: a Vault token acts in one kcm system",
                    )
                })?;
                call.service
                    .create_vault_token(
                        call.caller,
                        system,
                        role,
                        body.operations.as_deref(),
                        description,
                    )
                    .await?
            }
        };
        created(new.to_wire())
    })
    .await
}

/// List the access keys of the caller's tenant (never with secrets).
#[utoipa::path(
    get, path = "/v1/access-keys", tag = "access-keys", operation_id = "ListAccessKeys",
    responses(
        (status = 200, description = "Access keys, without secrets", body = AccessKeyList),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list_access_keys(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::ListAccessKeys, request, async |call| {
        ok(call.service.list_access_keys(call.caller).await?.to_wire())
    })
    .await
}

async fn set_enabled(
    api: RestApi,
    operation: Op,
    id: PathParam,
    request: Request,
    enabled: bool,
) -> Response {
    api.serve_at(operation, id, request, async |call, id| {
        let info = call
            .service
            .set_access_key_enabled(call.caller, &id, enabled);
        ok(info.await?.to_wire())
    })
    .await
}

/// Disable an access key of the caller's tenant; it is refused from then on.
#[utoipa::path(
    post, path = "/v1/access-keys/{id}/disable", tag = "access-keys", operation_id = "DisableAccessKey",
    params(("id" = String, Path, description = "Access key id")),
    responses(
        (status = 200, description = "The access key, now disabled", body = AccessKey),
        (status = 400, description = "A key cannot disable itself", body = ErrorBody),
        (status = 403, description = "Caller may not manage access keys", body = ErrorBody),
        (status = 404, description = "No such access key in the tenant", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn disable_access_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    set_enabled(api, Op::DisableAccessKey, id, request, false).await
}

/// Enable an access key of the caller's tenant.
#[utoipa::path(
    post, path = "/v1/access-keys/{id}/enable", tag = "access-keys", operation_id = "EnableAccessKey",
    params(("id" = String, Path, description = "Access key id")),
    responses(
        (status = 200, description = "The access key, now enabled", body = AccessKey),
        (status = 403, description = "Caller may not manage access keys", body = ErrorBody),
        (status = 404, description = "No such access key in the tenant", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn enable_access_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    set_enabled(api, Op::EnableAccessKey, id, request, true).await
}

/// Delete an access key of the caller's tenant.
#[utoipa::path(
    delete, path = "/v1/access-keys/{id}", tag = "access-keys", operation_id = "DeleteAccessKey",
    params(("id" = String, Path, description = "Access key id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A key cannot delete itself", body = ErrorBody),
        (status = 403, description = "Caller may not manage access keys", body = ErrorBody),
        (status = 404, description = "No such access key in the tenant", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn delete_access_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::DeleteAccessKey, id, request, async |call, id| {
        call.service.delete_access_key(call.caller, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

// ---------------------------------------------------------------- systems

/// Register a system in the caller's tenant (tenant-admin).
///
/// The system gets a fresh system key wrapped by the root key named (default: the
/// tenant's default root key), or, with `"link": false`, none until it is linked.
#[utoipa::path(
    post, path = "/v1/systems", tag = "systems", operation_id = "CreateSystem",
    request_body = CreateSystemRequest,
    responses(
        (status = 201, description = "System created", body = System),
        (status = 400, description = "Invalid name, kind, description, region, labels or body", body = ErrorBody),
        (status = 403, description = "Caller may not manage systems", body = ErrorBody),
        (status = 404, description = "The named root key does not exist in the caller's tenant", body = ErrorBody),
        (status = 409, description = "A system with this name exists, or the root key is not active", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn create_system(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::CreateSystem, request, async |call| {
        let body: CreateSystemRequest = call.json()?;
        let new = NewSystem {
            name: body.name,
            kind: body.kind.unwrap_or_else(|| DEFAULT_SYSTEM_KIND.into()),
            description: body.description.unwrap_or_default(),
            region: body.region.unwrap_or_default(),
            labels: body.labels.unwrap_or_default(),
            link: body.link.unwrap_or(true),
            root_key: body.root_key_id,
        };
        created(
            call.service
                .create_system(call.caller, &new)
                .await?
                .to_wire(),
        )
    })
    .await
}

/// List the systems of the caller's tenant (a scoped key sees only its system).
#[utoipa::path(
    get, path = "/v1/systems", tag = "systems", operation_id = "ListSystems",
    responses(
        (status = 200, description = "Systems", body = SystemList),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list_systems(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::ListSystems, request, async |call| {
        ok(call.service.list_systems(call.caller).await?.to_wire())
    })
    .await
}

/// Get one system of the caller's tenant by id or name.
#[utoipa::path(
    get, path = "/v1/systems/{id_or_name}", tag = "systems", operation_id = "GetSystem",
    params(("id_or_name" = String, Path, description = "System id (UUID) or name")),
    responses(
        (status = 200, description = "The system", body = System),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such system", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_system(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::GetSystem, id, request, async |call, id| {
        ok(call.service.get_system(call.caller, &id).await?.to_wire())
    })
    .await
}

/// Link a system to another root key of the tenant (tenant-admin).
///
/// Every version of its system key is re-wrapped by the new root key; no service key
/// or ciphertext changes, so everything encrypted before still decrypts.
#[utoipa::path(
    post, path = "/v1/systems/{id_or_name}/switch-root-key", tag = "systems",
    operation_id = "SwitchSystemRootKey",
    params(("id_or_name" = String, Path, description = "System id (UUID) or name")),
    request_body = SwitchRootKeyRequest,
    responses(
        (status = 200, description = "The system, now below the new root key", body = System),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 403, description = "Caller may not manage systems", body = ErrorBody),
        (status = 404, description = "No such system or root key in the caller's tenant", body = ErrorBody),
        (status = 409, description = "A root key involved is not active", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn switch_system_root_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::SwitchSystemRootKey, id, request, async |call, id| {
        let body: SwitchRootKeyRequest = call.json()?;
        let info = call
            .service
            .switch_system_root(call.caller, &id, &body.root_key_id);
        ok(info.await?.to_wire())
    })
    .await
}

/// Link an unlinked system to a root key of the tenant (tenant-admin): a fresh
/// system key, wrapped by that root key, becomes its next version.
#[utoipa::path(
    post, path = "/v1/systems/{id_or_name}/link", tag = "systems",
    operation_id = "LinkSystem",
    params(("id_or_name" = String, Path, description = "System id (UUID) or name")),
    request_body = LinkSystemRequest,
    responses(
        (status = 200, description = "The system, now linked", body = System),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 403, description = "Caller may not manage systems", body = ErrorBody),
        (status = 404, description = "No such system or root key in the caller's tenant", body = ErrorBody),
        (status = 409, description = "Already linked, or the root key is not active", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn link_system(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::LinkSystem, id, request, async |call, id| {
        let body: LinkSystemRequest = call.json()?;
        let info = call
            .service
            .link_system(call.caller, &id, body.root_key_id.as_deref());
        ok(info.await?.to_wire())
    })
    .await
}

/// Unlink a system from its root key (tenant-admin): every version of its system
/// key is erased. Refused while it holds service keys that are not deleted.
#[utoipa::path(
    post, path = "/v1/systems/{id_or_name}/unlink", tag = "systems",
    operation_id = "UnlinkSystem",
    params(("id_or_name" = String, Path, description = "System id (UUID) or name")),
    responses(
        (status = 200, description = "The system, now unlinked", body = System),
        (status = 403, description = "Caller may not manage systems", body = ErrorBody),
        (status = 404, description = "No such system in the caller's tenant", body = ErrorBody),
        (status = 409, description = "Not linked, or it still holds service keys", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn unlink_system(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::UnlinkSystem, id, request, async |call, id| {
        let system = call.service.unlink_system(call.caller, &id).await?;
        ok(system.to_wire())
    })
    .await
}

/// Start rotating a system's key (tenant-admin): a fresh system key version becomes
/// active at once; then call `…/rewrap` until `remaining` is 0.
#[utoipa::path(
    post, path = "/v1/systems/{id_or_name}/rotate-key", tag = "systems",
    operation_id = "RotateSystemKey",
    params(("id_or_name" = String, Path, description = "System id (UUID) or name")),
    responses(
        (status = 200, description = "Rotation started", body = SystemKeyRotationBody),
        (status = 403, description = "Caller may not manage systems", body = ErrorBody),
        (status = 404, description = "No such system", body = ErrorBody),
        (status = 409, description = "An earlier rotation is not finished, or the root key is not active", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn rotate_system_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::RotateSystemKey, id, request, async |call, id| {
        let rotation = call.service.rotate_system_key(call.caller, &id).await?;
        ok(rotation.to_wire())
    })
    .await
}

/// Re-wrap up to `limit` of a system's key versions that an older system key
/// version still wraps (one commit); when none is left, the older versions are erased.
#[utoipa::path(
    post, path = "/v1/systems/{id_or_name}/rewrap", tag = "systems",
    operation_id = "RewrapSystemKeys",
    params(("id_or_name" = String, Path, description = "System id (UUID) or name"), RewrapParams),
    responses(
        (status = 200, description = "Progress", body = SystemKeyRotationBody),
        (status = 400, description = "Bad limit", body = ErrorBody),
        (status = 403, description = "Caller may not manage systems", body = ErrorBody),
        (status = 404, description = "No such system", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn rewrap_system_keys(
    State(api): State<RestApi>,
    id: PathParam,
    params: QueryParams<RewrapParams>,
    request: Request,
) -> Response {
    api.serve_at(Op::RewrapSystemKeys, id, request, async |call, id| {
        let limit = query(params)?.limit;
        let rotation = call.service.rewrap_system_keys(call.caller, &id, limit);
        ok(rotation.await?.to_wire())
    })
    .await
}

// ---------------------------------------------------------------- keychain

/// The caller's keychain: root keys → systems → service keys.
#[utoipa::path(
    get, path = "/v1/keychain", tag = "keychain", operation_id = "GetKeychain",
    responses(
        (status = 200, description = "The tenant's keychain", body = Keychain),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn keychain(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::GetKeychain, request, async |call| {
        ok(call.service.keychain(call.caller).await?.to_wire())
    })
    .await
}

// ---------------------------------------------------------------- backup

/// Download a backup archive of the whole store (system-admin only).
///
/// A consistent snapshot of every table, taken without stopping the server, in
/// one encrypted, integrity-protected archive whose key is wrapped by the
/// service's root key. It holds only wrapped material: restoring it
/// (`kcm restore`, offline) needs the keystore — the software keystore's master key
/// file or passphrase. The archive is built in memory and sent with its length.
#[utoipa::path(
    get, path = "/v1/backup", tag = "backup", operation_id = "GetBackup",
    responses(
        (status = 200, description = "The backup archive (format KCMBAK1)",
         content_type = "application/octet-stream", body = crate::BackupArchiveBody,
         headers(
             ("Content-Length" = u64, description = "Archive size in bytes"),
             ("Content-Disposition" = String, description = "attachment; filename=\"kcm-backup-<unix ms>.kcmbak\""),
         )),
        (status = 403, description = "Caller is not system-admin", body = ErrorBody),
        (status = 503, description = "Store or keystore unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn backup(State(api): State<RestApi>, request: Request) -> Response {
    api.serve(Op::GetBackup, request, async |call| {
        let archive = call.service.backup(call.caller).await?;
        let disposition = format!(
            "attachment; filename=\"kcm-backup-{}.kcmbak\"",
            archive.created_at
        );
        let length = archive.bytes.len().to_string();
        Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, length),
                (header::CONTENT_DISPOSITION, disposition),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            archive.bytes,
        )
            .into_response())
    })
    .await
}

// ---------------------------------------------------------------- meta

/// This API's OpenAPI document (no authentication).
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "meta", operation_id = "GetOpenApi",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json(State(api): State<RestApi>) -> Response {
    // Public and unauthenticated, like /health: counted, not audited.
    let started = Instant::now();
    let response = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi_json().clone(),
    )
        .into_response();
    api.front
        .metrics()
        .record(crate::DOOR.name, "GetOpenApi", 200, started.elapsed());
    response
}

/// Any path under `/v1` that no route serves.
pub(crate) async fn unknown_path(State(api): State<RestApi>, request: Request) -> Response {
    let message = format!(
        "no such API path: {} {}; see /v1/openapi.json",
        request.method(),
        request.uri().path()
    );
    api.refuse(
        Requested::Unrecognised("UnknownPath"),
        request,
        RestError::not_found(message),
    )
    .await
}

/// A known path called with a method it does not serve.
pub(crate) async fn method_not_allowed(State(api): State<RestApi>, request: Request) -> Response {
    let message = format!(
        "{} is not allowed on {}; see /v1/openapi.json",
        request.method(),
        request.uri().path()
    );
    let error = RestError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        message,
    );
    api.refuse(Requested::Unrecognised("MethodNotAllowed"), request, error)
        .await
}
