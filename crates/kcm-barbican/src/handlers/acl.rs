//! `/v1/secrets/{id}/acl` and `/v1/containers/{id}/acl`: read ACLs. Reading one
//! needs read access to the object; changing one is the core's `SetObjectAcl`
//! (key-admin work: Keystone `admin`).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kcm_core::authz::Op;
use kcm_core::model::ObjectAcl;
use kcm_core::service::{ObjectChange, ObjectInfo};

use super::{container, json, on_container, on_secret, secret};
use crate::call::{object_id, Accepted, Outcome};
use crate::error::{Action, BarbicanError};
use crate::wire::acl::{AclBody, AclRef, AclView};
use crate::BarbicanApi;

/// Which collection an ACL route is under.
#[derive(Clone, Copy, Debug)]
enum Under {
    Secrets,
    Containers,
}

impl Under {
    /// Barbican's name of reading (`None`) or changing an ACL here.
    fn action(self, change: Option<Change>) -> Action {
        let name = match (self, change) {
            (Under::Secrets, None) => "SecretACL(s) retrieval",
            (Under::Secrets, Some(Change::Reset)) => "SecretACL(s) deletion",
            (Under::Secrets, Some(_)) => "SecretACL(s) Update",
            (Under::Containers, None) => "ContainerACL(s) retrieval",
            (Under::Containers, Some(Change::Reset)) => "ContainerACL(s) deletion",
            (Under::Containers, Some(_)) => "ContainerACL(s) Update",
        };
        match self {
            Under::Secrets => on_secret(name),
            Under::Containers => on_container(name),
        }
    }

    /// `info` if it belongs under this collection.
    fn check(self, info: ObjectInfo) -> Result<ObjectInfo, BarbicanError> {
        match self {
            Under::Secrets => secret(info),
            Under::Containers => container(info),
        }
    }

    fn acl_ref(self, call: &Accepted<'_>, id: impl std::fmt::Display) -> String {
        let object = match self {
            Under::Secrets => call.refs.secret(id),
            Under::Containers => call.refs.container(id),
        };
        format!("{object}/acl")
    }
}

/// How a request changes an ACL.
#[derive(Clone, Copy, Debug)]
enum Change {
    Replace,
    Patch,
    Reset,
}

async fn get(api: &BarbicanApi, under: Under, id: String, request: Request) -> Response {
    api.serve(Op::GetObject, under.action(None), request, async |call| {
        let id = object_id(&id)?;
        let info = under.check(call.service.get_object(call.caller, id).await?)?;
        json(StatusCode::OK, AclView::new(&info))
    })
    .await
}

async fn set(
    api: &BarbicanApi,
    under: Under,
    change: Change,
    id: String,
    request: Request,
) -> Response {
    api.serve(
        Op::SetObjectAcl,
        under.action(Some(change)),
        request,
        async |call| -> Outcome {
            let id = object_id(&id)?;
            let acl = match change {
                Change::Replace => call.json::<AclBody>()?.replacement()?,
                Change::Patch => call.json::<AclBody>()?.patch()?,
                Change::Reset => ObjectAcl::default(),
            };
            call.service
                .update_object(call.caller, id, ObjectChange::SetAcl(acl))
                .await?;
            match change {
                Change::Reset => Ok(StatusCode::OK.into_response()),
                Change::Replace | Change::Patch => json(
                    StatusCode::OK,
                    AclRef {
                        acl_ref: under.acl_ref(&call, id),
                    },
                ),
            }
        },
    )
    .await
}

/// `GET /v1/secrets/{id}/acl`.
pub(crate) async fn get_secret_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    get(&api, Under::Secrets, id, request).await
}

/// `PUT /v1/secrets/{id}/acl`.
pub(crate) async fn put_secret_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    set(&api, Under::Secrets, Change::Replace, id, request).await
}

/// `PATCH /v1/secrets/{id}/acl`.
pub(crate) async fn patch_secret_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    set(&api, Under::Secrets, Change::Patch, id, request).await
}

/// `DELETE /v1/secrets/{id}/acl`: back to the default (project access, no users).
pub(crate) async fn delete_secret_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    set(&api, Under::Secrets, Change::Reset, id, request).await
}

/// `GET /v1/containers/{id}/acl`.
pub(crate) async fn get_container_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    get(&api, Under::Containers, id, request).await
}

/// `PUT /v1/containers/{id}/acl`.
pub(crate) async fn put_container_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    set(&api, Under::Containers, Change::Replace, id, request).await
}

/// `PATCH /v1/containers/{id}/acl`.
pub(crate) async fn patch_container_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    set(&api, Under::Containers, Change::Patch, id, request).await
}

/// `DELETE /v1/containers/{id}/acl`.
pub(crate) async fn delete_container_acl(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    set(&api, Under::Containers, Change::Reset, id, request).await
}
