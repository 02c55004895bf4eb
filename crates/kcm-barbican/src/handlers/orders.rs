//! `/v1/orders`: symmetric keys and RSA key pairs, generated at once (see
//! [`crate::wire::order`] for what an order is here). Certificate orders are
//! refused.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use kcm_core::authz::Op;
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::ObjectKind;
use kcm_core::service::ObjectFilter;

use super::{json, json_at, list_body, no_content, on_order};
use crate::call::object_id;
use crate::error::{Action, BarbicanError};
use crate::paging::{NavLinks, Page};
use crate::wire::order::{NewOrderBody, OrderRef, OrderView};
use crate::BarbicanApi;

/// Barbican's names of what these routes do.
const CREATE: Action = on_order("Order creation");
const LIST: Action = on_order("Order(s) retrieval");
const GET: Action = on_order("Order retrieval");
const DELETE: Action = on_order("Order deletion");

/// The 404 of an object that is no order (worded by `serve` as the action's).
fn no_order() -> BarbicanError {
    Error::not_found("not an order").into()
}

/// `POST /v1/orders`: 202 with `order_ref`; the order is complete already.
pub(crate) async fn create(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::CreateObject, CREATE, request, async |call| {
        let what = call.json::<NewOrderBody>()?.into_generate()?;
        let made = call
            .service
            .generate_object(call.caller, call.system, what)
            .await?;
        // The key, or the key pair's container (the core returns it first).
        let order = made
            .first()
            .ok_or_else(|| BarbicanError::from(Error::internal("an order made nothing")))?;
        let url = call.refs.order(order.id);
        json_at(
            StatusCode::ACCEPTED,
            &url,
            OrderRef {
                order_ref: url.clone(),
            },
        )
    })
    .await
}

/// `GET /v1/orders/{id}`: `ACTIVE`, with its `secret_ref` or `container_ref`.
pub(crate) async fn get(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, GET, request, async |call| {
        let id = object_id(&id)?;
        let info = call.service.get_object(call.caller, id).await?;
        let view = OrderView::of(&info, &call.refs).ok_or_else(no_order)?;
        json(StatusCode::OK, view)
    })
    .await
}

/// `DELETE /v1/orders/{id}`: 204. Deleting an order in Barbican leaves what it
/// made; here the order is what it made, so nothing is deleted — the caller's
/// access is checked, and an order whose key pair container is gone already is
/// deleted already (castellan deletes that container, then the order).
pub(crate) async fn delete(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, DELETE, request, async |call| {
        let id = object_id(&id)?;
        match call.service.get_object(call.caller, id).await {
            Ok(info) => OrderView::of(&info, &call.refs)
                .map(drop)
                .ok_or_else(no_order)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        no_content()
    })
    .await
}

/// `GET /v1/orders`: the project's key orders, oldest first. Key pairs' orders
/// are not listed (one list call cannot reach both keys and containers), and
/// `total` counts the project's symmetric keys, of which key orders are a part.
pub(crate) async fn list(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::ListObjects, LIST, request, async |call| {
        let query = call.query();
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let page = Page::read(get("offset"), get("limit"));
        let filter = ObjectFilter {
            kind: Some(ObjectKind::SymmetricKey),
            offset: page.offset,
            limit: page.limit,
            ..ObjectFilter::default()
        };
        let found = call
            .service
            .list_objects(call.caller, call.system, &filter)
            .await?;
        let views: Vec<OrderView> = found
            .objects
            .iter()
            .filter_map(|info| OrderView::of(info, &call.refs))
            .collect();
        let links = NavLinks::around(
            &call.refs.v1("orders"),
            page,
            found.total,
            found.objects.len(),
        );
        json(
            StatusCode::OK,
            list_body("orders", views, found.total, links),
        )
    })
    .await
}
