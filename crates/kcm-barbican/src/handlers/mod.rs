//! The routes: each handler translates its request onto one core call through
//! [`BarbicanApi::serve`](crate::BarbicanApi) and shapes Barbican's answer.

pub mod acl;
pub mod consumers;
pub mod containers;
pub mod meta;
pub mod metadata;
pub mod orders;
pub mod secrets;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kcm_core::model::ObjectKind;
use kcm_core::service::ObjectInfo;
use serde::Serialize;
use serde_json::{Map, Value};

use kcm_core::error::Error;

use crate::call::Outcome;
use crate::error::{Action, BarbicanError};
use crate::paging::NavLinks;

/// `status` with `body` as JSON.
pub(crate) fn json(status: StatusCode, body: impl Serialize) -> Outcome {
    Ok((status, Json(body)).into_response())
}

/// `status` with `body` as JSON and a `Location` header.
pub(crate) fn json_at(status: StatusCode, location: &str, body: impl Serialize) -> Outcome {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `204 No Content`.
pub(crate) fn no_content() -> Outcome {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A list answer: `{"<name>": [...], "total": N, "previous"?, "next"?}`.
pub(crate) fn list_body(name: &str, items: impl Serialize, total: usize, links: NavLinks) -> Value {
    let mut body = Map::new();
    body.insert(
        name.to_owned(),
        serde_json::to_value(items).unwrap_or_else(|_| Value::Array(Vec::new())),
    );
    body.insert("total".into(), Value::from(total));
    if let Some(previous) = links.previous {
        body.insert("previous".into(), Value::from(previous));
    }
    if let Some(next) = links.next {
        body.insert("next".into(), Value::from(next));
    }
    Value::Object(body)
}

/// `info` if it is a secret (anything but a container); a container named where
/// a secret is expected is not found, as Barbican keeps them apart (a 404 that
/// [`BarbicanApi::serve`](crate::BarbicanApi) words as its action's missing object).
pub(crate) fn secret(info: ObjectInfo) -> Result<ObjectInfo, BarbicanError> {
    if info.kind == ObjectKind::Container {
        return Err(Error::not_found(format!("{} is a container", info.id)).into());
    }
    Ok(info)
}

/// `info` if it is a container.
pub(crate) fn container(info: ObjectInfo) -> Result<ObjectInfo, BarbicanError> {
    if info.kind != ObjectKind::Container {
        return Err(Error::not_found(format!("{} is not a container", info.id)).into());
    }
    Ok(info)
}

/// Barbican's 404 for a secret.
pub(crate) const SECRET_MISSING: &str = "Not Found. Provided secret id is invalid.";
/// Barbican's 404 for a container.
pub(crate) const CONTAINER_MISSING: &str =
    "Not Found. Sorry but your container is in another castle.";
/// Barbican's 404 for an order.
pub(crate) const ORDER_MISSING: &str = "Not Found. Sorry but your order is in another castle.";

/// An action on a secret, in Barbican's words.
pub(crate) const fn on_secret(name: &'static str) -> Action {
    Action {
        name,
        missing: SECRET_MISSING,
    }
}

/// An action on a container, in Barbican's words.
pub(crate) const fn on_container(name: &'static str) -> Action {
    Action {
        name,
        missing: CONTAINER_MISSING,
    }
}

/// An action on an order, in Barbican's words.
pub(crate) const fn on_order(name: &'static str) -> Action {
    Action {
        name,
        missing: ORDER_MISSING,
    }
}
