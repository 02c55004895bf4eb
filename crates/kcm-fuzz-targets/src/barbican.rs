//! The Barbican door's wire codecs (`crates/kcm-barbican`: `request`, `wire/`,
//! `payload`, `paging`, `microversion`, `refs`).
//!
//! The input names a codec on its first line; the rest is that codec's input:
//!
//! | first line | rest |
//! |---|---|
//! | `secret`, `container`, `order`, `acl`, `consumer`, `container_consumer` | a JSON body, read as the door reads it (`parse_json`, then the body's checks) |
//! | `payload_json` | `Content-Type` line, encoding line (empty: none), then the payload of a `POST /v1/secrets` body |
//! | `payload_put` | `Content-Type` line, `Content-Encoding` line, then a `PUT` body |
//! | `accept` | an `Accept` line, then a stored payload to deliver as it asks |
//! | `paging` | `offset` line, `limit` line, then the list's length |
//! | `headers` | header lines (`OpenStack-API-Version`, `Content-Type`, `Host`) |
//! | `ref` | a secret, container or order reference |
//!
//! Besides not panicking: an accepted payload is 1 to `MAX_SECRET_BYTES` bytes,
//! a page's limit is 1 to `MAX_LIMIT`, and a body over `MAX_REQUEST_BYTES` never
//! reaches these codecs in the door (so the fuzzer is held to it).

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use kcm_barbican::error::BarbicanError;
use kcm_barbican::microversion::Microversion;
use kcm_barbican::paging::{NavLinks, Page, MAX_LIMIT};
use kcm_barbican::payload::{self, ContentType, Delivery, MAX_REQUEST_BYTES, MAX_SECRET_BYTES};
use kcm_barbican::refs::{id_in_ref, Refs};
use kcm_barbican::request::{media_type, parse_json};
use kcm_barbican::wire::acl::AclBody;
use kcm_barbican::wire::consumer::{ConsumerView, ContainerConsumerView};
use kcm_barbican::wire::container::NewContainerBody;
use kcm_barbican::wire::order::NewOrderBody;
use kcm_barbican::wire::secret::NewSecretBody;
use kcm_core::secret::SecretBytes;

/// The door's request limit and the longest codec name's line.
pub const MAX_LEN: usize = MAX_REQUEST_BYTES + 32;

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

fn seen<T>(result: Result<T, BarbicanError>) -> Option<T> {
    result
        .map_err(|e| {
            let _ = (e.status(), e.body());
        })
        .ok()
}

fn line(rest: &[u8]) -> (&str, &[u8]) {
    let (line, rest) = crate::first_line(rest);
    (std::str::from_utf8(line).unwrap_or("\u{fffd}"), rest)
}

fn check_payload(result: Result<(SecretBytes, ContentType), BarbicanError>) {
    if let Some((bytes, _)) = seen(result) {
        assert!((1..=MAX_SECRET_BYTES).contains(&bytes.len()));
    }
}

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let (codec, rest) = crate::first_line(data);
    if rest.len() > MAX_REQUEST_BYTES {
        return;
    }
    let headers = json_headers();
    match codec {
        b"secret" => {
            if let Some(body) = seen(parse_json::<NewSecretBody>(&headers, rest)) {
                seen(body.into_object());
            }
        }
        b"container" => {
            if let Some(body) = seen(parse_json::<NewContainerBody>(&headers, rest)) {
                seen(body.into_object());
            }
        }
        b"order" => {
            if let Some(body) = seen(parse_json::<NewOrderBody>(&headers, rest)) {
                seen(body.into_generate());
            }
        }
        b"acl" => {
            if let Some(body) = seen(parse_json::<AclBody>(&headers, rest)) {
                seen(body.replacement());
            }
            if let Some(body) = seen(parse_json::<AclBody>(&headers, rest)) {
                seen(body.patch());
            }
        }
        b"consumer" => {
            if let Some(body) = seen(parse_json::<ConsumerView>(&headers, rest)) {
                seen(body.into_consumer());
            }
        }
        b"container_consumer" => {
            if let Some(body) = seen(parse_json::<ContainerConsumerView>(&headers, rest)) {
                seen(body.into_consumer());
            }
        }
        b"payload_json" => {
            let (content_type, rest) = line(rest);
            let (encoding, rest) = line(rest);
            let Ok(payload) = std::str::from_utf8(rest) else {
                return;
            };
            let encoding = Some(encoding).filter(|e| !e.is_empty());
            check_payload(payload::from_json(payload, content_type, encoding));
        }
        b"payload_put" => {
            let (content_type, rest) = line(rest);
            let (encoding, body) = line(rest);
            let content_type = Some(content_type).filter(|c| !c.is_empty());
            let encoding = Some(encoding).filter(|e| !e.is_empty());
            check_payload(payload::from_put(body, content_type, encoding));
        }
        b"accept" => {
            let (accept, stored) = line(rest);
            if let Some(delivery) = seen(Delivery::negotiate(Some(accept))) {
                let stored = SecretBytes::copy_from(stored);
                for kind in [ContentType::Text, ContentType::OctetStream] {
                    seen(delivery.content_type(kind, &stored));
                }
            }
        }
        b"paging" => {
            let (offset, rest) = line(rest);
            let (limit, total) = line(rest);
            let page = Page::read(Some(offset), Some(limit));
            assert!((1..=MAX_LIMIT).contains(&page.limit));
            let total = std::str::from_utf8(total)
                .ok()
                .and_then(|t| t.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let shown = total.saturating_sub(page.offset).min(page.limit);
            let _ = NavLinks::around("http://127.0.0.1:9311/v1/secrets", page, total, shown);
        }
        b"headers" => {
            let mut headers = HeaderMap::new();
            for line in rest.split(|&b| b == b'\n') {
                let Some(colon) = line.iter().position(|&b| b == b':') else {
                    continue;
                };
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(&line[..colon]),
                    HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
                ) else {
                    continue;
                };
                headers.append(name, value);
            }
            seen(Microversion::of_request(&headers));
            let _ = media_type(&headers);
            let refs = Refs::for_request(None, "http", &headers, "127.0.0.1:9311");
            let _ = refs.secret(uuid::Uuid::from_u128(1));
        }
        b"ref" => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            for collection in ["secrets", "containers", "orders"] {
                let _ = id_in_ref(text, collection);
            }
        }
        _ => {}
    }
}
