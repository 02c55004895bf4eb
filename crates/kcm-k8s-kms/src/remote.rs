//! The backend of `kcm kms-plugin`: a kcm server, over its AWS KMS API.

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use kcm_client::{ClientError, KmsClient};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{BackendError, KeyBackend};

/// The encryption-context key that binds a ciphertext to its cluster.
pub const CLUSTER_CONTEXT_KEY: &str = "kcm:kubernetes-cluster";

/// Checks a cluster name (the value bound as [`CLUSTER_CONTEXT_KEY`]): 1 to 256
/// bytes. The same rule for the standalone and the embedded plugin, which must be
/// able to read each other's ciphertexts.
pub fn check_cluster_name(cluster: &str) -> Result<(), String> {
    if cluster.is_empty() || cluster.len() > 256 {
        return Err(format!(
            "the cluster name must be 1 to 256 bytes, not {}",
            cluster.len()
        ));
    }
    Ok(())
}

/// One kcm service key on a kcm server, used for one cluster.
#[derive(Debug, Clone)]
pub struct RemoteKey {
    client: KmsClient,
    key_id: String,
    context: BTreeMap<&'static str, String>,
}

impl RemoteKey {
    /// The key `key_id` (id, ARN or alias) on the server `client` talks to, for the
    /// cluster `cluster`.
    pub fn new(client: KmsClient, key_id: impl Into<String>, cluster: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            context: BTreeMap::from([(CLUSTER_CONTEXT_KEY, cluster.into())]),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptBody<'a> {
    key_id: &'a str,
    plaintext: Zeroizing<String>,
    encryption_context: &'a BTreeMap<&'static str, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptAnswer {
    ciphertext_blob: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptBody<'a> {
    key_id: &'a str,
    ciphertext_blob: String,
    encryption_context: &'a BTreeMap<&'static str, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptAnswer {
    plaintext: Zeroizing<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeBody<'a> {
    key_id: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAnswer {
    key_metadata: Metadata,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    arn: String,
    key_state: String,
    #[serde(default)]
    kcm_key_state: Option<String>,
    #[serde(default)]
    current_key_material_id: Option<String>,
}

/// What a failed call means to the plugin.
fn classify(e: ClientError) -> BackendError {
    let message = e.to_string();
    match e.error_type() {
        Some(
            "DisabledException"
            | "KMSInvalidStateException"
            | "NotFoundException"
            | "KeyUnavailableException",
        ) => BackendError::KeyUnusable(message),
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "MissingAuthenticationTokenException",
        ) => BackendError::Denied(message),
        Some(
            "InvalidCiphertextException"
            | "IncorrectKeyException"
            | "ValidationException"
            | "InvalidKeyUsageException",
        ) => BackendError::Invalid(message),
        // Throttling, dependency timeouts, internal errors, transport failures and
        // anything unexpected: the caller may retry.
        _ => BackendError::Unavailable(message),
    }
}

fn undecodable(what: &str) -> BackendError {
    BackendError::Unavailable(format!("kcm answered with {what} that is not base64"))
}

impl RemoteKey {
    /// Calls `operation` on kcm, naming the API server's request `uid` for kcm's
    /// audit record; a refusal becomes what it means to the plugin.
    async fn call<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        body: &Req,
        uid: Option<&str>,
    ) -> Result<Resp, BackendError> {
        self.client
            .call_tagged(operation, body, uid)
            .await
            .map_err(classify)
    }
}

#[async_trait]
impl KeyBackend for RemoteKey {
    async fn encrypt(&self, plaintext: &[u8], uid: &str) -> Result<Vec<u8>, BackendError> {
        let body = EncryptBody {
            key_id: &self.key_id,
            plaintext: Zeroizing::new(B64.encode(plaintext)),
            encryption_context: &self.context,
        };
        let answer: EncryptAnswer = self.call("Encrypt", &body, Some(uid)).await?;
        B64.decode(answer.ciphertext_blob)
            .map_err(|_| undecodable("a ciphertext"))
    }

    async fn decrypt(
        &self,
        ciphertext: &[u8],
        uid: &str,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let body = DecryptBody {
            key_id: &self.key_id,
            ciphertext_blob: B64.encode(ciphertext),
            encryption_context: &self.context,
        };
        let answer: DecryptAnswer = self.call("Decrypt", &body, Some(uid)).await?;
        B64.decode(answer.plaintext.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| undecodable("a plaintext"))
    }

    async fn probe(&self) -> Result<String, BackendError> {
        let described: DescribeAnswer = self
            .client
            .call_typed(
                "DescribeKey",
                &DescribeBody {
                    key_id: &self.key_id,
                },
            )
            .await
            .map_err(classify)?;
        let meta = described.key_metadata;
        if meta.key_state != "Enabled" {
            let state = meta.kcm_key_state.as_deref().unwrap_or(&meta.key_state);
            return Err(BackendError::KeyUnusable(format!(
                "the key {} is {state}",
                meta.arn
            )));
        }
        // The key itself is enabled; whether every key above it (system key, root
        // key) lets it encrypt shows only by encrypting.
        self.encrypt(&[0], "kms-plugin-status").await?;
        Ok(match meta.current_key_material_id {
            Some(material) => format!("{}:{material}", meta.arn),
            None => meta.arn,
        })
    }
}
