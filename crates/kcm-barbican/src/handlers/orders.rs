//! `/v1/orders`: symmetric keys and RSA key pairs, generated at once (see
//! [`crate::wire::order`] for what an order is here). Certificate orders are
//! refused.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use kcm_core::authz::Op;
use kcm_core::model::ObjectKind;
use kcm_core::service::ObjectFilter;

use super::{json, json_at, list_body, no_content};
use crate::call::object_id;
use crate::error::BarbicanError;
use crate::paging::{NavLinks, Page};
use crate::wire::order::{NewOrderBody, OrderRef, OrderView};
use crate::BarbicanApi;

/// Barbican's 404 for an order.
fn order_not_found() -> BarbicanError {
    BarbicanError::not_found("Not Found. Sorry but your order is in another castle.")
}

/// `POST /v1/orders`: 202 with `order_ref`; the order is complete already.
pub(crate) async fn create(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::CreateObject, request, async |call| {
        let what = call.json::<NewOrderBody>()?.into_generate()?;
        let made = call
            .service
            .generate_object(call.caller, call.system, what)
            .await?;
        // The key, or the key pair's container (the core returns it first).
        let order = made.first().ok_or_else(|| {
            BarbicanError::from(kcm_core::error::Error::internal("an order made nothing"))
        })?;
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
    api.serve(Op::GetObject, request, async |call| {
        let id = object_id(&id, "order")?;
        let info = call.service.get_object(call.caller, id).await?;
        let view = OrderView::of(&info, &call.refs).ok_or_else(order_not_found)?;
        json(StatusCode::OK, view)
    })
    .await
}

/// `DELETE /v1/orders/{id}`: 204. Deleting an order in Barbican leaves what it
/// made; here the order is what it made, so nothing is deleted — the order is only
/// checked to exist (and to be readable by the caller).
pub(crate) async fn delete(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, request, async |call| {
        let id = object_id(&id, "order")?;
        let info = call.service.get_object(call.caller, id).await?;
        OrderView::of(&info, &call.refs).ok_or_else(order_not_found)?;
        no_content()
    })
    .await
}

/// `GET /v1/orders`: the project's key orders, oldest first. Key pairs' orders
/// are not listed (one list call cannot reach both keys and containers), and
/// `total` counts the project's symmetric keys, of which key orders are a part.
pub(crate) async fn list(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::ListObjects, request, async |call| {
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
