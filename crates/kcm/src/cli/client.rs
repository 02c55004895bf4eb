//! The signed clients the commands use, built from the common options.

use anyhow::{Context, Result};
use kcm_client::{load_credentials, KmsClient, RestClient};
use serde_json::Value;

use super::ClientOptions;

/// A KMS client and a `/v1` client with the same credentials.
pub struct Clients {
    kms: KmsClient,
    rest: RestClient,
}

impl Clients {
    /// Loads credentials and builds both clients.
    pub fn new(opts: &ClientOptions) -> Result<Self> {
        let creds = load_credentials(Some(&opts.profile), opts.credentials_file.as_deref())
            .context("cannot load credentials")?;
        let kms = KmsClient::new(&opts.endpoint, creds.clone())?.with_region(opts.region.clone());
        let rest = RestClient::new(&opts.endpoint, creds)?.with_region(opts.region.clone());
        Ok(Self { kms, rest })
    }

    /// Calls an AWS KMS operation.
    pub async fn kms(&self, operation: &str, body: Value) -> Result<Value> {
        Ok(self.kms.call(operation, &body).await?)
    }

    /// The key `key` names, as its key ARN when `key` is an alias or alias ARN
    /// (looked up with DescribeKey; anything else is passed on as written). The AWS
    /// API's key-managing operations take a key id or ARN only, as AWS's do; kcm's
    /// commands take aliases too.
    pub async fn key_arn(&self, key: &str) -> Result<String> {
        if !key.starts_with("alias/") && !key.contains(":alias/") {
            return Ok(key.to_string());
        }
        let out = self
            .kms("DescribeKey", serde_json::json!({"KeyId": key}))
            .await?;
        out["KeyMetadata"]["Arn"]
            .as_str()
            .map(str::to_string)
            .context("DescribeKey answered without the key's ARN")
    }

    /// The `/v1` client: one typed method per route.
    pub fn rest(&self) -> &RestClient {
        &self.rest
    }
}
