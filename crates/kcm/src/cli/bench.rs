//! `kcm bench` (the load generator) and `kcm bench-baseline` (the server it is
//! compared with).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use kcm_client::bench::{self, BenchConfig, BenchOperation};
use serde_json::json;

use super::client::Clients;
use super::output::Format;
use super::ClientOptions;

/// `kcm bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// encrypt, decrypt, generate-data-key, sign, generate-mac, post (an unsigned
    /// POST, for a baseline server), xks-encrypt (the XKS proxy API's Encrypt as
    /// AWS KMS sends it: --endpoint is the XKS listener, --profile an access key of
    /// kind xks, --key-id the externalKeyId) or vault-encrypt (Vault Transit's
    /// encrypt: --endpoint is the Vault listener, --profile an access key of kind
    /// vault, --key-id the Transit key's name).
    #[arg(long, default_value = "encrypt")]
    operation: String,
    /// Key to use; a new key is created when omitted (see --key-spec).
    #[arg(long)]
    key_id: Option<String>,
    /// KeySpec of the key created when --key-id is omitted. encrypt, decrypt and
    /// generate-data-key: SYMMETRIC_DEFAULT. sign: an asymmetric spec (default
    /// ECC_NIST_P256; also ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1,
    /// ECC_NIST_EDWARDS25519, RSA_2048/3072/4096, ML_DSA_44/65/87), created with
    /// KeyUsage SIGN_VERIFY. generate-mac: an HMAC spec (default HMAC_256; also
    /// HMAC_224, HMAC_384, HMAC_512), created with KeyUsage GENERATE_VERIFY_MAC.
    #[arg(long, conflicts_with = "key_id")]
    key_spec: Option<String>,
    /// sign only: the SigningAlgorithm, e.g. ECDSA_SHA_256, ED25519_SHA_512,
    /// RSASSA_PKCS1_V1_5_SHA_256, RSASSA_PSS_SHA_256, ML_DSA_SHAKE_256. Default: the
    /// first of the key's SigningAlgorithms (DescribeKey).
    #[arg(long)]
    signing_algorithm: Option<String>,
    /// generate-mac only: the MacAlgorithm (HMAC_SHA_256 for an HMAC_256 key, …).
    /// Default: the key's own, from DescribeKey.
    #[arg(long)]
    mac_algorithm: Option<String>,
    /// Concurrent connections (each runs one request at a time).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Send at most this many requests a second, spread over the connections (a
    /// steady client rather than one as fast as the server answers; latency then
    /// shows what a caller of that rate sees). Default: no limit.
    #[arg(long)]
    rate: Option<f64>,
    /// Plaintext bytes per Encrypt (and of the ciphertext Decrypt uses), data-key
    /// bytes per GenerateDataKey, message bytes (RAW, 1 to 4096) per Sign and
    /// GenerateMac.
    #[arg(long, default_value_t = 32)]
    payload_bytes: usize,
    /// xks-encrypt only: the XksProxyUriPath, `[/<prefix>]/kms/xks/v1`.
    #[arg(long, default_value = "/kms/xks/v1")]
    xks_uri_path: String,
}

impl BenchArgs {
    /// Runs the load and prints the report.
    pub async fn run(self, client: &ClientOptions) -> Result<ExitCode> {
        let operation: BenchOperation = self.operation.parse()?;
        let mut config = BenchConfig::new(client.endpoint.clone(), operation);
        config.region = client.region.clone();
        config.concurrency = self.concurrency.max(1);
        config.duration = Duration::from_secs_f64(self.duration.max(0.1));
        config.warmup = Duration::from_secs_f64(self.warmup.max(0.0));
        config.payload_size = self.payload_bytes;
        if let Some(rate) = self.rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
            bail!("--rate must be a positive number of requests a second, got {rate}");
        }
        config.rate = self.rate;
        config.xks_uri_path = self.xks_uri_path;
        if operation == BenchOperation::XksEncrypt && self.key_id.is_none() {
            bail!("--operation xks-encrypt needs --key-id: the externalKeyId (a key id, or an alias name without alias/, in the system of the xks access key)");
        }
        if operation == BenchOperation::VaultEncrypt && self.key_id.is_none() {
            bail!("--operation vault-encrypt needs --key-id: the Transit key's name (in the system of the vault access key)");
        }
        // The usage a created key needs, and the spec it gets by default.
        let (usage, default_spec) = match operation {
            BenchOperation::Sign => (Some("SIGN_VERIFY"), Some("ECC_NIST_P256")),
            BenchOperation::GenerateMac => (Some("GENERATE_VERIFY_MAC"), Some("HMAC_256")),
            _ => (None, None),
        };
        config.algorithm = match (operation, self.signing_algorithm, self.mac_algorithm) {
            (BenchOperation::Sign, algorithm, None)
            | (BenchOperation::GenerateMac, None, algorithm) => algorithm,
            (_, None, None) => None,
            _ => bail!(
                "--signing-algorithm goes with --operation sign, --mac-algorithm with generate-mac"
            ),
        };
        if operation != BenchOperation::Post {
            let clients = Clients::new(client)?;
            let key_id = match self.key_id {
                Some(k) => k,
                None => {
                    let mut request = json!({"Description": "kcm bench"});
                    if let Some(spec) = self.key_spec.as_deref().or(default_spec) {
                        request["KeySpec"] = json!(spec);
                    }
                    if let Some(usage) = usage {
                        request["KeyUsage"] = json!(usage);
                    }
                    let out = clients
                        .kms("CreateKey", request)
                        .await
                        .context("cannot create a key for the benchmark")?;
                    out["KeyMetadata"]["KeyId"]
                        .as_str()
                        .context("CreateKey returned no KeyId")?
                        .to_string()
                }
            };
            config.key_id = Some(key_id);
            config.credentials = Some(
                kcm_client::load_credentials(
                    Some(&client.profile),
                    client.credentials_file.as_deref(),
                )
                .context("cannot load credentials")?,
            );
        }
        eprintln!(
            "driving {operation} at {} connections for {:.1} s (after {:.1} s warm-up) against {}",
            config.concurrency,
            config.duration.as_secs_f64(),
            config.warmup.as_secs_f64(),
            config.endpoint
        );
        let report = bench::run(config).await?;
        match client.output {
            Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            Format::Text => println!("{report}"),
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `kcm bench-baseline`.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8991")]
    listen: String,
}

impl BaselineArgs {
    /// Serves until killed.
    pub async fn run(self) -> Result<ExitCode> {
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        eprintln!("baseline server listening on {}", listener.local_addr()?);
        bench::serve_baseline(listener).await?;
        Ok(ExitCode::SUCCESS)
    }
}
