//! Signed calls to the proxy: one HTTPS client per keystore, SigV4 per request,
//! and the spec's error bodies turned into [`Failure`]s.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Uri};
use kcm_core::keystore::{KeystoreError, KeystoreResult};
use kcm_sigv4::Credentials;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use crate::wire::{Empty, Envelope, ErrorBody, HealthResponse, RequestMetadata};
use crate::XksConfig;

/// The longest answer kcm reads from a proxy. Every answer the API defines is a few
/// hundred bytes (kcm's plaintexts are 32-byte keys; a health answer has at most ten
/// fleet entries): a proxy that sends more is not speaking the API, and kcm does not
/// buffer it.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// The longest `errorName` kept (the spec's names are under 32 characters).
const MAX_ERROR_NAME: usize = 64;

/// Why a call did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// No usable answer: connection, TLS, timeout, or a body kcm cannot read.
    Transport(String),
    /// The proxy answered with one of the spec's errors.
    Proxy {
        /// The HTTP status.
        status: u16,
        /// The spec's `errorName`.
        error_name: String,
        /// The proxy's `errorMessage`, if any.
        message: Option<String>,
    },
}

/// One proxy endpoint.
#[derive(Debug)]
pub struct Proxy {
    http: reqwest::Client,
    base: String,
    uri_path: String,
    credentials: Credentials,
    region: String,
    key_arn_prefix: String,
}

impl Proxy {
    pub fn new(config: XksConfig) -> KeystoreResult<Self> {
        let bad = |why: String| {
            KeystoreError::Misconfigured(format!("xks keystore {:?}: {why}", config.name))
        };
        let endpoint = config.endpoint.trim_end_matches('/');
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| bad(format!("endpoint {endpoint:?} is not a URL")))?;
        if uri.scheme_str() != Some("https") || uri.host().is_none() {
            return Err(bad(format!(
                "endpoint {endpoint:?} must be https://<server>[:port]: the proxy API carries key material and runs over TLS only"
            )));
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(bad(format!(
                "endpoint {endpoint:?} must not have a path; put it in uri_path"
            )));
        }
        let uri_path = config.uri_path.trim_end_matches('/').to_string();
        let path_ok = uri_path.starts_with('/')
            && uri_path.ends_with("/kms/xks/v1")
            && uri_path.len() <= 128
            && uri_path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'));
        if !path_ok {
            return Err(bad(format!(
                "uri_path {uri_path:?} must be [/<prefix>]/kms/xks/v1, at most 128 of a-z, A-Z, 0-9, '/', '-', '_'"
            )));
        }
        if config.region.is_empty() || config.credentials.access_key_id().is_empty() {
            return Err(bad("region and access_key_id must not be empty".into()));
        }
        let identity =
            config
                .client_identity
                .as_ref()
                .map(|(cert, key)| kcm_tls_client::ClientIdentity {
                    cert_file: cert,
                    key_file: key,
                });
        let tls = kcm_tls_client::client_config_with_identity(
            &config.endpoint,
            config.ca_file.as_deref(),
            identity,
            "ca_file",
        )
        .map_err(bad)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // The API has no redirects, and a followed 307 would send the request's
            // system key to wherever the answer points: a redirect is an error.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|e| bad(format!("cannot build the HTTPS client: {e}")))?;
        Ok(Self {
            http,
            base: endpoint.to_string(),
            uri_path,
            credentials: config.credentials,
            region: config.region,
            key_arn_prefix: format!("kcm:{}:", config.name),
        })
    }

    pub fn uri_path(&self) -> &str {
        &self.uri_path
    }

    /// POSTs `<uri_path>/keys/<key_id>/<op>` with the body `build` makes from
    /// fresh request metadata.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        key_id: &str,
        op: &str,
        kms_operation: &str,
        payload: &Req,
    ) -> Result<Resp, Failure> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let key_arn = format!("{}{key_id}", self.key_arn_prefix);
        let body = Envelope {
            request_metadata: RequestMetadata {
                aws_principal_arn: Some("kcm"),
                kms_key_arn: Some(&key_arn),
                kms_operation,
                kms_request_id: &request_id,
            },
            payload,
        };
        let path = format!("{}/keys/{key_id}/{op}", self.uri_path);
        self.post(&path, &body, &request_id).await
    }

    /// POSTs `<uri_path>/health`.
    pub async fn call_health(&self) -> Result<HealthResponse, Failure> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = Envelope {
            request_metadata: RequestMetadata {
                aws_principal_arn: None,
                kms_key_arn: None,
                kms_operation: "KmsHealthCheck",
                kms_request_id: &request_id,
            },
            payload: &Empty {},
        };
        let path = format!("{}/health", self.uri_path);
        self.post(&path, &body, &request_id).await
    }

    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
        request_id: &str,
    ) -> Result<Resp, Failure> {
        // The body may hold a system key in Base64: keep it in memory that is
        // wiped when the request is done with it.
        let body = Zeroizing::new(
            serde_json::to_vec(body)
                .map_err(|e| Failure::Transport(format!("cannot encode the request: {e}")))?,
        );
        let url = format!("{}{path}", self.base);
        let uri: Uri = url
            .parse()
            .map_err(|_| Failure::Transport(format!("{url:?} is not a valid URL")))?;
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        kcm_sigv4::sign(
            &Method::POST,
            &uri,
            &mut headers,
            &body,
            &self.credentials,
            &self.region,
            crate::SIGV4_SERVICE,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| Failure::Transport(format!("cannot sign the request: {e}")))?;
        tracing::debug!(%path, kms_request_id = %request_id, "xks call");

        let mut response = self
            .http
            .post(&url)
            .headers(headers)
            .body(Bytes::from_owner(body))
            .send()
            .await
            .map_err(|e| Failure::Transport(describe(&e)))?;
        let status = response.status().as_u16();
        let too_long = || {
            Failure::Transport(format!(
                "the proxy's answer (HTTP {status}) is over {MAX_RESPONSE} bytes"
            ))
        };
        let announced = response.content_length().unwrap_or(0);
        if announced > MAX_RESPONSE as u64 {
            return Err(too_long());
        }
        // A decrypt response holds a system key: wipe our copy once parsed.
        let mut owned = Zeroizing::new(Vec::with_capacity(announced as usize));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Transport(describe(&e)))?
        {
            if owned.len() + chunk.len() > MAX_RESPONSE {
                return Err(too_long());
            }
            owned.extend_from_slice(&chunk);
        }
        if status == 200 {
            let parsed = serde_json::from_slice(&owned).map_err(|_| {
                Failure::Transport(
                    "the proxy's response is not the JSON the XKS API defines".into(),
                )
            });
            owned.zeroize();
            return parsed;
        }
        match serde_json::from_slice::<ErrorBody>(&owned) {
            Ok(e) => Err(Failure::Proxy {
                status,
                error_name: printable(e.error_name, MAX_ERROR_NAME),
                message: e.error_message.map(|m| printable(m, 511)),
            }),
            Err(_) => Err(Failure::Transport(format!(
                "the proxy answered HTTP {status} without an XKS error body"
            ))),
        }
    }
}

/// The proxy's words (its `errorMessage`, `errorName`), limited to what the spec
/// allows a message (printable ASCII, under 512 characters; `max` characters here)
/// so they cannot inject into kcm's logs.
fn printable(text: String, max: usize) -> String {
    text.chars()
        .filter(|c| (' '..='~').contains(c))
        .take(max)
        .collect()
}

/// A transport error with its causes (reqwest's own text hides the TLS reason).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "the call timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the call failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
