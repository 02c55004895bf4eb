//! Who calls: a Keystone token (`X-Auth-Token`) validated by Keystone, or — in the
//! no-auth mode for local testing — the one configured caller. Either way the
//! result is a [`FederatedLogin`] the core turns into a principal (registering the
//! project's system the first time it is seen); the door only authenticates, the
//! core authorises.
//!
//! Principals are remembered per token for at most the token cache's TTL (never
//! more than the revocation bound) and never past the token's expiry, so a
//! revoked token, a user who lost a role or a tenant that went away stop working
//! within that bound.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use kcm_core::authz::Principal;
use kcm_core::error::ErrorKind;
use kcm_core::service::{FederatedLogin, Service};
use time::OffsetDateTime;

use crate::config::{AuthMode, BarbicanConfig, DomainMapping, NoAuthCaller};
use crate::error::BarbicanError;
use crate::keystone::cache::{digest, TokenCache};
use crate::keystone::client::{KeystoneClient, KeystoneError};
use crate::keystone::{login_for, PROVIDER};

/// The header that carries a Keystone token.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

/// How long the no-auth caller's principal is remembered when no TTL applies.
const NO_AUTH_EXPIRY: Duration = Duration::from_secs(3600);

/// What proves who calls.
enum Source {
    Keystone {
        client: KeystoneClient,
        domains: BTreeMap<String, DomainMapping>,
    },
    NoAuth(NoAuthCaller),
}

/// The door's authenticator.
pub struct Authenticator {
    source: Source,
    principals: TokenCache<Principal>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.source {
            Source::Keystone { client, .. } => format!("keystone at {}", client.base_url()),
            Source::NoAuth(caller) => format!("no-auth as {}", caller.user_id),
        };
        f.debug_struct("Authenticator")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The authenticator `config` describes.
    pub fn new(config: &BarbicanConfig) -> Result<Self, String> {
        let source = match &config.auth {
            AuthMode::Keystone(keystone) => Source::Keystone {
                client: KeystoneClient::new(keystone.clone())?,
                domains: config.domains.clone(),
            },
            AuthMode::NoAuth(caller) => Source::NoAuth(caller.clone()),
        };
        Ok(Self {
            source,
            principals: TokenCache::new(config.token_cache_ttl, config.token_cache_size),
        })
    }

    /// Where a client gets a token (for a 401's `WWW-Authenticate`).
    fn keystone_url(&self) -> Option<&str> {
        match &self.source {
            Source::Keystone { client, .. } => Some(client.base_url()),
            Source::NoAuth(_) => None,
        }
    }

    /// The principal of the request carrying `headers`.
    pub async fn authenticate(
        &self,
        service: &Service,
        headers: &HeaderMap,
    ) -> Result<Principal, BarbicanError> {
        match &self.source {
            Source::NoAuth(caller) => {
                let login = no_auth_login(caller);
                self.principal(service, digest("no-auth"), &login, NO_AUTH_EXPIRY)
                    .await
            }
            Source::Keystone { client, domains } => {
                let token = headers
                    .get(AUTH_TOKEN_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| BarbicanError::unauthorized(self.keystone_url()))?;
                let key = digest(token);
                if let Some(principal) = self.principals.get(&key, Instant::now()) {
                    return Ok(principal);
                }
                let info = client.validate(token).await.map_err(|e| match e {
                    KeystoneError::InvalidToken => BarbicanError::unauthorized(self.keystone_url()),
                    KeystoneError::Unavailable(detail) => {
                        tracing::warn!(%detail, "Keystone unavailable");
                        BarbicanError::unavailable(
                            "The identity service cannot be reached; retry later",
                        )
                    }
                })?;
                let login = login_for(&info, domains)
                    .map_err(|refusal| BarbicanError::forbidden(refusal.to_string()))?;
                let left = (info.expires_at - OffsetDateTime::now_utc())
                    .try_into()
                    .unwrap_or(Duration::ZERO);
                self.principal(service, key, &login, left).await
            }
        }
    }

    /// The principal the core gives `login`, remembered under `key` for at most
    /// the cache's TTL and `left`.
    async fn principal(
        &self,
        service: &Service,
        key: [u8; 32],
        login: &FederatedLogin,
        left: Duration,
    ) -> Result<Principal, BarbicanError> {
        let now = Instant::now();
        if let Some(principal) = self.principals.get(&key, now) {
            return Ok(principal);
        }
        let principal = service
            .federated_principal(login)
            .await
            .map_err(|e| match e.kind() {
                // Keystone vouched for the user; kcm does not admit them (their
                // domain's tenant is gone, an id kcm cannot name): a 403, `denied`.
                ErrorKind::AccessDenied | ErrorKind::InvalidInput | ErrorKind::NotFound => {
                    BarbicanError::forbidden(e.message())
                }
                _ => BarbicanError::from(e),
            })?;
        self.principals
            .insert(key, principal.clone(), now, now + left);
        Ok(principal)
    }
}

/// The login of the no-auth mode's fixed caller.
fn no_auth_login(caller: &NoAuthCaller) -> FederatedLogin {
    FederatedLogin {
        provider: PROVIDER.into(),
        user_id: caller.user_id.clone(),
        tenant: caller.tenant.clone(),
        project_id: caller.project_id.clone(),
        project_name: caller.project_name.clone(),
        root_key: caller.root_key.clone(),
        role: caller.role,
    }
}

/// A principal id as Barbican shows a user (`creator_id`, ACL users): the Keystone
/// user id without kcm's `keystone:` prefix; another kind of principal as it is.
pub fn user_of(principal_id: &str) -> &str {
    principal_id
        .strip_prefix(PROVIDER)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(principal_id)
}

/// The principal id of a Keystone user id (an ACL user).
pub fn principal_of(user_id: &str) -> String {
    format!("{PROVIDER}:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_principals_convert() {
        assert_eq!(user_of("keystone:u1"), "u1");
        assert_eq!(user_of("KCMABCDEF"), "KCMABCDEF");
        assert_eq!(principal_of("u1"), "keystone:u1");
        assert_eq!(user_of(&principal_of("u1")), "u1");
    }
}
