//! Reading a request: the body (bounded), who sent it, and its JSON.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Request};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use kcm_core::authz::Caller;
use serde::de::DeserializeOwned;

use crate::error::{code, RestError};

/// Largest request body accepted (management bodies are small).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// SigV4 service name of the REST API.
pub(crate) const SIGNING_SERVICE: &str = "kcm";

/// How to authenticate, shown when a request carries no credentials.
const HOW_TO_AUTHENTICATE: &str = "missing Authorization header: send \
     `Authorization: Bearer <access key id>:<secret>` or sign the request with \
     AWS Signature Version 4 (signing service `kcm`)";

/// A request with its body read, ready for authentication.
pub(crate) struct Incoming {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Incoming {
    /// Reads the body (at most [`MAX_BODY`] bytes).
    pub(crate) async fn read(request: Request) -> Result<Self, RestError> {
        let (parts, body) = request.into_parts();
        // SigV4 signs the path the client sent, before any nesting stripped a prefix.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| o.0.clone())
            .unwrap_or(parts.uri);
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            RestError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {MAX_BODY} bytes or could not be read"),
            )
        })?;
        Ok(Self {
            method: parts.method,
            uri,
            headers: parts.headers,
            body,
        })
    }
}

impl Incoming {
    /// Authenticates the request — bearer token or SigV4 (service `kcm`) — and admits
    /// its caller into `call`.
    pub(crate) async fn authenticate<'c>(
        &self,
        call: &'c mut kcm_frontdoor::Call<'_>,
    ) -> Result<&'c Caller, RestError> {
        let value = self
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| RestError::unauthenticated(HOW_TO_AUTHENTICATE))?;
        let value = value.to_str().map_err(|_| {
            RestError::unauthenticated("the Authorization header is not valid ASCII")
        })?;
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim();
            if token.is_empty() {
                return Err(RestError::unauthenticated(
                    "the bearer token is empty: use `Authorization: Bearer <access key id>:<secret>`",
                ));
            }
            Ok(call.bearer(token).await?)
        } else if scheme.starts_with("AWS4-") {
            Ok(call
                .sigv4(
                    &self.method,
                    &self.uri,
                    &self.headers,
                    &self.body,
                    SIGNING_SERVICE,
                )
                .await?)
        } else {
            Err(RestError::unauthenticated(format!(
                "unsupported authorization scheme {:?}: use `Bearer <access key id>:<secret>` \
                 or AWS4-HMAC-SHA256 (SigV4, signing service `kcm`)",
                // Only the scheme word is echoed, never what follows it.
                scheme.chars().take(32).collect::<String>()
            )))
        }
    }
}

/// Parses a JSON request body into `T`, naming the problem on failure.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(RestError::invalid_input(
            "request body is empty: expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        use serde_json::error::Category;
        let path = e.path().to_string();
        let e = e.into_inner();
        match e.classify() {
            Category::Data if path != "." => {
                RestError::invalid_input(format!("request body is invalid: field `{path}`: {e}"))
            }
            Category::Data => RestError::invalid_input(format!("request body is invalid: {e}")),
            Category::Syntax | Category::Eof | Category::Io => {
                RestError::invalid_input(format!("request body is not valid JSON: {e}"))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_api_types::CreateSystemRequest;
    use kcm_frontdoor::DoorError;

    #[test]
    fn json_problems_are_named() {
        let e = parse_json::<CreateSystemRequest>(b"").unwrap_err();
        assert!(e.message().contains("empty"), "{}", e.message());
        let e = parse_json::<CreateSystemRequest>(b"{\"name\": ").unwrap_err();
        assert!(
            e.message().starts_with("request body is not valid JSON"),
            "{}",
            e.message()
        );
        let e = parse_json::<CreateSystemRequest>(b"{}").unwrap_err();
        assert!(
            e.message().contains("missing field `name`"),
            "{}",
            e.message()
        );
        let e = parse_json::<CreateSystemRequest>(b"{\"name\":\"a\",\"nmae\":1}").unwrap_err();
        assert!(
            e.message().contains("unknown field `nmae`"),
            "{}",
            e.message()
        );
        assert_eq!(e.code(), "InvalidInput");
        let ok = parse_json::<CreateSystemRequest>(b"{\"name\":\"a\"}").unwrap();
        assert_eq!(ok.kind, None);
    }
}
