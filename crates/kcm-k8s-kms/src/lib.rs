//! # kcm-k8s-kms
//!
//! The Kubernetes KMS v2 plugin: a gRPC server on a Unix socket that the Kubernetes
//! API server calls to encrypt and decrypt its data-encryption-key seeds, each under
//! one kcm service key (and so under the system key, the root key and the kill
//! switch above it).
//!
//! ```text
//! kube-apiserver ─gRPC/unix─► KmsV2 ─► StatusCache ─┐
//!                             (limits, codes)       ├─► KeyBackend ─► kcm (AWS KMS API, SigV4)
//!                             Encrypt / Decrypt ────┘   RemoteKey
//! ```
//!
//! - [`KeyBackend`]: what the plugin needs of kcm — encrypt, decrypt, and a probe
//!   that says which key version encrypts now and whether it can. [`RemoteKey`]
//!   is the backend of `kcm kms-plugin`: a kcm server over its AWS KMS API, with an
//!   access key scoped to one system.
//! - [`StatusCache`]: the API server polls Status often; it is answered from a
//!   probe at most `max_age` old (one probe at a time, however many callers wait).
//! - [`KmsV2`]: the gRPC service — the API's limits, the cluster binding and the
//!   error codes; [`serve`] runs it on a socket [`bind_socket`] made owner-only.
//!
//! Every ciphertext is bound to its cluster: Encrypt and Decrypt send the cluster's
//! name as encryption context, so one cluster's ciphertext does not decrypt through
//! another cluster's plugin, even with the same key.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
pub mod embedded;
mod grpc;
mod remote;
mod socket;
mod status;

pub use backend::{BackendError, KeyBackend};
pub use grpc::{serve, KmsV2, API_VERSION, MAX_CIPHERTEXT, MAX_KEY_ID, MAX_PLAINTEXT};
pub use remote::{check_cluster_name, RemoteKey, CLUSTER_CONTEXT_KEY};
pub use socket::{bind_socket, SocketError};
pub use status::{Snapshot, StatusCache};

/// The generated KMS v2 protocol types (package `v2`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("v2");

    // Messages that carry a plaintext seed erase it when they are dropped.
    impl Drop for EncryptRequest {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.plaintext);
        }
    }
    impl Drop for DecryptResponse {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.plaintext);
        }
    }
}

#[cfg(test)]
mod tests;
