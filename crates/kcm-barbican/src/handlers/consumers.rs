//! Consumers: `/v1/secrets/{id}/consumers` (service, resource type and id;
//! microversion 1.1) and `/v1/containers/{id}/consumers` (name and URL).
//! Registering or removing one answers with the object, as Barbican does; listing
//! pages through them.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use kcm_core::authz::Op;
use kcm_core::model::ObjectId;
use kcm_core::service::ObjectChange;

use super::{container, json, json_at, list_body, on_container, on_secret, secret};
use crate::call::{object_id, Accepted};
use crate::error::Action;
use crate::paging::{NavLinks, Page};
use crate::wire::consumer::{ConsumerEntry, ContainerConsumerView};
use crate::wire::container::ContainerView;
use crate::wire::secret::SecretView;
use crate::wire::ConsumerView;
use crate::BarbicanApi;

/// Barbican's names of what these routes do.
const LIST_SECRET: Action = on_secret("Secret consumers retrieval");
const ADD_SECRET: Action = on_secret("Secret consumer creation");
const REMOVE_SECRET: Action = on_secret("Secret consumer deletion");
const LIST_CONTAINER: Action = on_container("ContainerConsumers(s) retrieval");
const ADD_CONTAINER: Action = on_container("ContainerConsumer creation");
const REMOVE_CONTAINER: Action = on_container("ContainerConsumer deletion");

/// The `Location` Barbican answers a new consumer with: `/v1/consumers/<object
/// id>/consumers`, a path it does not serve; clients ignore it, and it is kept as
/// Barbican sends it.
fn consumers_location(call: &Accepted<'_>, id: ObjectId) -> String {
    call.refs.v1(&format!("consumers/{id}/consumers"))
}

/// The paging values of a consumers query.
fn page_of(query: &[(String, String)]) -> Page {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    Page::read(get("offset"), get("limit"))
}

/// `GET /v1/secrets/{id}/consumers`.
pub(crate) async fn list_secret_consumers(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, LIST_SECRET, request, async |call| {
        let id = object_id(&id)?;
        let page = page_of(&call.query());
        let info = secret(call.service.get_object(call.caller, id).await?)?;
        let all: Vec<_> = info
            .attributes
            .consumers
            .iter()
            .map(ConsumerView::plain)
            .collect();
        let shown: Vec<_> = all
            .iter()
            .skip(page.offset)
            .take(page.limit)
            .map(|c| ConsumerEntry::new(&info, c))
            .collect();
        let url = format!("{}/consumers", call.refs.secret(id));
        let links = NavLinks::around(&url, page, all.len(), shown.len());
        json(
            StatusCode::OK,
            list_body("consumers", shown, all.len(), links),
        )
    })
    .await
}

/// `POST /v1/secrets/{id}/consumers`: 200 with the secret.
pub(crate) async fn add_secret_consumer(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, ADD_SECRET, request, async |call| {
        let id = object_id(&id)?;
        let consumer = call.json::<ConsumerView>()?.into_consumer()?;
        let info = call
            .service
            .update_object(call.caller, id, ObjectChange::AddConsumer(consumer))
            .await?;
        json_at(
            StatusCode::OK,
            &consumers_location(&call, id),
            SecretView::new(&secret(info)?, &call.refs, call.version),
        )
    })
    .await
}

/// `DELETE /v1/secrets/{id}/consumers` (the consumer in the body): 200 with the
/// secret.
pub(crate) async fn remove_secret_consumer(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, REMOVE_SECRET, request, async |call| {
        let id = object_id(&id)?;
        let consumer = call.json::<ConsumerView>()?.into_consumer()?;
        let info = call
            .service
            .update_object(call.caller, id, ObjectChange::RemoveConsumer(consumer))
            .await?;
        json(
            StatusCode::OK,
            SecretView::new(&secret(info)?, &call.refs, call.version),
        )
    })
    .await
}

/// `GET /v1/containers/{id}/consumers`.
pub(crate) async fn list_container_consumers(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, LIST_CONTAINER, request, async |call| {
        let id = object_id(&id)?;
        let page = page_of(&call.query());
        let info = container(call.service.get_object(call.caller, id).await?)?;
        let all: Vec<_> = info
            .attributes
            .consumers
            .iter()
            .filter_map(ContainerConsumerView::of)
            .collect();
        let shown: Vec<_> = all
            .iter()
            .skip(page.offset)
            .take(page.limit)
            .map(|c| ConsumerEntry::new(&info, c))
            .collect();
        let url = format!("{}/consumers", call.refs.container(id));
        let links = NavLinks::around(&url, page, all.len(), shown.len());
        json(
            StatusCode::OK,
            list_body("consumers", shown, all.len(), links),
        )
    })
    .await
}

/// `POST /v1/containers/{id}/consumers`: 200 with the container.
pub(crate) async fn add_container_consumer(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, ADD_CONTAINER, request, async |call| {
        let id = object_id(&id)?;
        let consumer = call.json::<ContainerConsumerView>()?.into_consumer()?;
        let info = call
            .service
            .update_object(call.caller, id, ObjectChange::AddConsumer(consumer))
            .await?;
        json_at(
            StatusCode::OK,
            &consumers_location(&call, id),
            ContainerView::new(&container(info)?, &call.refs),
        )
    })
    .await
}

/// `DELETE /v1/containers/{id}/consumers` (the consumer in the body): 200 with
/// the container.
pub(crate) async fn remove_container_consumer(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, REMOVE_CONTAINER, request, async |call| {
        let id = object_id(&id)?;
        let consumer = call.json::<ContainerConsumerView>()?.into_consumer()?;
        let info = call
            .service
            .update_object(call.caller, id, ObjectChange::RemoveConsumer(consumer))
            .await?;
        json(
            StatusCode::OK,
            ContainerView::new(&container(info)?, &call.refs),
        )
    })
    .await
}
