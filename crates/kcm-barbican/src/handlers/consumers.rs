//! Consumers: `/v1/secrets/{id}/consumers` (service, resource type and id;
//! microversion 1.1) and `/v1/containers/{id}/consumers` (name and URL).
//! Registering or removing one answers with the object, as Barbican does; listing
//! pages through them.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use kcm_core::authz::Op;
use kcm_core::service::ObjectChange;

use super::{container, json, list_body, secret};
use crate::call::object_id;
use crate::paging::{NavLinks, Page};
use crate::wire::consumer::{ConsumerEntry, ContainerConsumerView};
use crate::wire::container::ContainerView;
use crate::wire::secret::SecretView;
use crate::wire::ConsumerView;
use crate::BarbicanApi;

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
    api.serve(Op::GetObject, request, async |call| {
        let id = object_id(&id, "secret")?;
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
    api.serve(Op::UpdateObject, request, async |call| {
        let id = object_id(&id, "secret")?;
        let consumer = call.json::<ConsumerView>()?.into_consumer()?;
        let info = call
            .service
            .update_object(call.caller, id, ObjectChange::AddConsumer(consumer))
            .await?;
        json(
            StatusCode::OK,
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
    api.serve(Op::UpdateObject, request, async |call| {
        let id = object_id(&id, "secret")?;
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
    api.serve(Op::GetObject, request, async |call| {
        let id = object_id(&id, "container")?;
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
    api.serve(Op::UpdateObject, request, async |call| {
        let id = object_id(&id, "container")?;
        let consumer = call.json::<ContainerConsumerView>()?.into_consumer()?;
        let info = call
            .service
            .update_object(call.caller, id, ObjectChange::AddConsumer(consumer))
            .await?;
        json(
            StatusCode::OK,
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
    api.serve(Op::UpdateObject, request, async |call| {
        let id = object_id(&id, "container")?;
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
