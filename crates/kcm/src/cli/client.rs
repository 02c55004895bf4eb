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

    /// `GET /v1/…`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self.rest.get(below_v1(path)).await?)
    }

    /// `POST /v1/…` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        Ok(self.rest.post(below_v1(path), &body).await?)
    }

    /// `GET /v1/…` of a binary resource, streamed into `sink`; `progress(received,
    /// total)` after each piece. Returns the bytes received.
    pub async fn download(
        &self,
        path: &str,
        sink: &mut impl std::io::Write,
        progress: impl FnMut(u64, Option<u64>),
    ) -> Result<u64> {
        Ok(self.rest.download(below_v1(path), sink, progress).await?)
    }

    /// `DELETE /v1/…`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        Ok(self.rest.delete(below_v1(path)).await?)
    }
}

/// The REST client takes paths below `/v1`; commands spell them in full for clarity.
fn below_v1(path: &str) -> &str {
    path.strip_prefix("/v1").unwrap_or(path)
}

/// A user-supplied name or id, percent-encoded for use as one path segment.
pub fn seg(s: &str) -> String {
    RestClient::encode_segment(s)
}
