//! Login sessions of the Vault-compatible API: a short-lived token that acts as
//! one Vault token's access key, issued after a door proved who the caller is
//! with an identity provider the operator configured (Kubernetes' TokenReview for
//! `auth/kubernetes/login`) and the operator's configuration mapped that identity
//! to the access key.
//!
//! A session token is `kcms.<access key id>.<expiry ms>.<tag>`, the tag an
//! HMAC-SHA-256 of id and expiry under a key derived from the credential key —
//! which every node of a cluster unwraps from the store — so any node checks it,
//! after a restart too, and nothing is stored per session. It acts with the access
//! key's rights and no more, and dies with it: disabling or deleting the access
//! key cuts its sessions off within the revocation bound, as its own token.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::{now_ms, Service};
use crate::authz::Principal;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{CredentialKind, UnixMillis};
use crate::secret::SecretString;

/// How a session token begins.
pub const SESSION_PREFIX: &str = "kcms.";
/// The longest session.
pub const MAX_SESSION: Duration = Duration::from_secs(24 * 60 * 60);
/// The refusal of a session token that is not one, is forged or has expired.
const SESSION_REFUSED: &str = "permission denied: the token is invalid or has expired";

/// A session issued by a login.
#[derive(Debug)]
pub struct VaultSession {
    /// The token the client sends (`X-Vault-Token`).
    pub token: SecretString,
    /// Whose rights it carries.
    pub principal: Principal,
    /// When it stops being accepted.
    pub expires_at: UnixMillis,
}

impl Service {
    /// Issues a session of `ttl` (1 s to [`MAX_SESSION`]) acting as the Vault
    /// token access key `access_key_id`, which must exist, be enabled and be of
    /// the Vault kind. The door calls this only once the caller proved an identity
    /// the operator's configuration maps to that access key.
    pub async fn issue_vault_session(
        &self,
        access_key_id: &str,
        ttl: Duration,
    ) -> Result<VaultSession> {
        if ttl.is_zero() || ttl > MAX_SESSION {
            return Err(Error::invalid(format!(
                "a session lasts 1 s to {} s",
                MAX_SESSION.as_secs()
            )));
        }
        let credential = self
            .credential_of_kind(access_key_id, CredentialKind::Vault)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::UnknownAccessKey => Error::new(
                    ErrorKind::AccessDenied,
                    format!(
                        "permission denied: the login's access key {access_key_id} is not an enabled Vault token"
                    ),
                ),
                _ => e,
            })?;
        let expires_at = now_ms().saturating_add(ttl.as_millis() as i64);
        let tag = self.session_tag(access_key_id, expires_at).await?;
        Ok(VaultSession {
            token: SecretString::new(format!(
                "{SESSION_PREFIX}{access_key_id}.{expires_at}.{}",
                URL_SAFE_NO_PAD.encode(tag.as_ref())
            )),
            principal: credential.principal.clone(),
            expires_at,
        })
    }

    /// The principal of a session token, if it is one this service issued, has
    /// not expired, and its access key is still an enabled Vault token.
    pub(super) async fn authenticate_vault_session(&self, token: &str) -> Result<Principal> {
        let refused = || Error::new(ErrorKind::UnknownAccessKey, SESSION_REFUSED);
        let rest = token.strip_prefix(SESSION_PREFIX).ok_or_else(refused)?;
        let mut parts = rest.splitn(3, '.');
        let (Some(id), Some(expiry), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused());
        };
        let expires_at: UnixMillis = expiry.parse().map_err(|_| refused())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| refused())?;
        let key = self.session_key().await?;
        hmac::verify(key, &session_message(id, expires_at), &tag).map_err(|_| refused())?;
        if expires_at <= now_ms() {
            return Err(refused());
        }
        match self.credential_of_kind(id, CredentialKind::Vault).await {
            Ok(credential) => Ok(credential.principal.clone()),
            Err(e) if e.kind() == ErrorKind::UnknownAccessKey => Err(refused()),
            Err(e) => Err(e),
        }
    }

    async fn session_tag(&self, id: &str, expires_at: UnixMillis) -> Result<hmac::Tag> {
        let key = self.session_key().await?;
        Ok(hmac::sign(key, &session_message(id, expires_at)))
    }

    /// The key that signs sessions: derived from the credential key, and used for
    /// nothing else. Derived once per process, as the credential key is unwrapped once.
    async fn session_key(&self) -> Result<&hmac::Key> {
        self.vault_session_key
            .get_or_try_init(|| async {
                let credential_key = self.credential_key().await?;
                let root = hmac::Key::new(hmac::HMAC_SHA256, credential_key.expose_secret());
                let derived = hmac::sign(&root, b"kcm-vault-session-key-v1");
                Ok(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
            })
            .await
    }
}

/// When a session token expires, read from the token (`None` for another kind of
/// token). Only for describing a token already authenticated: this checks nothing.
pub fn session_expiry(token: &str) -> Option<UnixMillis> {
    token
        .strip_prefix(SESSION_PREFIX)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

fn session_message(id: &str, expires_at: UnixMillis) -> Vec<u8> {
    format!("kcm-vault-session-v1\n{id}\n{expires_at}").into_bytes()
}
