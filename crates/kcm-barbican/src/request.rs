//! Reading a request's JSON, strictly, with the problem named. (The body itself is
//! read by the path every door shares, `kcm_frontdoor::read_proven`, bounded by
//! Barbican's `max_allowed_request_size_in_bytes` and held in a zeroizing buffer.)

use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use crate::error::BarbicanError;

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
}
