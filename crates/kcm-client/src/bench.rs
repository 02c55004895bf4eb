//! A load generator for the KMS API, and a trivial baseline server to compare with.
//!
//! [`run`] opens `concurrency` keep-alive connections (one HTTP client whose idle
//! pool holds `concurrency` connections per host, and `concurrency` tasks that each
//! loop request → response), signs every request afresh with SigV4 (the realistic
//! client cost), and records the latency of each successful request. Requests that
//! start during the warm-up are not counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use kcm_sigv4::Credentials;
use serde::Serialize;

use crate::error::kms_error;
use crate::histogram::Histogram;
use crate::signing::{kms_headers, Endpoint};
use crate::{ClientError, KmsClient, DEFAULT_REGION};

/// The request the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BenchOperation {
    /// KMS `Encrypt` of a `payload_size`-byte plaintext.
    Encrypt,
    /// KMS `Decrypt` of one ciphertext (made by an `Encrypt` before the run).
    Decrypt,
    /// KMS `GenerateDataKey` with `NumberOfBytes = payload_size`.
    GenerateDataKey,
    /// KMS `Sign` of a `payload_size`-byte message (`MessageType` RAW) with an
    /// asymmetric key.
    Sign,
    /// KMS `GenerateMac` of a `payload_size`-byte message with an HMAC key.
    GenerateMac,
    /// An unsigned `POST /` with body `{}`: measures a baseline server.
    Post,
    /// The XKS proxy API's `Encrypt` of a `payload_size`-byte plaintext, as AWS KMS
    /// sends it (request metadata, 32 bytes of AAD, the integrity value asked
    /// for), to `<endpoint><xks_uri_path>/keys/<key id>/encrypt`, signed for
    /// `kms-xks-proxy` with an access key of kind `xks`.
    XksEncrypt,
    /// Vault Transit's `encrypt` of a `payload_size`-byte plaintext, to
    /// `<endpoint>/v1/transit/encrypt/<key name>` with the Vault token of an access
    /// key of kind `vault` (`kcm.<id>.<secret>`) in `X-Vault-Token`.
    VaultEncrypt,
}

impl std::fmt::Display for BenchOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BenchOperation::Encrypt => "Encrypt",
            BenchOperation::Decrypt => "Decrypt",
            BenchOperation::GenerateDataKey => "GenerateDataKey",
            BenchOperation::Sign => "Sign",
            BenchOperation::GenerateMac => "GenerateMac",
            BenchOperation::Post => "Post",
            BenchOperation::XksEncrypt => "XksEncrypt",
            BenchOperation::VaultEncrypt => "VaultEncrypt",
        })
    }
}

impl std::str::FromStr for BenchOperation {
    type Err = ClientError;

    /// Case-insensitive: `encrypt`, `decrypt`, `generate-data-key` (or
    /// `GenerateDataKey`), `sign`, `generate-mac`, `post`, `xks-encrypt`,
    /// `vault-encrypt`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "encrypt" => Ok(BenchOperation::Encrypt),
            "decrypt" => Ok(BenchOperation::Decrypt),
            "generatedatakey" => Ok(BenchOperation::GenerateDataKey),
            "sign" => Ok(BenchOperation::Sign),
            "generatemac" => Ok(BenchOperation::GenerateMac),
            "post" => Ok(BenchOperation::Post),
            "xksencrypt" => Ok(BenchOperation::XksEncrypt),
            "vaultencrypt" => Ok(BenchOperation::VaultEncrypt),
            _ => Err(ClientError::Config(format!(
                "unknown operation '{s}': expected encrypt, decrypt, generate-data-key, sign, generate-mac, post, xks-encrypt or vault-encrypt"
            ))),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The server, e.g. `http://127.0.0.1:8990`.
    pub endpoint: String,
    /// The access key (required for every operation but [`BenchOperation::Post`]).
    pub credentials: Option<Credentials>,
    /// The signing region.
    pub region: String,
    /// The request to send.
    pub operation: BenchOperation,
    /// The KMS key (required for every operation but [`BenchOperation::Post`]); for
    /// [`BenchOperation::XksEncrypt`], the `externalKeyId`.
    pub key_id: Option<String>,
    /// [`BenchOperation::XksEncrypt`]: the `XksProxyUriPath` (`[/<prefix>]/kms/xks/v1`).
    pub xks_uri_path: String,
    /// Plaintext bytes for `Encrypt`/`Decrypt`, data-key bytes for `GenerateDataKey`,
    /// message bytes for `Sign`/`GenerateMac`.
    pub payload_size: usize,
    /// The `SigningAlgorithm` (`Sign`) or `MacAlgorithm` (`GenerateMac`); when
    /// `None`, the first one the key's `DescribeKey` lists.
    pub algorithm: Option<String>,
    /// Connections and concurrent requests.
    pub concurrency: usize,
    /// How long to measure.
    pub duration: Duration,
    /// How long to run before measuring.
    pub warmup: Duration,
    /// At most this many requests a second over all connections (each connection
    /// sends at its share of the rate; one that falls behind sends at once, without
    /// catching up). `None`: as fast as the server answers.
    pub rate: Option<f64>,
}

impl BenchConfig {
    /// Defaults: region `us-east-1`, payload 32 bytes, concurrency 32, 10 s after a
    /// 2 s warm-up, no credentials or key.
    pub fn new(endpoint: impl Into<String>, operation: BenchOperation) -> Self {
        Self {
            endpoint: endpoint.into(),
            credentials: None,
            region: DEFAULT_REGION.to_owned(),
            operation,
            key_id: None,
            xks_uri_path: "/kms/xks/v1".to_owned(),
            payload_size: 32,
            algorithm: None,
            concurrency: 32,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            rate: None,
        }
    }
}

/// Latency percentiles of successful requests, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The operation.
    pub operation: BenchOperation,
    /// The server.
    pub endpoint: String,
    /// Connections and concurrent requests.
    pub concurrency: usize,
    /// The payload size setting.
    pub payload_size: usize,
    /// The signing or MAC algorithm (`Sign`, `GenerateMac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// The measured time, in seconds.
    pub duration_secs: f64,
    /// Successful (2xx) requests measured.
    pub requests: u64,
    /// Failed requests measured (non-2xx or transport errors).
    pub errors: u64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Latency of successful requests, microseconds.
    pub latency_us: LatencySummary,
    /// The first error seen (also during warm-up), if any.
    pub first_error: Option<String>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency_us;
        let algorithm = self
            .algorithm
            .as_ref()
            .map(|a| format!(" {a}"))
            .unwrap_or_default();
        writeln!(
            f,
            "operation     {}{algorithm} ({} bytes)",
            self.operation, self.payload_size
        )?;
        writeln!(f, "endpoint      {}", self.endpoint)?;
        writeln!(f, "concurrency   {}", self.concurrency)?;
        writeln!(f, "duration      {:.2} s", self.duration_secs)?;
        writeln!(
            f,
            "requests      {} ok, {} errors",
            self.requests, self.errors
        )?;
        writeln!(f, "throughput    {:.1} req/s", self.requests_per_sec)?;
        writeln!(
            f,
            "latency (µs)  mean {:.0}   p50 {}   p99 {}   p99.9 {}   max {}",
            l.mean, l.p50, l.p99, l.p999, l.max
        )?;
        if let Some(e) = &self.first_error {
            writeln!(f, "first error   {e}")?;
        }
        Ok(())
    }
}

/// One prepared request, shared by all workers.
struct Prepared {
    url: reqwest::Url,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// Credentials and region, when the request is signed.
    signer: Option<(Credentials, String)>,
    /// The SigV4 service it is signed for.
    service: &'static str,
    /// The signing or MAC algorithm.
    algorithm: Option<String>,
}

/// What one worker measured.
#[derive(Default)]
struct WorkerResult {
    latencies: Histogram,
    errors: u64,
    first_error: Option<String>,
}

fn required<'a, T>(
    value: &'a Option<T>,
    what: &str,
    op: BenchOperation,
) -> Result<&'a T, ClientError> {
    value
        .as_ref()
        .ok_or_else(|| ClientError::Config(format!("{op} needs {what}")))
}

async fn prepare(config: &BenchConfig) -> Result<Prepared, ClientError> {
    let endpoint = Endpoint::parse(&config.endpoint)?;
    let (url, uri) = target(&endpoint, "/")?;
    let op = config.operation;
    if op == BenchOperation::Post {
        let headers = json_headers();
        return Ok(Prepared {
            url,
            uri,
            headers,
            body: Bytes::from_static(b"{}"),
            signer: None,
            service: "kms",
            algorithm: None,
        });
    }
    let creds = required(&config.credentials, "credentials", op)?;
    let key_id = required(&config.key_id, "a key id", op)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let random_payload = || -> Result<String, ClientError> {
        let mut p = vec![0u8; config.payload_size];
        aws_lc_rs::rand::fill(&mut p)
            .map_err(|_| ClientError::Config("the random generator failed".into()))?;
        Ok(b64.encode(p))
    };
    let kms = || -> Result<KmsClient, ClientError> {
        Ok(KmsClient::new(&config.endpoint, creds.clone())?.with_region(config.region.clone()))
    };
    if op == BenchOperation::XksEncrypt {
        return prepare_xks_encrypt(config, &endpoint, creds, key_id, random_payload()?);
    }
    if op == BenchOperation::VaultEncrypt {
        return prepare_vault_encrypt(&endpoint, creds, key_id, random_payload()?);
    }
    let mut algorithm = None;
    let (operation, body) = match op {
        BenchOperation::Encrypt => (
            "Encrypt",
            serde_json::json!({"KeyId": key_id, "Plaintext": random_payload()?}),
        ),
        BenchOperation::GenerateDataKey => {
            if !(1..=1024).contains(&config.payload_size) {
                return Err(ClientError::Config(
                    "GenerateDataKey needs a payload size from 1 to 1024 bytes".into(),
                ));
            }
            (
                "GenerateDataKey",
                serde_json::json!({"KeyId": key_id, "NumberOfBytes": config.payload_size}),
            )
        }
        BenchOperation::Decrypt => {
            let encrypted = kms()?
                .call(
                    "Encrypt",
                    &serde_json::json!({"KeyId": key_id, "Plaintext": random_payload()?}),
                )
                .await?;
            let blob = encrypted.get("CiphertextBlob").cloned().ok_or_else(|| {
                ClientError::InvalidResponse {
                    status: 200,
                    detail: "Encrypt returned no CiphertextBlob".into(),
                }
            })?;
            (
                "Decrypt",
                serde_json::json!({"KeyId": key_id, "CiphertextBlob": blob}),
            )
        }
        BenchOperation::Sign | BenchOperation::GenerateMac => {
            if !(1..=4096).contains(&config.payload_size) {
                return Err(ClientError::Config(format!(
                    "{op} needs a payload size from 1 to 4096 bytes"
                )));
            }
            let (operation, field, listed) = if op == BenchOperation::Sign {
                ("Sign", "SigningAlgorithm", "SigningAlgorithms")
            } else {
                ("GenerateMac", "MacAlgorithm", "MacAlgorithms")
            };
            let chosen = match &config.algorithm {
                Some(a) => a.clone(),
                None => {
                    let described = kms()?
                        .call("DescribeKey", &serde_json::json!({"KeyId": key_id}))
                        .await?;
                    described["KeyMetadata"][listed][0]
                        .as_str()
                        .ok_or_else(|| {
                            ClientError::Config(format!(
                                "key {key_id} lists no {listed}: {op} needs a key of a usage that has them"
                            ))
                        })?
                        .to_owned()
                }
            };
            let body =
                serde_json::json!({"KeyId": key_id, "Message": random_payload()?, field: chosen});
            algorithm = Some(chosen);
            (operation, body)
        }
        BenchOperation::Post | BenchOperation::XksEncrypt | BenchOperation::VaultEncrypt => {
            unreachable!("handled above")
        }
    };
    Ok(Prepared {
        url,
        uri,
        headers: kms_headers(operation)?,
        body: json_body(&body)?,
        signer: Some((creds.clone(), config.region.clone())),
        service: "kms",
        algorithm,
    })
}

/// An XKS Encrypt as AWS KMS sends one.
fn prepare_xks_encrypt(
    config: &BenchConfig,
    endpoint: &Endpoint,
    creds: &Credentials,
    key_id: &str,
    plaintext_b64: String,
) -> Result<Prepared, ClientError> {
    let (url, uri) = target(
        endpoint,
        &format!("{}/keys/{key_id}/encrypt", config.xks_uri_path),
    )?;
    let body = serde_json::json!({
        "requestMetadata": {
            "awsPrincipalArn": "arn:aws:iam::123456789012:role/kcm-bench",
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/kcm-bench",
            "kmsOperation": "GenerateDataKey",
            "kmsRequestId": "kcm-bench",
        },
        "plaintext": plaintext_b64,
        "additionalAuthenticatedData": base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        "encryptionAlgorithm": "AES_GCM",
        "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
    });
    let headers = json_headers();
    Ok(Prepared {
        url,
        uri,
        headers,
        body: json_body(&body)?,
        signer: Some((creds.clone(), config.region.clone())),
        service: "kms-xks-proxy",
        algorithm: None,
    })
}

/// Vault Transit's encrypt of `plaintext_b64` under the key `name`, with the Vault
/// token of `creds` (an access key of kind `vault`): no signature, the token in a
/// header.
fn prepare_vault_encrypt(
    endpoint: &Endpoint,
    creds: &Credentials,
    name: &str,
    plaintext_b64: String,
) -> Result<Prepared, ClientError> {
    let (url, uri) = target(endpoint, &format!("/v1/transit/encrypt/{name}"))?;
    let token = format!("kcm.{}.{}", creds.access_key_id(), creds.expose_secret());
    let mut token = http::HeaderValue::from_str(&token)
        .map_err(|_| ClientError::Config("the access key does not make a header value".into()))?;
    token.set_sensitive(true);
    let mut headers = json_headers();
    headers.insert("x-vault-token", token);
    let body = serde_json::json!({ "plaintext": plaintext_b64 });
    Ok(Prepared {
        url,
        uri,
        headers,
        body: json_body(&body)?,
        signer: None,
        service: "vault",
        algorithm: None,
    })
}

/// The URL `path` of `endpoint`, as reqwest sends to and SigV4 signs.
fn target(endpoint: &Endpoint, path: &str) -> Result<(reqwest::Url, Uri), ClientError> {
    let url_str = endpoint.url(path);
    let url =
        reqwest::Url::parse(&url_str).map_err(|_| ClientError::InvalidEndpoint(url_str.clone()))?;
    let uri: Uri = url_str
        .parse()
        .map_err(|_| ClientError::InvalidEndpoint(url_str.clone()))?;
    Ok((url, uri))
}

/// `body` as the bytes sent.
fn json_body(body: &serde_json::Value) -> Result<Bytes, ClientError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| ClientError::Config(e.to_string()))
}

/// Headers of a JSON body.
fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers
}

/// Sends one request and reads the whole response; `Err` describes a failure.
async fn one_request(client: &reqwest::Client, p: &Prepared) -> Result<(), String> {
    let mut headers = p.headers.clone();
    if let Some((creds, region)) = &p.signer {
        kcm_sigv4::sign(
            &Method::POST,
            &p.uri,
            &mut headers,
            &p.body,
            creds,
            region,
            p.service,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| e.to_string())?;
    }
    let response = client
        .post(p.url.clone())
        .headers(headers)
        .body(p.body.clone())
        .send()
        .await
        .map_err(|e| ClientError::transport(p.url.as_str(), &e).to_string())?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::transport(p.url.as_str(), &e).to_string())?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(kms_error(status, &bytes).to_string())
    }
}

async fn worker(
    client: reqwest::Client,
    p: Arc<Prepared>,
    measure_from: Instant,
    end: Instant,
    pace: Option<Duration>,
) -> WorkerResult {
    let mut r = WorkerResult::default();
    let mut next = Instant::now();
    loop {
        if let Some(interval) = pace {
            tokio::time::sleep_until(next.into()).await;
            next = (next + interval).max(Instant::now());
        }
        let start = Instant::now();
        if start >= end {
            break;
        }
        let outcome = one_request(&client, &p).await;
        let measured = start >= measure_from;
        match outcome {
            Ok(()) if measured => {
                let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                r.latencies.record(us);
            }
            Ok(()) => {}
            Err(e) => {
                if measured {
                    r.errors += 1;
                }
                r.first_error.get_or_insert(e);
            }
        }
    }
    r
}

/// Runs the benchmark described by `config`.
///
/// Fails only when the configuration is unusable or the setup (the `Encrypt`
/// before a `Decrypt` run, the `DescribeKey` that picks a `Sign` or `GenerateMac`
/// algorithm) fails; request failures during the run are counted.
pub async fn run(config: BenchConfig) -> Result<BenchReport, ClientError> {
    let concurrency = config.concurrency.max(1);
    let prepared = Arc::new(prepare(&config).await?);
    let client = crate::signing::http_builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .http1_only()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
    let measure_from = Instant::now() + config.warmup;
    let end = measure_from + config.duration;
    let pace = config
        .rate
        .filter(|r| *r > 0.0)
        .map(|rate| Duration::from_secs_f64(concurrency as f64 / rate));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                Arc::clone(&prepared),
                measure_from,
                end,
                pace,
            ))
        })
        .collect();
    let mut total = WorkerResult::default();
    for task in tasks {
        let r = task
            .await
            .map_err(|e| ClientError::Config(format!("a benchmark task failed: {e}")))?;
        total.latencies.merge(&r.latencies);
        total.errors += r.errors;
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    let elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let requests = total.latencies.count();
    let h = &total.latencies;
    Ok(BenchReport {
        operation: config.operation,
        endpoint: config.endpoint,
        concurrency,
        payload_size: config.payload_size,
        algorithm: prepared.algorithm.clone(),
        duration_secs: elapsed,
        requests,
        errors: total.errors,
        requests_per_sec: if elapsed > 0.0 {
            requests as f64 / elapsed
        } else {
            0.0
        },
        latency_us: LatencySummary {
            mean: h.mean(),
            p50: h.quantile(0.50),
            p99: h.quantile(0.99),
            p999: h.quantile(0.999),
            max: h.max(),
        },
        first_error: total.first_error,
    })
}

async fn baseline(method: Method) -> axum::response::Response {
    use axum::response::IntoResponse;
    if method == Method::POST {
        ([(http::header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        http::StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}

/// Serves the benchmark baseline on `listener`: every `POST` (any path) gets
/// `200 {}`. Runs until the listener fails.
pub async fn serve_baseline(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(baseline);
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn post_against_the_baseline_server_succeeds() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_baseline(listener));
        let mut config = BenchConfig::new(format!("http://{addr}"), BenchOperation::Post);
        config.concurrency = 4;
        config.duration = Duration::from_secs(1);
        config.warmup = Duration::from_millis(100);
        let report = run(config).await.unwrap();
        server.abort();
        assert!(report.requests > 0, "{report}");
        assert_eq!(report.errors, 0, "{report}");
        assert!(report.first_error.is_none());
        assert!(report.latency_us.p50 <= report.latency_us.p99);
        assert!(report.latency_us.p99 <= report.latency_us.max);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["operation"], "Post");
        assert!(report.to_string().contains("req/s"));
    }

    #[tokio::test]
    async fn kms_operations_need_credentials_and_a_key() {
        let config = BenchConfig::new("http://127.0.0.1:1", BenchOperation::Encrypt);
        let err = run(config).await.unwrap_err();
        assert!(err.to_string().contains("credentials"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sign_and_generate_mac_take_or_look_up_an_algorithm() {
        // The baseline answers every POST with `{}`: a Sign with a given algorithm
        // succeeds, a DescribeKey lists no algorithm.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_baseline(listener));
        let config = |op, algorithm: Option<&str>, payload_size| {
            let mut c = BenchConfig::new(format!("http://{addr}"), op);
            c.credentials = Some(Credentials::new("AKID", "secret"));
            c.key_id = Some("k".into());
            c.algorithm = algorithm.map(str::to_owned);
            c.payload_size = payload_size;
            c.concurrency = 2;
            c.duration = Duration::from_millis(300);
            c.warmup = Duration::ZERO;
            c
        };
        let report = run(config(BenchOperation::Sign, Some("ECDSA_SHA_256"), 32))
            .await
            .unwrap();
        assert!(report.requests > 0 && report.errors == 0, "{report}");
        assert_eq!(report.algorithm.as_deref(), Some("ECDSA_SHA_256"));
        assert!(report.to_string().contains("Sign ECDSA_SHA_256"));
        let err = run(config(BenchOperation::GenerateMac, None, 32))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("MacAlgorithms"), "{err}");
        let err = run(config(BenchOperation::Sign, Some("ECDSA_SHA_256"), 4097))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1 to 4096"), "{err}");
        server.abort();
    }

    #[tokio::test]
    async fn errors_are_counted_and_reported() {
        // Nothing listens on this port: every request is a transport error.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut config = BenchConfig::new(format!("http://{addr}"), BenchOperation::Post);
        config.concurrency = 1;
        config.duration = Duration::from_millis(200);
        config.warmup = Duration::ZERO;
        let report = run(config).await.unwrap();
        assert_eq!(report.requests, 0);
        assert!(report.errors > 0);
        assert!(report.first_error.unwrap().contains("cannot reach"));
    }

    #[test]
    fn operations_parse() {
        for (name, expected) in [
            ("generate-data-key", BenchOperation::GenerateDataKey),
            ("Decrypt", BenchOperation::Decrypt),
            ("sign", BenchOperation::Sign),
            ("GenerateMac", BenchOperation::GenerateMac),
        ] {
            assert_eq!(name.parse::<BenchOperation>().unwrap(), expected, "{name}");
        }
        assert!("verify".parse::<BenchOperation>().is_err());
    }
}
