//! The [`KeystoreProvider`] implementation: one RPC per trait method, with the
//! protocol's error contract mapped onto [`KeystoreError`].

use std::future::Future;

use async_trait::async_trait;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::SecretBytes;
use tonic::{Code, Response, Status};

use crate::plugin::PluginKeystore;
use crate::process::Client;
use crate::{proto, truncate};

/// The RPCs of the protocol (for error messages and error mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rpc {
    Health,
    CreateKey,
    ImportKey,
    ReferenceKey,
    CheckKey,
    EnableKey,
    DisableKey,
    DestroyKey,
    Wrap,
    Unwrap,
}

/// Longest part of a plugin's status message carried into a kcm error.
const MAX_MESSAGE: usize = 512;

/// The protocol's error contract (see `plugin.proto`).
pub(crate) fn map_status(keystore: &str, rpc: Rpc, status: &Status) -> KeystoreError {
    let message = format!(
        "plugin {keystore}: {rpc:?}: {}",
        truncate(status.message(), MAX_MESSAGE)
    );
    match status.code() {
        Code::Unavailable => KeystoreError::Unavailable(message),
        Code::NotFound | Code::FailedPrecondition => KeystoreError::KeyUnusable(message),
        Code::InvalidArgument if rpc == Rpc::Unwrap => KeystoreError::UnwrapFailed,
        Code::Unimplemented => KeystoreError::Unsupported(message),
        other => KeystoreError::Unavailable(format!("{message} ({other:?})")),
    }
}

/// A plugin that broke the protocol (e.g. returned an empty handle).
fn violation(keystore: &str, rpc: Rpc, what: &str) -> KeystoreError {
    KeystoreError::Misconfigured(format!(
        "plugin {keystore}: {rpc:?}: {what} (protocol violation)"
    ))
}

impl PluginKeystore {
    /// Makes one call: fails fast while the plugin is down, bounds it by the call
    /// timeout, and maps a failure status by the error contract.
    async fn call<T, F, Fut>(&self, rpc: Rpc, f: F) -> KeystoreResult<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let name = &self.inner.config.name;
        let client = self.inner.client()?;
        let timeout = self.inner.config.call_timeout;
        match tokio::time::timeout(timeout, f(client)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(map_status(name, rpc, &status)),
            Err(_) => Err(KeystoreError::Unavailable(format!(
                "plugin {name}: {rpc:?} did not answer within {timeout:?}"
            ))),
        }
    }

    /// Makes a call the protocol lets a plugin leave unimplemented (CheckKey,
    /// EnableKey, DisableKey): `UNIMPLEMENTED` there means nothing to do, as in the
    /// trait's defaults, so it is success; any other failure stays a failure.
    async fn optional_call<T, F, Fut>(&self, rpc: Rpc, f: F) -> KeystoreResult<()>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        match self.call(rpc, f).await {
            Err(KeystoreError::Unsupported(_)) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    fn handle(&self, rpc: Rpc, handle: Vec<u8>) -> KeystoreResult<Vec<u8>> {
        if handle.is_empty() {
            return Err(violation(&self.inner.config.name, rpc, "empty handle"));
        }
        Ok(handle)
    }

    fn unsupported(&self, what: &str) -> KeystoreError {
        KeystoreError::Unsupported(format!(
            "plugin {} ({}) cannot {what}",
            self.inner.config.name,
            self.plugin_name()
        ))
    }
}

#[async_trait]
impl KeystoreProvider for PluginKeystore {
    fn kind(&self) -> &'static str {
        "plugin"
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn health(&self) -> KeystoreResult<()> {
        self.call(Rpc::Health, |mut c| async move {
            c.health(proto::HealthRequest {}).await
        })
        .await
        .map(|_| ())
    }

    async fn create_root_key(&self, label: &str) -> KeystoreResult<Vec<u8>> {
        if !self.capabilities.generate {
            return Err(self.unsupported("generate root keys"));
        }
        let request = proto::CreateKeyRequest {
            label: label.to_owned(),
        };
        let response = self
            .call(Rpc::CreateKey, |mut c| async move {
                c.create_key(request).await
            })
            .await?;
        self.handle(Rpc::CreateKey, response.handle)
    }

    async fn import_root_key(
        &self,
        label: &str,
        material: &SecretBytes,
    ) -> KeystoreResult<Vec<u8>> {
        if !self.capabilities.import {
            return Err(self.unsupported("import key material"));
        }
        // The request erases its copy of the material when dropped (see `proto`).
        let request = proto::ImportKeyRequest {
            label: label.to_owned(),
            material: material.expose_secret().to_vec(),
        };
        let response = self
            .call(Rpc::ImportKey, |mut c| async move {
                c.import_key(request).await
            })
            .await?;
        self.handle(Rpc::ImportKey, response.handle)
    }

    async fn reference_root_key(&self, reference: &str) -> KeystoreResult<Vec<u8>> {
        if !self.capabilities.reference {
            return Err(self.unsupported("refer to keys it does not hold"));
        }
        let request = proto::ReferenceKeyRequest {
            reference: reference.to_owned(),
        };
        let response = self
            .call(Rpc::ReferenceKey, |mut c| async move {
                c.reference_key(request).await
            })
            .await?;
        self.handle(Rpc::ReferenceKey, response.handle)
    }

    async fn check_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let request = proto::CheckKeyRequest {
            handle: handle.to_vec(),
        };
        // The plugin cannot tell: trust the handle, as the trait's default does.
        self.optional_call(
            Rpc::CheckKey,
            |mut c| async move { c.check_key(request).await },
        )
        .await
    }

    async fn disable_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let request = proto::DisableKeyRequest {
            handle: handle.to_vec(),
        };
        // No switch in the plugin: kcm's own state is the authority.
        self.optional_call(Rpc::DisableKey, |mut c| async move {
            c.disable_key(request).await
        })
        .await
    }

    async fn enable_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let request = proto::EnableKeyRequest {
            handle: handle.to_vec(),
        };
        self.optional_call(Rpc::EnableKey, |mut c| async move {
            c.enable_key(request).await
        })
        .await
    }

    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> KeystoreResult<Vec<u8>> {
        // The request erases its copy of the plaintext when dropped (see `proto`).
        let request = proto::WrapRequest {
            handle: handle.to_vec(),
            plaintext: plaintext.expose_secret().to_vec(),
            aad: aad.to_vec(),
        };
        let response = self
            .call(Rpc::Wrap, |mut c| async move { c.wrap(request).await })
            .await?;
        if response.wrapped.is_empty() {
            return Err(violation(
                &self.inner.config.name,
                Rpc::Wrap,
                "empty wrapped blob",
            ));
        }
        Ok(response.wrapped)
    }

    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> KeystoreResult<SecretBytes> {
        let request = proto::UnwrapRequest {
            handle: handle.to_vec(),
            wrapped: wrapped.to_vec(),
            aad: aad.to_vec(),
        };
        let mut response = self
            .call(Rpc::Unwrap, |mut c| async move { c.unwrap(request).await })
            .await?;
        // Moved out of the response (which erases what is left when dropped).
        Ok(SecretBytes::new(std::mem::take(&mut response.plaintext)))
    }

    async fn destroy(&self, handle: &[u8]) -> KeystoreResult<()> {
        let request = proto::DestroyKeyRequest {
            handle: handle.to_vec(),
        };
        match self
            .call(Rpc::DestroyKey, |mut c| async move {
                c.destroy_key(request).await
            })
            .await
        {
            // Already gone: destroying is idempotent.
            Err(KeystoreError::KeyUnusable(_)) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_contract() {
        let map = |rpc, code| map_status("hsm", rpc, &Status::new(code, "why"));
        assert!(matches!(
            map(Rpc::Wrap, Code::Unavailable),
            KeystoreError::Unavailable(m) if m.contains("hsm") && m.contains("why")
        ));
        assert!(matches!(
            map(Rpc::Wrap, Code::NotFound),
            KeystoreError::KeyUnusable(m) if m.contains("why")
        ));
        assert!(matches!(
            map(Rpc::Unwrap, Code::FailedPrecondition),
            KeystoreError::KeyUnusable(_)
        ));
        assert!(matches!(
            map(Rpc::Unwrap, Code::InvalidArgument),
            KeystoreError::UnwrapFailed
        ));
        // INVALID_ARGUMENT means "does not authenticate" on Unwrap only.
        assert!(matches!(
            map(Rpc::ImportKey, Code::InvalidArgument),
            KeystoreError::Unavailable(m) if m.contains("InvalidArgument")
        ));
        assert!(matches!(
            map(Rpc::ReferenceKey, Code::Unimplemented),
            KeystoreError::Unsupported(_)
        ));
        for code in [
            Code::Internal,
            Code::Unknown,
            Code::DeadlineExceeded,
            Code::PermissionDenied,
        ] {
            assert!(
                matches!(map(Rpc::Health, code), KeystoreError::Unavailable(m) if m.contains("why")),
                "{code:?}"
            );
        }
    }

    #[test]
    fn long_messages_are_cut() {
        let status = Status::internal("x".repeat(10_000));
        let KeystoreError::Unavailable(m) = map_status("k", Rpc::Health, &status) else {
            panic!("wrong variant");
        };
        assert!(m.len() < MAX_MESSAGE + 100, "{}", m.len());
    }
}
