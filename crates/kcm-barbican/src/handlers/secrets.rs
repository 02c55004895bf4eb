//! `/v1/secrets`: store (one step with a payload, or two with `PUT`), list, read
//! metadata, read the payload, delete.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::authz::Op;
use kcm_core::error::ErrorKind;
use kcm_core::service::ObjectFilter;
use serde_json::json;

use super::{json, json_at, list_body, no_content, on_secret, secret};
use crate::call::{object_id, Accepted};
use crate::error::{Action, BarbicanError};
use crate::paging::{NavLinks, Page};
use crate::payload::{self, Delivery};
use crate::wire::secret::{kind_of_secret_type, stored_content_type, NewSecretBody, SecretView};
use crate::BarbicanApi;

/// Barbican's names of what these routes do.
const CREATE: Action = on_secret("Secret creation");
const LIST: Action = on_secret("Secret(s) retrieval");
const GET: Action = on_secret("Secret retrieval");
const PAYLOAD: Action = on_secret("Secret payload retrieval");
const UPDATE: Action = on_secret("Secret update");
const DELETE: Action = Action {
    name: "Secret deletion",
    missing: "Secret not found.",
};

/// `POST /v1/secrets`: 201 with `secret_ref`.
pub(crate) async fn create(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::CreateObject, CREATE, request, async |call| {
        let new = call.json::<NewSecretBody>()?.into_object()?;
        let info = call
            .service
            .create_object(call.caller, call.system, new)
            .await?;
        let url = call.refs.secret(info.id);
        json_at(StatusCode::CREATED, &url, json!({"secret_ref": url}))
    })
    .await
}

/// `GET /v1/secrets`: a page of the project's secrets.
pub(crate) async fn list(State(api): State<BarbicanApi>, request: Request) -> Response {
    api.serve(Op::ListObjects, LIST, request, async |call| {
        let (filter, page) = secret_filter(&call.query())?;
        let found = call
            .service
            .list_objects(call.caller, call.system, &filter)
            .await?;
        let views: Vec<SecretView> = found
            .objects
            .iter()
            .map(|info| SecretView::new(info, &call.refs, call.version))
            .collect();
        let links = NavLinks::around(&call.refs.v1("secrets"), page, found.total, views.len());
        json(
            StatusCode::OK,
            list_body("secrets", views, found.total, links),
        )
    })
    .await
}

/// The list filter a secrets query asks for. Barbican's filters kcm does not
/// offer (dates, other sort orders, `acl_only`) are refused by name rather than
/// ignored, which would answer with the wrong secrets.
fn secret_filter(query: &[(String, String)]) -> Result<(ObjectFilter, Page), BarbicanError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let page = Page::read(get("offset"), get("limit"));
    for unsupported in ["created", "updated", "expiration"] {
        if get(unsupported).is_some() {
            return Err(BarbicanError::bad_request(format!(
                "Filtering secrets by '{unsupported}' is not supported by this key manager"
            )));
        }
    }
    if let Some(sort) = get("sort") {
        if !matches!(sort, "created" | "created:asc") {
            return Err(BarbicanError::bad_request(format!(
                "Secrets are listed oldest first; sort={sort:?} is not supported"
            )));
        }
    }
    if get("acl_only").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(BarbicanError::bad_request(
            "acl_only is not supported by this key manager",
        ));
    }
    let kind = match get("secret_type") {
        None => None,
        Some(t) => Some(kind_of_secret_type(t).ok_or_else(|| {
            BarbicanError::bad_request(format!("secret_type {t:?} is not a secret type"))
        })?),
    };
    let nonempty = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_owned);
    let filter = ObjectFilter {
        kind,
        containers: false,
        name: nonempty("name"),
        algorithm: nonempty("alg"),
        mode: nonempty("mode"),
        // As Barbican: bits that are not a number, or 0, filter nothing.
        bit_length: get("bits")
            .and_then(|b| b.parse::<u32>().ok())
            .filter(|b| *b > 0),
        offset: page.offset,
        limit: page.limit,
    };
    Ok((filter, page))
}

/// Whether `GET /v1/secrets/{id}` asks for metadata (JSON, anything, or no
/// `Accept`) rather than the payload (the older way to read it, which RGW uses).
fn wants_metadata(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let first = accept.split(',').next().unwrap_or("");
    let media = first.split(';').next().unwrap_or("").trim();
    media.is_empty() || media == "application/json" || media == "*/*"
}

/// `GET /v1/secrets/{id}`: the metadata, or with a payload type in `Accept`,
/// the payload.
pub(crate) async fn get(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if !wants_metadata(request.headers()) {
        return payload_of(&api, id, request).await;
    }
    api.serve(Op::GetObject, GET, request, async |call| {
        let id = object_id(&id)?;
        let info = secret(call.service.get_object(call.caller, id).await?)?;
        json(
            StatusCode::OK,
            SecretView::new(&info, &call.refs, call.version),
        )
    })
    .await
}

/// `GET /v1/secrets/{id}/payload`.
pub(crate) async fn payload(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    payload_of(&api, id, request).await
}

/// The payload of secret `id` in the type `Accept` asks for.
async fn payload_of(api: &BarbicanApi, id: String, request: Request) -> Response {
    api.serve(Op::GetObjectPayload, PAYLOAD, request, async |call| {
        let delivery = Delivery::negotiate(call.header("accept"))?;
        let id = object_id(&id)?;
        let (info, payload) = call.service.object_payload(call.caller, id).await?;
        let info = secret(info)?;
        let content_type = delivery.content_type(stored_content_type(&info), &payload)?;
        let mut response = (
            StatusCode::OK,
            bytes::Bytes::copy_from_slice(payload.expose_secret()),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Ok(response)
    })
    .await
}

/// `PUT /v1/secrets/{id}`: the payload of a secret stored without one. 204.
pub(crate) async fn put_payload(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(
        Op::PutObjectPayload,
        UPDATE,
        request,
        async |call: Accepted<'_>| {
            let id = object_id(&id)?;
            let (bytes, content_type) = payload::from_put(
                call.body(),
                call.header("content-type"),
                call.header("content-encoding"),
            )?;
            call.service
                .put_object_payload(call.caller, id, bytes, Some(content_type.as_str().into()))
                .await?;
            no_content()
        },
    )
    .await
}

/// `DELETE /v1/secrets/{id}`: 204.
pub(crate) async fn delete(
    State(api): State<BarbicanApi>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    api.serve(Op::DeleteObject, DELETE, request, async |call| {
        let id = object_id(&id)?;
        call.service
            .delete_object(call.caller, id)
            .await
            .map_err(|e| match e.kind() {
                // The core keeps an object in use (microversion 1.2's rule, which
                // `?force=true` would lift in Barbican; kcm has no force).
                ErrorKind::InvalidState if e.message().contains("consumer") => {
                    BarbicanError::bad_request(
                        "Secret deletion issue seen - Secret cannot be deleted as it has consumers..",
                    )
                }
                _ => e.into(),
            })?;
        no_content()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_core::model::ObjectKind;

    fn query(text: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn list_queries_become_filters() {
        let (f, page) = secret_filter(&query(
            "offset=2&limit=5&name=my+key&alg=aes&bits=256&secret_type=symmetric",
        ))
        .unwrap();
        assert_eq!(
            page,
            Page {
                offset: 2,
                limit: 5
            }
        );
        assert_eq!((f.offset, f.limit), (2, 5));
        assert_eq!(f.name.as_deref(), Some("my key"));
        assert_eq!(f.algorithm.as_deref(), Some("aes"));
        assert_eq!(f.bit_length, Some(256));
        assert_eq!(f.kind, Some(ObjectKind::SymmetricKey));
        assert!(!f.containers);
        let (f, _) = secret_filter(&query("bits=x&sort=created")).unwrap();
        assert_eq!(f.bit_length, None);
    }

    #[test]
    fn filters_kcm_lacks_are_refused_by_name() {
        for q in [
            "created=gt:2020-01-01T00:00:00",
            "sort=name:desc",
            "acl_only=true",
            "secret_type=container",
        ] {
            let e = secret_filter(&query(q)).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{q}");
        }
    }

    #[test]
    fn accept_decides_between_metadata_and_payload() {
        let with = |accept: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(accept));
            wants_metadata(&h)
        };
        assert!(wants_metadata(&HeaderMap::new()));
        assert!(with("application/json"));
        assert!(with("*/*"));
        assert!(!with("application/octet-stream"));
        assert!(!with("text/plain"));
    }
}
