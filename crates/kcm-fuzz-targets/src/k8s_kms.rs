//! The Kubernetes KMS v2 plugin's request checks (`crates/kcm-k8s-kms` `grpc.rs`:
//! `check_size`, `bounded_uid`), behind the protobuf decoding of the request.
//!
//! The input is a method byte (`0` Encrypt, `1` Decrypt, anything else Status)
//! and the request message in protobuf, as tonic hands it to the service. The
//! service runs over a backend that checks what reaches it: a plaintext of 1 to
//! `MAX_PLAINTEXT` bytes, a ciphertext of 1 to `MAX_CIPHERTEXT`, a uid of at most
//! 128 bytes. An answer is a success only for a request within the API's limits
//! (and, for Encrypt, a ciphertext within them).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use kcm_k8s_kms::proto::key_management_service_server::KeyManagementService;
use kcm_k8s_kms::proto::{DecryptRequest, EncryptRequest, StatusRequest};
use kcm_k8s_kms::{
    BackendError, KeyBackend, KmsV2, StatusCache, MAX_CIPHERTEXT, MAX_KEY_ID, MAX_PLAINTEXT,
};
use prost::Message;
use tonic::Request;
use zeroize::Zeroizing;

/// The plugin's message limit (64 KiB, `MAX_MESSAGE` in grpc.rs) and the method byte.
pub const MAX_LEN: usize = 64 * 1024 + 1;
/// The longest uid the plugin passes on.
const MAX_UID: usize = 128;

/// A backend that checks the limits the service promises it, and answers with a
/// ciphertext as long as the plaintext plus a header.
struct CheckingBackend;

#[async_trait]
impl KeyBackend for CheckingBackend {
    async fn encrypt(&self, plaintext: &[u8], uid: &str) -> Result<Vec<u8>, BackendError> {
        assert!((1..=MAX_PLAINTEXT).contains(&plaintext.len()));
        assert!(uid.len() <= MAX_UID);
        let mut out = b"kcm-fuzz".to_vec();
        out.extend_from_slice(plaintext);
        Ok(out)
    }

    async fn decrypt(
        &self,
        ciphertext: &[u8],
        uid: &str,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        assert!((1..=MAX_CIPHERTEXT).contains(&ciphertext.len()));
        assert!(uid.len() <= MAX_UID);
        match ciphertext.strip_prefix(b"kcm-fuzz") {
            Some(plaintext) => Ok(Zeroizing::new(plaintext.to_vec())),
            None => Err(BackendError::Invalid("not a ciphertext of this key".into())),
        }
    }

    async fn probe(&self) -> Result<String, BackendError> {
        Ok("kcm-fuzz-key:1".into())
    }
}

fn service() -> &'static KmsV2<CheckingBackend> {
    static SERVICE: OnceLock<KmsV2<CheckingBackend>> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let backend = Arc::new(CheckingBackend);
        let status = Arc::new(StatusCache::new(
            backend.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(5),
        ));
        KmsV2::new(backend, status, Duration::from_secs(5))
    })
}

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let Some((&method, message)) = data.split_first() else {
        return;
    };
    let service = service();
    crate::runtime().block_on(async {
        match method {
            0 => {
                let Ok(request) = EncryptRequest::decode(message) else {
                    return;
                };
                // The backend's ciphertext is 8 bytes longer than the plaintext, and
                // the service refuses to return one the API server would refuse.
                let len = request.plaintext.len();
                let fits = (1..=MAX_PLAINTEXT).contains(&len) && len + 8 <= MAX_CIPHERTEXT;
                let answer = service.encrypt(Request::new(request)).await;
                assert_eq!(answer.is_ok(), fits, "{answer:?}");
            }
            1 => {
                let Ok(request) = DecryptRequest::decode(message) else {
                    return;
                };
                let fits = (1..=MAX_CIPHERTEXT).contains(&request.ciphertext.len())
                    && request.key_id.len() <= MAX_KEY_ID;
                let answer = service.decrypt(Request::new(request)).await;
                if answer.is_ok() {
                    assert!(fits);
                }
            }
            _ => {
                let Ok(request) = StatusRequest::decode(message) else {
                    return;
                };
                let answer = service.status(Request::new(request)).await;
                assert!(answer.is_ok());
            }
        }
    });
}
