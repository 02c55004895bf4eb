//! The native REST API client (`/v1`, SigV4 service `kcm`).

use http::{HeaderMap, HeaderValue, Method};
use kcm_sigv4::Credentials;

use crate::error::rest_error;
use crate::signing::{send_signed, send_signed_streaming, Endpoint};
use crate::{ClientError, DEFAULT_REGION};

/// The SigV4 service name of the REST API.
const SERVICE: &str = "kcm";

/// A client for the native REST API under `/v1`.
///
/// Paths are given relative to `/v1` (e.g. `"/keys"`); path segments that may
/// contain reserved characters should be encoded with [`RestClient::encode_segment`].
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    credentials: Credentials,
    region: String,
}

impl RestClient {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:8990`) in [`DEFAULT_REGION`].
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Self, ClientError> {
        Ok(Self {
            http: crate::signing::http_client()?,
            endpoint: Endpoint::parse(endpoint)?,
            credentials,
            region: DEFAULT_REGION.to_owned(),
        })
    }

    /// Uses `region` for signing instead of [`DEFAULT_REGION`].
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Uses a caller-configured HTTP client.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
    pub fn encode_segment(segment: &str) -> String {
        let mut out = String::with_capacity(segment.len());
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// `GET /v1<path>`.
    pub async fn get(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.request(Method::GET, path, None).await
    }

    /// `POST /v1<path>` with a JSON body.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// `DELETE /v1<path>`.
    pub async fn delete(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.request(Method::DELETE, path, None).await
    }

    /// `GET /v1<path>` of a binary resource (e.g. `/backup`), written to `sink` as it
    /// arrives. `progress(received, total)` is called after each piece, with the
    /// `Content-Length` as `total` when the server sent one. Fails if the body ends
    /// before the announced length. Returns the bytes received.
    pub async fn download(
        &self,
        path: &str,
        sink: &mut impl std::io::Write,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<u64, ClientError> {
        let url = self.endpoint.url(&format!("/v1{path}"));
        let mut response = send_signed_streaming(
            &self.http,
            Method::GET,
            &url,
            HeaderMap::new(),
            Vec::new(),
            &self.credentials,
            &self.region,
            SERVICE,
        )
        .await?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ClientError::transport(&url, &e))?;
            return Err(rest_error(status, &bytes));
        }
        let total = response.content_length();
        let mut received = 0u64;
        progress(0, total);
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| ClientError::transport(&url, &e))?
        {
            sink.write_all(&piece)
                .map_err(|e| ClientError::Io(e.to_string()))?;
            received += piece.len() as u64;
            progress(received, total);
        }
        if let Some(total) = total {
            if received != total {
                return Err(ClientError::InvalidResponse {
                    status,
                    detail: format!("the download ended after {received} of {total} bytes; retry"),
                });
            }
        }
        sink.flush().map_err(|e| ClientError::Io(e.to_string()))?;
        Ok(received)
    }

    /// Any method on `/v1<path>`, with an optional JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let url = self.endpoint.url(&format!("/v1{path}"));
        let mut headers = HeaderMap::new();
        let body = match body {
            Some(b) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                serde_json::to_vec(b).map_err(|e| ClientError::InvalidResponse {
                    status: 0,
                    detail: format!("cannot serialise the request: {e}"),
                })?
            }
            None => Vec::new(),
        };
        let (status, bytes) = send_signed(
            &self.http,
            method,
            &url,
            headers,
            body,
            &self.credentials,
            &self.region,
            SERVICE,
        )
        .await?;
        if !(200..300).contains(&status) {
            return Err(rest_error(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::InvalidResponse {
            status,
            detail: format!("the response is not JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(RestClient::encode_segment("alias/a b"), "alias%2Fa%20b");
        assert_eq!(RestClient::encode_segment("k-1_.~"), "k-1_.~");
    }

    #[test]
    fn endpoints_are_validated() {
        let c = Credentials::new("a", "s");
        assert!(RestClient::new("http://127.0.0.1:8990/", c.clone()).is_ok());
        assert!(RestClient::new("127.0.0.1:8990", c.clone()).is_err());
        assert!(crate::KmsClient::new("ftp://x", c).is_err());
    }
}
