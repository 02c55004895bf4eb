//! The `v2.KeyManagementService` gRPC service: the API's limits, and kcm's answers
//! turned into the codes the API server acts on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::backend::grpc_code;
use crate::proto::key_management_service_server::{
    KeyManagementService, KeyManagementServiceServer,
};
use crate::proto::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, StatusRequest, StatusResponse,
};
use crate::{BackendError, KeyBackend, StatusCache};

/// The API version Status reports.
pub const API_VERSION: &str = "v2";
/// The largest ciphertext the API server accepts from Encrypt (and so the largest
/// Decrypt can meet).
pub const MAX_CIPHERTEXT: usize = 1024;
/// The longest key id the API server accepts.
pub const MAX_KEY_ID: usize = 1024;
/// The largest plaintext Encrypt takes (kcm's own limit; the API server sends a
/// 32-byte seed).
pub const MAX_PLAINTEXT: usize = 4096;
/// The largest request message decoded at all: a ciphertext, a key id and the
/// annotations the API server may send back (32 KiB at most), with room to spare.
const MAX_MESSAGE: usize = 64 * 1024;
/// The longest request uid the plugin logs; a longer one is cut.
const MAX_UID: usize = 128;

/// The KMS v2 service over one kcm key.
pub struct KmsV2<B> {
    backend: Arc<B>,
    status: Arc<StatusCache<B>>,
    timeout: Duration,
}

impl<B: KeyBackend> KmsV2<B> {
    /// The service over `backend`, answering Status from `status` (a cache over the
    /// same backend). A call to the backend that takes longer than `timeout` is
    /// answered "unavailable".
    pub fn new(backend: Arc<B>, status: Arc<StatusCache<B>>, timeout: Duration) -> Self {
        Self {
            backend,
            status,
            timeout,
        }
    }

    /// `call`, or [`BackendError::Unavailable`] once `timeout` has passed.
    async fn within_timeout<T>(
        &self,
        call: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(BackendError::Unavailable(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                )))
            })
    }

    /// The key id Encrypt reports: the current version's, probing if none is known.
    async fn current_key_id(&self) -> Result<String, Status> {
        let snapshot = self.status.current().await;
        if snapshot.key_id.is_empty() {
            return Err(Status::unavailable(format!(
                "the key's current version is not known yet: {}",
                snapshot.healthz
            )));
        }
        Ok(snapshot.key_id)
    }
}

/// The gRPC status for a refusal of kcm's. A refusal because of the key's state
/// also makes the next Status probe again, so that health reflects it at once.
fn to_status(e: &BackendError) -> Status {
    Status::new(grpc_code(e), e.to_string())
}

/// `uid` cut to at most [`MAX_UID`] bytes, at a character boundary: it is only a label.
fn bounded_uid(uid: &str) -> &str {
    let end = (0..=MAX_UID.min(uid.len()))
        .rev()
        .find(|&i| uid.is_char_boundary(i))
        .unwrap_or(0);
    &uid[..end]
}

/// Refuses `what` unless it is 1 to `max` bytes long.
fn check_size(what: &str, len: usize, max: usize) -> Result<(), Status> {
    if len == 0 || len > max {
        return Err(Status::invalid_argument(format!(
            "the {what} must be 1 to {max} bytes, not {len}"
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl<B: KeyBackend> KeyManagementService for KmsV2<B> {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let snapshot = self.status.current().await;
        Ok(Response::new(StatusResponse {
            version: API_VERSION.to_owned(),
            healthz: snapshot.healthz,
            key_id: snapshot.key_id,
        }))
    }

    async fn encrypt(
        &self,
        request: Request<EncryptRequest>,
    ) -> Result<Response<EncryptResponse>, Status> {
        let request = request.into_inner();
        let uid = bounded_uid(&request.uid);
        check_size("plaintext", request.plaintext.len(), MAX_PLAINTEXT)?;
        let key_id = self.current_key_id().await?;
        let sealed = self.within_timeout(self.backend.encrypt(&request.plaintext, uid));
        let ciphertext = match sealed.await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(uid, error = %e, "kms-plugin: Encrypt refused");
                self.status.invalidate().await;
                return Err(to_status(&e));
            }
        };
        if ciphertext.len() > MAX_CIPHERTEXT || key_id.len() > MAX_KEY_ID {
            // kcm's ciphertexts of a seed are a few hundred bytes; the API server
            // would refuse a larger answer, so refuse it here with the reason.
            return Err(Status::internal(format!(
                "the ciphertext ({} bytes) or key id ({} bytes) exceeds the API server's {MAX_CIPHERTEXT}-byte limit",
                ciphertext.len(),
                key_id.len()
            )));
        }
        self.status.note_success();
        tracing::debug!(uid, "kms-plugin: Encrypt");
        Ok(Response::new(EncryptResponse {
            ciphertext,
            key_id,
            annotations: Default::default(),
        }))
    }

    async fn decrypt(
        &self,
        request: Request<DecryptRequest>,
    ) -> Result<Response<DecryptResponse>, Status> {
        let request = request.into_inner();
        let uid = bounded_uid(&request.uid);
        check_size("ciphertext", request.ciphertext.len(), MAX_CIPHERTEXT)?;
        if request.key_id.len() > MAX_KEY_ID {
            return Err(Status::invalid_argument(format!(
                "the key id must be at most {MAX_KEY_ID} bytes"
            )));
        }
        // The ciphertext names the key version that made it; the key id the API
        // server kept beside it is not needed to decrypt.
        let opened = self.within_timeout(self.backend.decrypt(&request.ciphertext, uid));
        match opened.await {
            Ok(mut plaintext) => {
                self.status.note_success();
                tracing::debug!(uid, "kms-plugin: Decrypt");
                Ok(Response::new(DecryptResponse {
                    plaintext: std::mem::take(&mut *plaintext),
                }))
            }
            Err(e) => {
                tracing::warn!(uid, error = %e, "kms-plugin: Decrypt refused");
                if !matches!(e, BackendError::Invalid(_)) {
                    self.status.invalidate().await;
                }
                Err(to_status(&e))
            }
        }
    }
}

/// Serves `service` on `listener` until `shutdown` completes.
pub async fn serve<B: KeyBackend>(
    service: KmsV2<B>,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let server = KeyManagementServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    tonic::transport::Server::builder()
        .add_service(server)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
}
