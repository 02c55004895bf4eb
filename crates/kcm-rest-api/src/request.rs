//! Reading a request: who sent it, then its body (bounded), and its JSON.

use axum::extract::{OriginalUri, Request};
use axum::http::header;
use kcm_core::authz::Caller;
use kcm_frontdoor::BodyBytes;
use serde::de::DeserializeOwned;

use crate::error::RestError;

/// Largest request body accepted (management bodies are small).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// SigV4 service name of the REST API.
pub(crate) const SIGNING_SERVICE: &str = "kcm";

/// How to authenticate, shown when a request carries no credentials.
const HOW_TO_AUTHENTICATE: &str = "missing Authorization header: send \
     `Authorization: Bearer <access key id>:<secret>` or sign the request with \
     AWS Signature Version 4 (signing service `kcm`)";

/// Authenticates a request — bearer token or SigV4 (service `kcm`) — and reads its
/// body (at most [`MAX_BODY`] bytes), admitting its caller into `call`.
///
/// What the head alone can prove is proved before the body is read: a bearer token
/// entirely, a SigV4 signature in all but the body's hash. Only a SigV4 body is read
/// unauthenticated, within the process's budget for such bodies, and its signature
/// is checked right after.
pub(crate) async fn authenticate<'c>(
    request: Request,
    call: &'c mut kcm_frontdoor::Call<'_>,
) -> Result<(&'c Caller, BodyBytes), RestError> {
    let (parts, body) = request.into_parts();
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| RestError::unauthenticated(HOW_TO_AUTHENTICATE))?;
    let value = value
        .to_str()
        .map_err(|_| RestError::unauthenticated("the Authorization header is not valid ASCII"))?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim();
        if token.is_empty() {
            return Err(RestError::unauthenticated(
                "the bearer token is empty: use `Authorization: Bearer <access key id>:<secret>`",
            ));
        }
        let caller = call.bearer(token).await?;
        let body = kcm_frontdoor::read_proven(&parts, body, MAX_BODY).await?;
        Ok((caller, body))
    } else if scheme.starts_with("AWS4-") {
        // SigV4 signs the path the client sent, before any nesting stripped a prefix.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let head = call
            .sigv4_head(
                &uri,
                &parts.headers,
                kcm_frontdoor::SigV4Service::kcm(SIGNING_SERVICE),
            )
            .await?;
        let body = kcm_frontdoor::read_unproven(&parts, body, MAX_BODY).await?;
        Ok(call.sigv4_body(head, &parts.method, &uri, &parts.headers, body)?)
    } else {
        Err(RestError::unauthenticated(format!(
            "unsupported authorization scheme {:?}: use `Bearer <access key id>:<secret>` \
             or AWS4-HMAC-SHA256 (SigV4, signing service `kcm`)",
            // Only the scheme word is echoed, never what follows it.
            scheme.chars().take(32).collect::<String>()
        )))
    }
}

/// Parses a JSON request body into `T`, naming the problem on failure.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, RestError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(RestError::invalid_input(
                "request body is empty: expected a JSON object",
            ))
        }
        // serde would read a struct from a JSON array too (`[null, null]` as the
        // fields in order): every body of this API is an object, and only that is read.
        Some(b'{') => {}
        Some(_) => {
            return Err(RestError::invalid_input(
                "request body is not a JSON object",
            ))
        }
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
        for not_an_object in [&b"[\"a\"]"[..], b" [null, null]", b"\"a\"", b"null", b"1"] {
            let e = parse_json::<CreateSystemRequest>(not_an_object).unwrap_err();
            assert_eq!(e.message(), "request body is not a JSON object");
            let e = parse_json::<kcm_api_types::CreateRootKeyRequest>(not_an_object).unwrap_err();
            assert_eq!(e.code(), "InvalidInput");
        }
        let ok = parse_json::<CreateSystemRequest>(b"{\"name\":\"a\"}").unwrap();
        assert_eq!(ok.kind, None);
    }
}
