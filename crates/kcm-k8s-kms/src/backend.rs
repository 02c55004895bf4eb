//! What the plugin needs of kcm, whichever way it reaches it.

use async_trait::async_trait;
use zeroize::Zeroizing;

/// One kcm service key, seen from the plugin: it encrypts, decrypts, and says which
/// of its versions encrypts now. Implementations bind every ciphertext to the
/// plugin's cluster.
#[async_trait]
pub trait KeyBackend: Send + Sync + 'static {
    /// Encrypts `plaintext` under the key's current version. `uid` is the API
    /// server's request id, for the audit trail.
    async fn encrypt(&self, plaintext: &[u8], uid: &str) -> Result<Vec<u8>, BackendError>;

    /// Decrypts what [`KeyBackend::encrypt`] returned, with whichever version of
    /// the key made it.
    async fn decrypt(
        &self,
        ciphertext: &[u8],
        uid: &str,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError>;

    /// Checks that the key can encrypt now, and returns the Kubernetes key id of
    /// its current version (it changes when the key rotates).
    async fn probe(&self) -> Result<String, BackendError>;
}

/// The gRPC code the API server acts on for `e`: retry on `UNAVAILABLE`, report
/// the reason of the others.
pub(crate) fn grpc_code(e: &BackendError) -> tonic::Code {
    match e {
        BackendError::Unavailable(_) => tonic::Code::Unavailable,
        BackendError::KeyUnusable(_) => tonic::Code::FailedPrecondition,
        BackendError::Denied(_) => tonic::Code::PermissionDenied,
        BackendError::Invalid(_) => tonic::Code::InvalidArgument,
    }
}

/// Why kcm did not do what the plugin asked. Each kind becomes the gRPC code the
/// API server expects for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// kcm cannot be reached or failed transiently (retry later).
    #[error("kcm is unavailable: {0}")]
    Unavailable(String),
    /// The key, or a key above it, may not be used now: disabled, pending
    /// deletion, cut off by the kill switch, compromised.
    #[error("the key cannot be used: {0}")]
    KeyUnusable(String),
    /// The plugin's access key may not do this.
    #[error("kcm refused the plugin's access key: {0}")]
    Denied(String),
    /// The input is not acceptable: a ciphertext that is not this key's and this
    /// cluster's, or that was altered.
    #[error("{0}")]
    Invalid(String),
}
