//! The AWS KMS JSON protocol client.

use http::Method;

use crate::error::kms_error;
use crate::signing::{connection_setup, kms_headers, Connection};
use crate::ClientError;

/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A client for the KMS JSON API (`POST /`, `X-Amz-Target: TrentService.<Operation>`).
#[derive(Debug, Clone)]
pub struct KmsClient {
    conn: Connection,
}

impl KmsClient {
    connection_setup!("kms");

    /// Calls `operation` (e.g. `"Encrypt"`) with the JSON `body` and returns the
    /// JSON response; an error response becomes [`ClientError::Api`].
    pub async fn call(
        &self,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.call_typed(operation, body).await
    }

    /// [`KmsClient::call`] with typed request and response bodies: a field renamed
    /// on either side breaks the build, and a response field can be a zeroizing
    /// type. An empty response body decodes as `{}`.
    pub async fn call_typed<Req, Resp>(
        &self,
        operation: &str,
        body: &Req,
    ) -> Result<Resp, ClientError>
    where
        Req: serde::Serialize + ?Sized,
        Resp: serde::de::DeserializeOwned,
    {
        self.call_tagged(operation, body, None).await
    }

    /// [`KmsClient::call_typed`], naming the caller's own id for the request
    /// (`x-kcm-client-request-id`), which kcm keeps in the request's audit record.
    /// The id is only a label: one that cannot be a header value is left out, and
    /// the call goes ahead without it.
    pub async fn call_tagged<Req, Resp>(
        &self,
        operation: &str,
        body: &Req,
        client_request_id: Option<&str>,
    ) -> Result<Resp, ClientError>
    where
        Req: serde::Serialize + ?Sized,
        Resp: serde::de::DeserializeOwned,
    {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::InvalidResponse {
            status: 0,
            detail: format!("cannot serialise the request: {e}"),
        })?;
        let url = self.conn.url("/");
        let mut headers = kms_headers(operation)?;
        if let Some(value) = client_request_id.and_then(|id| http::HeaderValue::from_str(id).ok()) {
            headers.insert("x-kcm-client-request-id", value);
        }
        let (status, bytes) = self.conn.send(Method::POST, &url, headers, body).await?;
        if !(200..300).contains(&status) {
            return Err(kms_error(status, &bytes));
        }
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| ClientError::InvalidResponse {
            status,
            detail: format!("the response is not the expected JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    use kcm_sigv4::Credentials;

    const SECRET: &str = "server-known-secret";

    /// A tiny KMS stand-in that verifies SigV4 like the real front door.
    async fn handler(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::response::Response {
        let fail = |t: &str, m: String| {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"__type": t, "message": m})),
            )
                .into_response()
        };
        let auth = match kcm_sigv4::parse_authorization(&headers) {
            Ok(a) => a,
            Err(e) => return fail(e.aws_error_type(), e.to_string()),
        };
        let key =
            kcm_sigv4::derive_signing_key(SECRET.as_bytes(), &auth.scope.date, "us-east-1", "kms");
        if let Err(e) = kcm_sigv4::verify(
            &method,
            &uri,
            &headers,
            &body,
            &auth,
            &key,
            "us-east-1",
            "kms",
            time::OffsetDateTime::now_utc(),
            kcm_sigv4::MAX_CLOCK_SKEW,
        ) {
            return fail(e.aws_error_type(), e.to_string());
        }
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let input: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let request_id = headers
            .get("x-kcm-client-request-id")
            .and_then(|v| v.to_str().ok());
        axum::Json(serde_json::json!({"Target": target, "Echo": input, "RequestId": request_id}))
            .into_response()
    }

    async fn server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            async move { axum::serve(listener, axum::Router::new().fallback(handler)).await },
        );
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn signed_calls_are_accepted_by_a_verifying_server() {
        let endpoint = server().await;
        let client = KmsClient::new(&endpoint, Credentials::new("AKID", SECRET)).unwrap();
        let out = client
            .call("ListKeys", &serde_json::json!({"Limit": 5}))
            .await
            .unwrap();
        assert_eq!(out["Target"], "TrentService.ListKeys");
        assert_eq!(out["Echo"]["Limit"], 5);
    }

    #[tokio::test]
    async fn a_client_request_id_is_sent_when_it_can_be_a_header_and_left_out_otherwise() {
        let endpoint = server().await;
        let client = KmsClient::new(&endpoint, Credentials::new("AKID", SECRET)).unwrap();
        for (id, sent) in [
            (Some("uid-1"), Some("uid-1")),
            (Some("bad\nid"), None),
            (None, None),
        ] {
            let out: serde_json::Value = client
                .call_tagged("ListKeys", &serde_json::json!({}), id)
                .await
                .unwrap();
            assert_eq!(out["RequestId"].as_str(), sent, "{id:?}");
        }
    }

    #[tokio::test]
    async fn error_responses_become_api_errors() {
        let endpoint = server().await;
        let client = KmsClient::new(&endpoint, Credentials::new("AKID", "wrong")).unwrap();
        let err = client
            .call("ListKeys", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), Some("InvalidSignatureException"));
        assert_eq!(err.status(), Some(400));
        let client = client.with_region("eu-west-1");
        let err = client
            .call("ListKeys", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("'us-east-1'"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_servers_are_transport_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = KmsClient::new(&format!("http://{addr}"), Credentials::new("a", "s")).unwrap();
        let err = client
            .call("ListKeys", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    }
}
