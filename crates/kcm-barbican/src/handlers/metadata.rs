//! `/v1/secrets/{id}/metadata` and `/metadata/{key}`: a secret's user metadata.
//! Keys are lower-cased, as Barbican does.
//!
//! Barbican refuses `POST` of a key that exists (409) and `PUT …/{key}` of one
//! that does not (404). Telling which would take a read before the write — a
//! second core call — so here both set the item, whether it existed or not.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use kcm_core::authz::Op;
use kcm_core::service::ObjectChange;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{json, json_at, no_content, on_secret, secret};
use crate::call::object_id;
use crate::error::{Action, BarbicanError};
use crate::BarbicanApi;

/// Barbican's names of what these routes do.
const GET_ALL: Action = on_secret("Secret metadata retrieval");
const REPLACE: Action = on_secret("Secret metadata creation");
const ADD: Action = on_secret("Secret metadatum creation");
const GET_ONE: Action = on_secret("Secret metadatum retrieval");
const PUT_ONE: Action = on_secret("Secret metadatum update");
const DELETE_ONE: Action = on_secret("Secret metadatum removal");

/// `PUT /v1/secrets/{id}/metadata`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataBody {
    metadata: BTreeMap<String, String>,
}

/// One item, as sent and as answered.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Item {
    key: String,
    value: String,
}

/// Barbican's metadata keys are lower case.
fn key(text: &str) -> Result<String, BarbicanError> {
    let key = text.trim().to_lowercase();
    if key.is_empty() {
        return Err(BarbicanError::bad_request(
            "A metadata key must not be empty",
        ));
    }
    Ok(key)
}

/// `GET /v1/secrets/{id}/metadata`: `{"metadata": {...}}`.
pub(crate) async fn get_all(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, GET_ALL, request, async |call| {
        let id = object_id(&id)?;
        let info = secret(call.service.get_object(call.caller, id).await?)?;
        json(
            StatusCode::OK,
            json!({"metadata": info.attributes.metadata}),
        )
    })
    .await
}

/// `PUT /v1/secrets/{id}/metadata`: replaces all of it; 201 with `metadata_ref`.
pub(crate) async fn replace(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, REPLACE, request, async |call| {
        let id = object_id(&id)?;
        let body: MetadataBody = call.json()?;
        let metadata = body
            .metadata
            .into_iter()
            .map(|(k, v)| Ok((key(&k)?, v)))
            .collect::<Result<BTreeMap<_, _>, BarbicanError>>()?;
        call.service
            .update_object(call.caller, id, ObjectChange::ReplaceMetadata(metadata))
            .await?;
        let url = format!("{}/metadata", call.refs.secret(id));
        json(StatusCode::CREATED, json!({"metadata_ref": url}))
    })
    .await
}

/// `POST /v1/secrets/{id}/metadata`: adds one item; 201 with the item.
pub(crate) async fn add(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, ADD, request, async |call| {
        let id = object_id(&id)?;
        let item: Item = call.json()?;
        let item = Item {
            key: key(&item.key)?,
            value: item.value,
        };
        call.service
            .update_object(
                call.caller,
                id,
                ObjectChange::PutMetadataItem {
                    key: item.key.clone(),
                    value: item.value.clone(),
                },
            )
            .await?;
        let url = format!("{}/metadata/{}", call.refs.secret(id), item.key);
        json_at(StatusCode::CREATED, &url, item)
    })
    .await
}

/// `GET /v1/secrets/{id}/metadata/{key}`: `{"key", "value"}`.
pub(crate) async fn get_one(
    State(api): State<BarbicanApi>,
    Path((id, item)): Path<(String, String)>,
    request: Request,
) -> Response {
    api.serve(Op::GetObject, GET_ONE, request, async |call| {
        let id = object_id(&id)?;
        let item = key(&item)?;
        let info = secret(call.service.get_object(call.caller, id).await?)?;
        let value = info.attributes.metadata.get(&item).ok_or_else(|| {
            BarbicanError::not_found(format!("Secret metadata {item:?} not found"))
        })?;
        json(StatusCode::OK, json!({"key": item, "value": value}))
    })
    .await
}

/// `PUT /v1/secrets/{id}/metadata/{key}`: sets one item; 200 with it.
pub(crate) async fn put_one(
    State(api): State<BarbicanApi>,
    Path((id, item)): Path<(String, String)>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, PUT_ONE, request, async |call| {
        let id = object_id(&id)?;
        let item = key(&item)?;
        let body: Item = call.json()?;
        if key(&body.key)? != item {
            return Err(BarbicanError::bad_request(
                "Key in request data does not match key in the request url.",
            ));
        }
        call.service
            .update_object(
                call.caller,
                id,
                ObjectChange::PutMetadataItem {
                    key: item.clone(),
                    value: body.value.clone(),
                },
            )
            .await?;
        json(
            StatusCode::OK,
            Item {
                key: item,
                value: body.value,
            },
        )
    })
    .await
}

/// `DELETE /v1/secrets/{id}/metadata/{key}`: 204.
pub(crate) async fn delete_one(
    State(api): State<BarbicanApi>,
    Path((id, item)): Path<(String, String)>,
    request: Request,
) -> Response {
    api.serve(Op::UpdateObject, DELETE_ONE, request, async |call| {
        let id = object_id(&id)?;
        let item = key(&item)?;
        call.service
            .update_object(call.caller, id, ObjectChange::DeleteMetadataItem(item))
            .await?;
        no_content()
    })
    .await
}
