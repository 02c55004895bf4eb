//! `/v1/containers`: create (generic, rsa, certificate), list, read, delete.
//! Deleting a container leaves its secrets, as in Barbican.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use kcm_core::authz::Op;
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::ObjectLink;
use kcm_core::service::ObjectFilter;
use serde_json::json;

use super::{container, json, json_at, list_body, no_content, on_container};
use crate::call::object_id;
use crate::error::{Action, BarbicanError};
use crate::paging::{NavLinks, Page};
use crate::wire::container::{ContainerView, NewContainerBody};
use crate::BarbicanApi;

/// Barbican's names of what these routes do.
const CREATE: Action = on_container("Container creation");
const LIST: Action = on_container("Containers(s) retrieval");
const GET: Action = on_container("Container retrieval");
const DELETE: Action = on_container("Container deletion");

/// `POST /v1/containers`: 201 with `container_ref`.
pub(crate) async fn create(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::CreateObject, CREATE, request, async |call| {
        let new = call.json::<NewContainerBody>()?.into_object()?;
        let members = new.attributes.links.clone();
        let info = call
            .service
            .create_object(call.caller, call.system, new)
            .await
            .map_err(|e| missing_member(e, &members))?;
        let url = call.refs.container(info.id);
        json_at(StatusCode::CREATED, &url, json!({"container_ref": url}))
    })
    .await
}

/// A container member the caller cannot read is, as Barbican words it, a secret
/// that does not exist (404); the core names its id, which is mapped back to the
/// member's name.
fn missing_member(e: Error, members: &[ObjectLink]) -> BarbicanError {
    let missing = (e.kind() == ErrorKind::InvalidInput)
        .then(|| {
            members
                .iter()
                .find(|m| e.message().contains(&m.object.to_string()))
        })
        .flatten();
    match missing {
        Some(member) => BarbicanError::not_found(format!(
            "Secret provided for '{}' doesn't exist.",
            member.name
        )),
        None => e.into(),
    }
}

/// `GET /v1/containers`: a page of the project's containers, oldest first.
pub(crate) async fn list(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::ListObjects, LIST, request, async |call| {
        let query = call.query();
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if get("type").is_some() {
            return Err(BarbicanError::bad_request(
                "Filtering containers by 'type' is not supported by this key manager",
            ));
        }
        let page = Page::read(get("offset"), get("limit"));
        let filter = ObjectFilter {
            containers: true,
            name: get("name").filter(|n| !n.is_empty()).map(str::to_owned),
            offset: page.offset,
            limit: page.limit,
            ..ObjectFilter::default()
        };
        let found = call
            .service
            .list_objects(call.caller, call.system, &filter)
            .await?;
        let views: Vec<ContainerView> = found
            .objects
            .iter()
            .map(|info| ContainerView::new(info, &call.refs))
            .collect();
        let links = NavLinks::around(&call.refs.v1("containers"), page, found.total, views.len());
        json(
            StatusCode::OK,
            list_body("containers", views, found.total, links),
        )
    })
    .await
}

/// `GET /v1/containers/{id}`.
pub(crate) async fn get(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, GET, request, async |call| {
        let id = object_id(&id)?;
        let info = container(call.service.get_object(call.caller, id).await?)?;
        json(StatusCode::OK, ContainerView::new(&info, &call.refs))
    })
    .await
}

/// `DELETE /v1/containers/{id}`: 204.
pub(crate) async fn delete(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::DeleteObject, DELETE, request, async |call| {
        let id = object_id(&id)?;
        call.service.delete_object(call.caller, id).await?;
        no_content()
    })
    .await
}
