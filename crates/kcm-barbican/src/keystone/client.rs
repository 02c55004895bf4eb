//! Keystone's identity API v3, as an OpenStack service calls it: kcm authenticates
//! with its own service account (password, scoped to its service project) and
//! validates each caller's token with that service token, as keystonemiddleware
//! does for every OpenStack service.
//!
//! ```text
//! POST {keystone}/v3/auth/tokens?nocatalog    kcm's credentials → X-Subject-Token (kcm's token)
//! GET  {keystone}/v3/auth/tokens?nocatalog    X-Auth-Token: kcm's token, X-Subject-Token: the caller's
//! ```
//!
//! kcm's token is renewed before it expires, and at once when Keystone no longer
//! accepts it (401). Keystone answers 404 for a token it does not honour.

use std::sync::Arc;
use std::time::Duration;

use kcm_core::secret::SecretString;
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::config::KeystoneConfig;
use crate::keystone::token::{parse_expiry, TokenInfo};

/// Why a token could not be validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeystoneError {
    /// Keystone does not honour the caller's token (unknown, expired, revoked).
    InvalidToken,
    /// Keystone could not be asked, or refused kcm itself: nothing is known about
    /// the caller. The text is for the server log.
    Unavailable(String),
}

/// Renew kcm's own token when less than this is left of it (or half its life,
/// for short-lived tokens), so that no validation is made with a token about to
/// expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// kcm's own token and when it must be renewed.
struct ServiceToken {
    token: Arc<SecretString>,
    renew_at: OffsetDateTime,
}

/// A client of one Keystone, holding kcm's service token.
pub struct KeystoneClient {
    http: reqwest::Client,
    config: KeystoneConfig,
    tokens_url: String,
    service_token: Mutex<Option<ServiceToken>>,
}

impl std::fmt::Debug for KeystoneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneClient")
            .field("url", &self.config.base_url)
            .field("user", &self.config.user)
            .finish_non_exhaustive()
    }
}

impl KeystoneClient {
    /// A client of the Keystone `config` names. Fails only if its TLS settings
    /// cannot be read.
    pub fn new(config: KeystoneConfig) -> Result<Self, String> {
        // reqwest builds a TLS setup even for plain HTTP, and would look for a
        // process-wide crypto provider: it always gets kcm's own.
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(8)
            .use_preconfigured_tls(kcm_tls_client::client_config(
                &config.base_url,
                config.ca_file.as_deref(),
                "barbican.keystone.ca_file",
            )?)
            .build()
            .map_err(|e| format!("cannot build the Keystone client: {e}"))?;
        Ok(Self {
            http,
            tokens_url: format!("{}/v3/auth/tokens?nocatalog", config.base_url),
            config,
            service_token: Mutex::new(None),
        })
    }

    /// Keystone's base URL (for the `WWW-Authenticate` header of a 401).
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Asks Keystone who holds `user_token`.
    pub async fn validate(&self, user_token: &str) -> Result<TokenInfo, KeystoneError> {
        // A header value cannot hold every byte; such a token is no token.
        let mut subject =
            HeaderValue::from_str(user_token).map_err(|_| KeystoneError::InvalidToken)?;
        subject.set_sensitive(true);
        let mut renewed = false;
        loop {
            let service = self.service_token(renewed).await?;
            let mut own = HeaderValue::from_str(service.expose_secret()).map_err(|_| {
                KeystoneError::Unavailable("kcm's token is not a header value".into())
            })?;
            own.set_sensitive(true);
            let response = self
                .http
                .get(&self.tokens_url)
                .header("X-Auth-Token", own)
                .header("X-Subject-Token", subject.clone())
                .send()
                .await
                .map_err(|e| unavailable("validating a token", &e))?;
            match response.status() {
                StatusCode::OK => {
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| unavailable("reading a validation", &e))?;
                    return TokenInfo::parse(&body).map_err(KeystoneError::Unavailable);
                }
                StatusCode::NOT_FOUND => return Err(KeystoneError::InvalidToken),
                // kcm's own token is no longer accepted (revoked, Keystone restarted
                // with new keys): authenticate again, once.
                StatusCode::UNAUTHORIZED if !renewed => {
                    self.forget_service_token(&service).await;
                    renewed = true;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(KeystoneError::Unavailable(format!(
                        "Keystone refused kcm's service token ({}): does the user {:?} hold \
                         the service or admin role?",
                        response.status(),
                        self.config.user
                    )))
                }
                status => {
                    return Err(KeystoneError::Unavailable(format!(
                        "Keystone answered {status} to a token validation"
                    )))
                }
            }
        }
    }

    /// kcm's token: the one held while it is fresh, else a new one (`fresh`: a new
    /// one in any case).
    async fn service_token(&self, fresh: bool) -> Result<Arc<SecretString>, KeystoneError> {
        // One renewal at a time: requests waiting here use the token it gets.
        let mut held = self.service_token.lock().await;
        if let Some(token) = held.as_ref() {
            if !fresh && OffsetDateTime::now_utc() < token.renew_at {
                return Ok(Arc::clone(&token.token));
            }
        }
        let token = self.authenticate().await?;
        let shared = Arc::clone(&token.token);
        *held = Some(token);
        Ok(shared)
    }

    /// Drops `stale` unless another request renewed it meanwhile.
    async fn forget_service_token(&self, stale: &Arc<SecretString>) {
        let mut held = self.service_token.lock().await;
        if held.as_ref().is_some_and(|t| Arc::ptr_eq(&t.token, stale)) {
            *held = None;
        }
    }

    /// Password authentication with kcm's service credentials.
    async fn authenticate(&self) -> Result<ServiceToken, KeystoneError> {
        let c = &self.config;
        let body = zeroize::Zeroizing::new(
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": c.user,
                    "domain": {"name": c.user_domain},
                    "password": c.password.expose_secret(),
                }}},
                "scope": {"project": {"name": c.project, "domain": {"name": c.project_domain}}},
            }})
            .to_string(),
        );
        let response = self
            .http
            .post(&self.tokens_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| unavailable("authenticating kcm", &e))?;
        let status = response.status();
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(KeystoneError::Unavailable(format!(
                "Keystone refused kcm's service credentials (user {:?} in domain {:?}, \
                 project {:?}): {status}",
                c.user, c.user_domain, c.project
            )));
        }
        let token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(|v| SecretString::new(v.to_owned()))
            .ok_or_else(|| {
                KeystoneError::Unavailable("Keystone issued no X-Subject-Token".into())
            })?;
        let body = response
            .bytes()
            .await
            .map_err(|e| unavailable("reading kcm's token", &e))?;
        let expires_at = parse_expiry(&body).map_err(KeystoneError::Unavailable)?;
        let now = OffsetDateTime::now_utc();
        let life = expires_at - now;
        let margin = if life > RENEW_BEFORE * 2 {
            RENEW_BEFORE
        } else {
            Duration::try_from(life / 2).unwrap_or(Duration::ZERO)
        };
        Ok(ServiceToken {
            token: Arc::new(token),
            renew_at: expires_at - margin,
        })
    }
}

/// A transport failure, with its causes (reqwest's own text hides them).
fn unavailable(doing: &str, e: &reqwest::Error) -> KeystoneError {
    let mut text = format!("Keystone could not be reached while {doing}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    KeystoneError::Unavailable(text)
}

#[cfg(test)]
mod tests {
    //! Against the tiny Keystone of [`crate::keystone::fake`].

    use super::*;
    use std::sync::atomic::Ordering;

    use crate::keystone::fake::{self, FakeKeystone};

    fn client(base_url: String, password: &str) -> KeystoneClient {
        KeystoneClient::new(KeystoneConfig {
            base_url,
            user: "kcm".into(),
            user_domain: "Default".into(),
            password: SecretString::new(password.into()),
            project: "service".into(),
            project_domain: "Default".into(),
            ca_file: None,
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    async fn keystone(life: i64) -> (Arc<FakeKeystone>, String) {
        let fake = Arc::new(FakeKeystone::new(life));
        fake.issue("good", fake::token_body("default", "Default", &["member"]));
        let url = fake::start(Arc::clone(&fake)).await;
        (fake, url)
    }

    #[tokio::test]
    async fn tokens_are_validated_with_one_service_token() {
        let (fake, url) = keystone(3600).await;
        let keystone = client(url, fake::PASSWORD);
        let info = keystone.validate("good").await.unwrap();
        assert_eq!(info.user_id, "u-good");
        assert_eq!(info.project.unwrap().domain_name, "Default");
        assert_eq!(
            keystone.validate("bad").await,
            Err(KeystoneError::InvalidToken)
        );
        assert_eq!(
            keystone.validate("new\nline").await,
            Err(KeystoneError::InvalidToken)
        );
        assert_eq!(
            fake.logins.load(Ordering::SeqCst),
            1,
            "the service token is reused"
        );
        assert_eq!(fake.validations.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_service_token_is_renewed_before_it_expires() {
        // A token of 2 s is renewed once half of it has passed.
        let (fake, url) = keystone(2).await;
        let keystone = client(url, fake::PASSWORD);
        keystone.validate("good").await.unwrap();
        keystone.validate("good").await.unwrap();
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        keystone.validate("good").await.unwrap();
        assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_service_token_is_replaced_once() {
        let (fake, url) = keystone(3600).await;
        let keystone = client(url, fake::PASSWORD);
        keystone.validate("good").await.unwrap();
        // Keystone forgets svc-1 (revoked, or restarted with new keys).
        fake.accepted_from.store(2, Ordering::SeqCst);
        keystone.validate("good").await.unwrap();
        assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn wrong_credentials_or_no_keystone_are_unavailable() {
        let (_fake, url) = keystone(3600).await;
        let wrong = client(url, "guess");
        let Err(KeystoneError::Unavailable(why)) = wrong.validate("good").await else {
            panic!("wrong credentials must not validate")
        };
        assert!(why.contains("service credentials"), "{why}");
        assert!(!why.contains("guess"), "the password is never shown: {why}");
        let nowhere = client("http://127.0.0.1:9".into(), fake::PASSWORD);
        assert!(matches!(
            nowhere.validate("good").await,
            Err(KeystoneError::Unavailable(_))
        ));
    }
}
