//! Reading a request: the body, bounded by Barbican's
//! `max_allowed_request_size_in_bytes` and held in a zeroizing buffer (it may carry
//! a payload), and its JSON, read strictly with the problem named.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::BarbicanError;
use crate::payload::MAX_REQUEST_BYTES;

/// A request body, wiped when dropped.
pub type BodyBytes = Zeroizing<Vec<u8>>;

/// Reads the whole body: at most [`MAX_REQUEST_BYTES`], else 413 (refused before
/// reading when `Content-Length` already says so).
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<BodyBytes, BarbicanError> {
    let too_large = || {
        BarbicanError::too_large(format!(
            "The request is larger than {MAX_REQUEST_BYTES} bytes."
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(too_large());
    }
    let mut out: BodyBytes = Zeroizing::new(Vec::with_capacity(declared.map_or(0, |n| n as usize)));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| BarbicanError::bad_request("The request body could not be read."))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > MAX_REQUEST_BYTES {
                return Err(too_large());
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

/// The media type of `Content-Type` (lower case, without parameters).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
}

/// The JSON body as `T`: `Content-Type` must be `application/json` (else 415, as
/// Barbican); an empty or malformed body is a 400 naming what is wrong.
pub fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, BarbicanError> {
    match media_type(headers).as_deref() {
        Some("application/json") => {}
        _ => return Err(BarbicanError::unsupported_media_type(&["application/json"])),
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BarbicanError::bad_request("Malformed JSON"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        use serde_json::error::Category;
        let path = e.path().to_string();
        let e = e.into_inner();
        match e.classify() {
            Category::Data if path != "." => BarbicanError::bad_request(format!(
                "Provided object does not match schema: field '{path}': {e}"
            )),
            Category::Data => {
                BarbicanError::bad_request(format!("Provided object does not match schema: {e}"))
            }
            // Barbican says only this; the position is for the log.
            Category::Syntax | Category::Eof | Category::Io => {
                tracing::debug!(error = %e, "malformed JSON body");
                BarbicanError::bad_request("Malformed JSON")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Named {
        #[allow(dead_code)]
        name: String,
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h
    }

    #[test]
    fn json_problems_are_named() {
        let h = json_headers();
        assert!(parse_json::<Named>(&h, br#"{"name": "a"}"#).is_ok());
        let e = parse_json::<Named>(&h, b"").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        let e = parse_json::<Named>(&h, b"{\"name\": ").unwrap_err();
        assert!(e.body().description == "Malformed JSON", "{:?}", e.body());
        let e = parse_json::<Named>(&h, br#"{"name": 1}"#).unwrap_err();
        assert!(e.body().description.contains("'name'"), "{:?}", e.body());
        let e = parse_json::<Named>(&HeaderMap::new(), br#"{"name": "a"}"#).unwrap_err();
        assert_eq!(e.status().as_u16(), 415);
    }

    #[tokio::test]
    async fn bodies_are_bounded() {
        let ok = read_body(&HeaderMap::new(), Body::from(vec![1u8; MAX_REQUEST_BYTES]))
            .await
            .unwrap();
        assert_eq!(ok.len(), MAX_REQUEST_BYTES);
        let e = read_body(
            &HeaderMap::new(),
            Body::from(vec![1u8; MAX_REQUEST_BYTES + 1]),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status().as_u16(), 413);
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999999"));
        let e = read_body(&h, Body::empty()).await.unwrap_err();
        assert_eq!(e.body().title, "Request Entity Too Large");
    }
}
