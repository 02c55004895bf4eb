//! # kcm-keystore-plugin
//!
//! External keystore plugins: a kcm keystore provider that is a separate process,
//! started and supervised by kcm, speaking the `kcm.keystore.v1` gRPC protocol
//! (`proto/kcm/keystore/v1/plugin.proto`; the full contract is in
//! `docs/keystore-plugins.md`).
//!
//! ## Starting
//!
//! [`PluginKeystore::start`] creates a private directory (mode 0700) inside
//! [`PluginConfig::socket_dir`], runs `command args…` with
//! `KCM_PLUGIN_SOCKET=<that directory>/plugin.sock` and [`PluginConfig::env`] in
//! a minimal environment (of kcm's own variables only [`INHERITED_ENV`]: kcm's
//! environment may hold kcm's secrets),
//! and polls until the plugin answers `Health` on that socket — at most
//! [`PluginConfig::start_timeout`] (default 10 s). It then asks `GetCapabilities`
//! once; [`KeystoreProvider::capabilities`](kcm_core::keystore::KeystoreProvider::capabilities)
//! reports the answer.
//!
//! ## Supervision
//!
//! A background task watches the child. When it exits, the exit status is logged
//! (with the keystore's name) and the plugin is started again after a wait that
//! starts at 100 ms and doubles up to 5 s while restarts keep failing or the
//! plugin keeps crashing (it starts over at 100 ms once a plugin stayed up for
//! 30 s). While the plugin is down every call fails at once with
//! [`KeystoreError::Unavailable`](kcm_core::keystore::KeystoreError::Unavailable)
//! ("plugin NAME is restarting (…)"); no call waits for a restart. Every call is
//! bounded by [`PluginConfig::call_timeout`] (default 5 s); a call that takes
//! longer fails as unavailable. The plugin's stdout and stderr are forwarded to
//! `tracing`, one event per line, tagged with the keystore name (lines that look
//! like warnings or errors at warn level, the rest at info). The plugin is killed
//! when the [`PluginKeystore`] is dropped or [`PluginKeystore::shutdown`] is called.
//!
//! ## Errors
//!
//! The plugin's gRPC status codes map onto kcm's keystore errors: `UNAVAILABLE` →
//! `Unavailable`; `NOT_FOUND` and `FAILED_PRECONDITION` → `KeyUnusable`;
//! `INVALID_ARGUMENT` on Unwrap → `UnwrapFailed`; `UNIMPLEMENTED` → `Unsupported`
//! (but "nothing to do" for CheckKey, EnableKey and DisableKey); anything else →
//! `Unavailable` carrying the message. `NOT_FOUND` on DestroyKey is success
//! (destroying is idempotent).
//!
//! ## Secrets
//!
//! Plaintext (imported material, Wrap input, Unwrap output) crosses only the
//! private Unix socket. On kcm's side it lives in
//! [`SecretBytes`](kcm_core::secret::SecretBytes); the protocol messages that carry
//! it ([`proto::ImportKeyRequest`], [`proto::WrapRequest`],
//! [`proto::UnwrapResponse`]) erase their plaintext field when dropped. What this
//! cannot reach: the transient HTTP/2 frame buffers inside the gRPC stack, which
//! are freed but not erased. Nothing here logs material or plugin handles'
//! meaning; [`PluginConfig`]'s `Debug` hides `env` values.

mod config;
mod plugin;
mod process;
mod provider;

pub use config::{
    PluginConfig, DEFAULT_CALL_TIMEOUT, DEFAULT_START_TIMEOUT, INHERITED_ENV, SOCKET_ENV,
};
pub use plugin::{PluginKeystore, RESTART_BACKOFF_INITIAL, RESTART_BACKOFF_MAX};

/// The longest prefix of `text` of at most `max` bytes that ends on a character
/// boundary: what the plugin writes (output lines, status messages) is bounded
/// before it reaches kcm's log or errors, without splitting a UTF-8 character.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The `kcm.keystore.v1` protocol types and the generated gRPC client, compiled
/// from `proto/kcm/keystore/v1/plugin.proto` (with pure-Rust tooling; no `protoc`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("kcm.keystore.v1");

    // Messages that carry plaintext erase it when they are dropped.
    impl Drop for ImportKeyRequest {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.material);
        }
    }
    impl Drop for WrapRequest {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.plaintext);
        }
    }
    impl Drop for UnwrapResponse {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.plaintext);
        }
    }
}
