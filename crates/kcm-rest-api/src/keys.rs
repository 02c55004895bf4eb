//! `/v1/keys`: the lifecycle changes of a service key that the AWS KMS API has no
//! words for. Everything else about service keys is on the AWS API.

use axum::extract::{Request, State};
use axum::response::Response;
use kcm_api_types::*;
use kcm_core::authz::Op;
use kcm_core::model::KeyId;
use kcm_core::service::KeyRef;

use crate::call::{ok, PathParam};
use crate::error::{ErrorBody, RestError};
use crate::wire::ToWire;
use crate::RestApi;

/// The key a path names: a key id, or an alias (`alias%2Fname` in the path).
fn key_ref(id: &str) -> Result<KeyRef, RestError> {
    if id.starts_with("alias/") {
        return Ok(KeyRef::Alias(id.to_string()));
    }
    KeyId::parse(id)
        .map(KeyRef::Id)
        .ok_or_else(|| RestError::not_found(format!("key {id} does not exist")))
}

/// Mark a service key compromised (NIST SP 800-57): from now on it only decrypts and
/// verifies, so that data can be recovered and re-protected under another key; every
/// audit record naming it says so, and it never becomes usable again. A scheduled
/// deletion is cancelled.
#[utoipa::path(
    post, path = "/v1/keys/{key}/compromise", tag = "keys", operation_id = "MarkKeyCompromised",
    params(("key" = String, Path, description = "Key id (UUID), or an alias as `alias%2Fname`")),
    responses(
        (status = 200, description = "The key, now compromised", body = ServiceKey),
        (status = 403, description = "Caller may not manage keys", body = ErrorBody),
        (status = 404, description = "No such key in the caller's tenant", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn mark_key_compromised(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::MarkKeyCompromised, id, request, async |call, id| {
        let key = key_ref(&id)?;
        ok(call
            .service
            .mark_key_compromised(call.caller, &key)
            .await?
            .to_wire())
    })
    .await
}

/// Destroy a compromised service key at once: its material, aliases and grants are
/// erased and it becomes `destroyed-compromised`; its metadata stays for audit.
/// Only a compromised key is destroyed this way (others wait out a deletion window
/// on the AWS API's ScheduleKeyDeletion).
#[utoipa::path(
    post, path = "/v1/keys/{key}/destroy", tag = "keys", operation_id = "DestroyCompromisedKey",
    params(("key" = String, Path, description = "Key id (UUID), or an alias as `alias%2Fname`")),
    responses(
        (status = 200, description = "The key, now destroyed-compromised", body = ServiceKey),
        (status = 403, description = "Caller may not manage keys", body = ErrorBody),
        (status = 404, description = "No such key in the caller's tenant", body = ErrorBody),
        (status = 409, description = "The key is not compromised", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn destroy_compromised_key(
    State(api): State<RestApi>,
    id: PathParam,
    request: Request,
) -> Response {
    api.serve_at(Op::DestroyCompromisedKey, id, request, async |call, id| {
        let key = key_ref(&id)?;
        ok(call
            .service
            .destroy_compromised_key(call.caller, &key)
            .await?
            .to_wire())
    })
    .await
}
