//! Signed requests: what the KMS client, the REST client and the bench share.

use http::{HeaderMap, HeaderValue, Method, Uri};
use kcm_sigv4::Credentials;

use crate::{ClientError, DEFAULT_REGION};

/// A `reqwest` client builder (HTTPS through rustls); first makes aws-lc-rs the
/// process-wide TLS crypto provider if none is installed yet.
pub(crate) fn http_builder() -> reqwest::ClientBuilder {
    // Fails only when a provider is already installed, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}

/// A default HTTP client (see [`http_builder`]).
pub(crate) fn http_client() -> Result<reqwest::Client, ClientError> {
    http_builder()
        .build()
        .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))
}

/// A base endpoint (`http://host:port`, no trailing slash).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    base: String,
}

impl Endpoint {
    /// Parses and normalises `endpoint`.
    pub(crate) fn parse(endpoint: &str) -> Result<Self, ClientError> {
        let base = endpoint.trim().trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|_| ClientError::InvalidEndpoint(endpoint.to_owned()))?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
        if !scheme_ok || uri.authority().is_none() {
            return Err(ClientError::InvalidEndpoint(endpoint.to_owned()));
        }
        Ok(Self { base })
    }

    /// The full URL of `path_and_query` (which starts with `/`).
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }
}

/// Where and as whom a client sends signed requests: what the KMS and REST clients
/// share (each adds its protocol: the KMS target header, the `/v1` paths).
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    http: reqwest::Client,
    endpoint: Endpoint,
    credentials: Credentials,
    region: String,
    /// The SigV4 service name (`kms`, `kcm`).
    service: &'static str,
}

impl Connection {
    /// A connection to `endpoint` (e.g. `http://127.0.0.1:8990`) in [`DEFAULT_REGION`],
    /// signing for `service`.
    pub(crate) fn new(
        endpoint: &str,
        credentials: Credentials,
        service: &'static str,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http: http_client()?,
            endpoint: Endpoint::parse(endpoint)?,
            credentials,
            region: DEFAULT_REGION.to_owned(),
            service,
        })
    }

    /// Signs for `region` instead.
    pub(crate) fn with_region(mut self, region: String) -> Self {
        self.region = region;
        self
    }

    /// Sends through a caller-configured HTTP client instead.
    pub(crate) fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The signing region.
    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// The full URL of `path_and_query` (which starts with `/`).
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        self.endpoint.url(path_and_query)
    }

    /// Signs a request to `url` (`headers` are the caller's extra headers), sends it,
    /// and returns the status and body. A request refused by a request-rate quota
    /// (AWS `ThrottlingException`, HTTP 429) did nothing, so it is sent again —
    /// signed afresh — after a growing pause, as AWS SDKs do, up to
    /// [`THROTTLED_ATTEMPTS`] times in all; the last refusal is returned.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(u16, bytes::Bytes), ClientError> {
        // Shared, not copied, by every attempt.
        let body = bytes::Bytes::from(body);
        let mut pause = FIRST_THROTTLED_PAUSE;
        for attempt in 1.. {
            let response = self
                .send_streaming(method.clone(), url, headers.clone(), body.clone())
                .await?;
            let status = response.status().as_u16();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ClientError::transport(url, &e))?;
            if attempt >= THROTTLED_ATTEMPTS || !is_throttled(status, &bytes) {
                return Ok((status, bytes));
            }
            // Full jitter: clients throttled together do not come back together.
            let mut random = [0u8; 2];
            let _ = aws_lc_rs::rand::fill(&mut random);
            let fraction = f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
            tokio::time::sleep(pause.mul_f64(0.5 + fraction / 2.0)).await;
            pause = (pause * 2).min(MAX_THROTTLED_PAUSE);
        }
        unreachable!("the loop returns by its last attempt")
    }

    /// Signs and sends a request like [`Connection::send`], and returns the response
    /// with its body not yet read (for large downloads).
    pub(crate) async fn send_streaming(
        &self,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: impl Into<bytes::Bytes>,
    ) -> Result<reqwest::Response, ClientError> {
        let body = body.into();
        let uri: Uri = url
            .parse()
            .map_err(|_| ClientError::InvalidEndpoint(url.to_owned()))?;
        kcm_sigv4::sign(
            &method,
            &uri,
            &mut headers,
            &body,
            &self.credentials,
            &self.region,
            self.service,
            time::OffsetDateTime::now_utc(),
        )?;
        self.http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::transport(url, &e))
    }
}

/// Attempts of a request the server throttles, the first included.
pub(crate) const THROTTLED_ATTEMPTS: u32 = 6;
/// The pause before the second attempt; it doubles up to [`MAX_THROTTLED_PAUSE`].
const FIRST_THROTTLED_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest pause between attempts.
const MAX_THROTTLED_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a response is a request-rate quota's refusal: `429` (the REST API), or
/// AWS's `ThrottlingException` (status 400, named in the body).
fn is_throttled(status: u16, body: &[u8]) -> bool {
    status == 429
        || (status == 400
            && matches!(
                crate::error::kms_error(status, body),
                ClientError::Api { ref error_type, .. } if error_type == "ThrottlingException"
            ))
}

/// The constructor and settings every client over a [`Connection`] has (a `conn`
/// field), written once for the KMS and the REST client.
macro_rules! connection_setup {
    ($service:expr) => {
        /// A client for `endpoint` (e.g. `http://127.0.0.1:8990`) in
        /// [`DEFAULT_REGION`](crate::DEFAULT_REGION).
        pub fn new(
            endpoint: &str,
            credentials: kcm_sigv4::Credentials,
        ) -> Result<Self, crate::ClientError> {
            let conn = crate::signing::Connection::new(endpoint, credentials, $service)?;
            Ok(Self { conn })
        }

        /// Uses `region` for signing instead of [`DEFAULT_REGION`](crate::DEFAULT_REGION).
        pub fn with_region(self, region: impl Into<String>) -> Self {
            let conn = self.conn.with_region(region.into());
            Self { conn }
        }

        /// Uses a caller-configured HTTP client (timeouts, pool sizes, …).
        pub fn with_http_client(self, http: reqwest::Client) -> Self {
            let conn = self.conn.with_http_client(http);
            Self { conn }
        }

        /// The signing region.
        pub fn region(&self) -> &str {
            self.conn.region()
        }
    };
}
pub(crate) use connection_setup;

/// The headers of a KMS JSON request for `operation`.
pub(crate) fn kms_headers(operation: &str) -> Result<HeaderMap, ClientError> {
    let mut h = HeaderMap::with_capacity(6);
    let target = HeaderValue::from_str(&format!("TrentService.{operation}")).map_err(|_| {
        ClientError::Signing(kcm_sigv4::SigV4Error::Unsignable(
            "operation name is not a valid header value".into(),
        ))
    })?;
    h.insert("x-amz-target", target);
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::is_throttled;

    #[test]
    fn throttling_is_recognised_in_both_apis_and_nothing_else_is() {
        assert!(is_throttled(
            429,
            b"{\"error\":{\"code\":\"Throttled\",\"message\":\"x\"}}"
        ));
        assert!(is_throttled(
            400,
            b"{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}"
        ));
        assert!(!is_throttled(
            400,
            b"{\"__type\":\"ValidationException\",\"message\":\"x\"}"
        ));
        assert!(!is_throttled(503, b"{\"__type\":\"ThrottlingException\"}"));
        assert!(!is_throttled(400, b"not json"));
    }
}
