//! Building signed requests shared by the KMS client, the REST client and the bench.

use http::{HeaderMap, HeaderValue, Method, Uri};
use kcm_sigv4::Credentials;

use crate::ClientError;

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

/// Signs a request for `url` and returns its headers (including `host`,
/// `x-amz-date` and `authorization`). `headers` are the caller's extra headers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn signed_headers(
    method: &Method,
    url: &str,
    mut headers: HeaderMap,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
) -> Result<HeaderMap, ClientError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ClientError::InvalidEndpoint(url.to_owned()))?;
    kcm_sigv4::sign(
        method,
        &uri,
        &mut headers,
        body,
        creds,
        region,
        service,
        time::OffsetDateTime::now_utc(),
    )?;
    Ok(headers)
}

/// Signs a request to `url` for `service`, sends it, and returns the status and body.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_signed(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    creds: &Credentials,
    region: &str,
    service: &str,
) -> Result<(u16, bytes::Bytes), ClientError> {
    let response =
        send_signed_streaming(http, method, url, headers, body, creds, region, service).await?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::transport(url, &e))?;
    Ok((status, bytes))
}

/// Signs and sends a request like [`send_signed`], and returns the response with
/// its body not yet read (for large downloads).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_signed_streaming(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    creds: &Credentials,
    region: &str,
    service: &str,
) -> Result<reqwest::Response, ClientError> {
    let headers = signed_headers(&method, url, headers, &body, creds, region, service)?;
    http.request(method, url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| ClientError::transport(url, &e))
}

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
