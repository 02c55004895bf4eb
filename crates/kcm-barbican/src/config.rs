//! The door's configuration: the `[barbican]` table of `kcm serve` as written
//! ([`BarbicanSettings`]), checked and completed into what the door runs with
//! ([`BarbicanConfig`]).
//!
//! Secrets (kcm's own Keystone password) are never written in the table itself: it
//! names a file or an environment variable, read once at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kcm_core::model::Role;
use kcm_core::secret::SecretString;
use serde::Deserialize;

/// The `[barbican]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarbicanSettings {
    /// Where the door listens (`host:port`; Barbican's own port is 9311).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The URL clients reach the door at (`https://kms.example.com:9311`), used in
    /// every `secret_ref`, `container_ref` and `order_ref`. When absent, refs are
    /// built from the request's `Host` header and the listener's scheme.
    pub public_url: Option<String>,
    /// The Keystone that vouches for callers. Required unless `no_auth` is set.
    pub keystone: Option<KeystoneSettings>,
    /// Keystone domains (by name or id) → kcm tenants. A caller whose project lives
    /// in a domain that is not listed is refused.
    #[serde(default)]
    pub domains: BTreeMap<String, DomainMapping>,
    /// How long a validated token is trusted without asking Keystone again, in
    /// milliseconds (default and maximum: the server's revocation bound).
    pub token_cache_ttl_ms: Option<u64>,
    /// Most validated tokens kept at once.
    #[serde(default = "default_token_cache_size")]
    pub token_cache_size: usize,
    /// Local testing only: every request acts as this fixed project and user,
    /// without a token. Refused unless `listen` is a loopback address.
    pub no_auth: Option<NoAuthSettings>,
}

fn default_listen() -> String {
    "127.0.0.1:9311".into()
}

fn default_token_cache_size() -> usize {
    10_000
}

/// `[barbican.keystone]`: where Keystone is, and kcm's own service account there
/// (the account that may validate other users' tokens, as every OpenStack service
/// has one).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneSettings {
    /// Keystone's URL (`http://keystone:5000` or `…/v3`).
    pub url: String,
    /// kcm's service user name.
    pub user: String,
    /// The domain of that user (name).
    #[serde(default = "default_domain")]
    pub user_domain: String,
    /// File holding the user's password (mode 0600; one line). Exactly one of
    /// `password_file` and `password_env` is set.
    pub password_file: Option<PathBuf>,
    /// Name of the environment variable holding the password (removed from the
    /// environment once read).
    pub password_env: Option<String>,
    /// The project kcm's service token is scoped to (name), usually `service`.
    pub project: String,
    /// The domain of that project (name).
    #[serde(default = "default_domain")]
    pub project_domain: String,
    /// PEM file of the CAs that sign Keystone's certificate (else the operating
    /// system's roots); only for an `https` URL.
    pub ca_file: Option<PathBuf>,
    /// How long one call to Keystone may take, in milliseconds.
    #[serde(default = "default_keystone_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_domain() -> String {
    "Default".into()
}

fn default_keystone_timeout_ms() -> u64 {
    5000
}

/// One `[barbican.domains.<domain>]` table: the kcm tenant a Keystone domain is.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DomainMapping {
    /// The kcm tenant's name (it must exist).
    pub tenant: String,
    /// The root key the systems of this domain's projects are registered under
    /// (default: the tenant's default root key).
    pub root_key: Option<String>,
}

/// `[barbican.no_auth]`: the fixed caller of the no-auth mode.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NoAuthSettings {
    /// The kcm tenant's name.
    pub tenant: String,
    /// The project id every request acts in.
    pub project_id: String,
    /// The project's name (default: its id).
    pub project_name: Option<String>,
    /// The user id every request acts as.
    pub user_id: String,
    /// The Keystone role the user is taken to hold: `admin`, `member` or `reader`.
    #[serde(default = "default_no_auth_role")]
    pub role: String,
    /// The root key the project's system is registered under.
    pub root_key: Option<String>,
}

fn default_no_auth_role() -> String {
    "admin".into()
}

/// How the door learns who calls.
#[derive(Clone, Debug)]
pub enum AuthMode {
    /// Keystone tokens (`X-Auth-Token`), validated with kcm's service account.
    Keystone(KeystoneConfig),
    /// No token: every request is this caller (loopback listeners only).
    NoAuth(NoAuthCaller),
}

/// Keystone, ready to be called.
#[derive(Clone, Debug)]
pub struct KeystoneConfig {
    /// Keystone's base URL without `/v3` and without a trailing slash.
    pub base_url: String,
    /// kcm's service user name.
    pub user: String,
    /// Its domain (name).
    pub user_domain: String,
    /// Its password (redacted in `Debug`).
    pub password: SecretString,
    /// The project the service token is scoped to (name).
    pub project: String,
    /// Its domain (name).
    pub project_domain: String,
    /// PEM CAs for an `https` Keystone.
    pub ca_file: Option<PathBuf>,
    /// Timeout of one call.
    pub timeout: Duration,
}

/// The no-auth mode's fixed caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoAuthCaller {
    /// The kcm tenant's name.
    pub tenant: String,
    /// The project id.
    pub project_id: String,
    /// The project name.
    pub project_name: String,
    /// The user id.
    pub user_id: String,
    /// The kcm role the Keystone role maps to.
    pub role: Role,
    /// The root key of the project's system.
    pub root_key: Option<String>,
}

/// What the door runs with: the settings checked, the password read, the durations
/// typed.
#[derive(Clone, Debug)]
pub struct BarbicanConfig {
    /// The listen address.
    pub listen: SocketAddr,
    /// The base of every ref (`scheme://host[:port]`, no trailing slash), or `None`
    /// to build it from each request.
    pub public_url: Option<String>,
    /// How callers are authenticated.
    pub auth: AuthMode,
    /// Keystone domain (name or id) → tenant.
    pub domains: BTreeMap<String, DomainMapping>,
    /// How long a validated token is trusted (never above the revocation bound).
    pub token_cache_ttl: Duration,
    /// Most validated tokens kept.
    pub token_cache_size: usize,
}

impl BarbicanSettings {
    /// Checks the table and completes it: `revocation_bound` is the server's (the
    /// longest a validated token may be trusted); `read_password` reads the secret
    /// the `keystone` table names (a file or an environment variable).
    pub fn into_config(
        self,
        revocation_bound: Duration,
        read_password: impl FnOnce(&KeystoneSettings) -> Result<SecretString, String>,
    ) -> Result<BarbicanConfig, String> {
        let listen = self.validate()?;
        let auth = match (self.no_auth, self.keystone) {
            (Some(no_auth), _) => {
                let role =
                    crate::roles::map_role_names([no_auth.role.as_str()]).ok_or_else(|| {
                        format!(
                            "barbican.no_auth.role {:?} must be admin, member or reader",
                            no_auth.role
                        )
                    })?;
                AuthMode::NoAuth(NoAuthCaller {
                    project_name: no_auth
                        .project_name
                        .unwrap_or_else(|| no_auth.project_id.clone()),
                    tenant: no_auth.tenant,
                    project_id: no_auth.project_id,
                    user_id: no_auth.user_id,
                    role,
                    root_key: no_auth.root_key,
                })
            }
            (None, Some(keystone)) => {
                let password = read_password(&keystone)?;
                AuthMode::Keystone(KeystoneConfig {
                    base_url: keystone_base(&keystone.url)?,
                    user: keystone.user,
                    user_domain: keystone.user_domain,
                    password,
                    project: keystone.project,
                    project_domain: keystone.project_domain,
                    ca_file: keystone.ca_file,
                    timeout: Duration::from_millis(keystone.timeout_ms),
                })
            }
            (None, None) => {
                return Err(
                    "barbican needs a [barbican.keystone] table (or [barbican.no_auth] for \
                     local testing)"
                        .into(),
                )
            }
        };
        let ttl = self
            .token_cache_ttl_ms
            .map_or(revocation_bound, Duration::from_millis)
            .min(revocation_bound);
        Ok(BarbicanConfig {
            listen,
            public_url: self.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            auth,
            domains: self.domains,
            token_cache_ttl: ttl,
            token_cache_size: self.token_cache_size,
        })
    }

    /// Checks what can be checked without reading secrets; returns the listen
    /// address.
    pub fn validate(&self) -> Result<SocketAddr, String> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|e| format!("barbican.listen {:?}: {e}", self.listen))?;
        if let Some(url) = &self.public_url {
            check_base_url("barbican.public_url", url)?;
        }
        if let Some(k) = &self.keystone {
            check_base_url("barbican.keystone.url", &k.url)?;
            if k.password_file.is_some() == k.password_env.is_some() {
                return Err(
                    "barbican.keystone: set exactly one of password_file and password_env".into(),
                );
            }
            if k.user.is_empty() || k.project.is_empty() {
                return Err("barbican.keystone: user and project must not be empty".into());
            }
            if !(100..=60_000).contains(&k.timeout_ms) {
                return Err("barbican.keystone.timeout_ms must be between 100 and 60000".into());
            }
            if k.ca_file.is_some() && !k.url.starts_with("https://") {
                return Err("barbican.keystone.ca_file is only for an https:// url".into());
            }
        }
        for (domain, mapping) in &self.domains {
            if domain.is_empty() || mapping.tenant.is_empty() {
                return Err(format!(
                    "barbican.domains.{domain:?}: the domain and its tenant must not be empty"
                ));
            }
        }
        if self.token_cache_ttl_ms == Some(0) {
            return Err("barbican.token_cache_ttl_ms must be at least 1".into());
        }
        if !(1..=1_000_000).contains(&self.token_cache_size) {
            return Err("barbican.token_cache_size must be between 1 and 1000000".into());
        }
        if let Some(n) = &self.no_auth {
            if n.tenant.is_empty() || n.project_id.is_empty() || n.user_id.is_empty() {
                return Err(
                    "barbican.no_auth: tenant, project_id and user_id must not be empty".into(),
                );
            }
            if !listen.ip().is_loopback() {
                return Err(format!(
                    "barbican.no_auth lets anyone act as {} without a token: it is refused \
                     on {listen}, which is not a loopback address",
                    n.user_id
                ));
            }
        }
        Ok(listen)
    }
}

/// Keystone's base URL as configured, without `/v3` or a trailing slash.
fn keystone_base(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    Ok(url.strip_suffix("/v3").unwrap_or(url).to_owned())
}

/// An `http(s)://host[:port][/path]` URL without query or fragment.
fn check_base_url(setting: &str, text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("{setting} {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{setting} {text:?} must be an http:// or https:// URL"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{setting} {text:?} must not have a query or fragment"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> BarbicanSettings {
        toml_like(text)
    }

    /// The tables are TOML in kcm-server; the same serde shape reads JSON here,
    /// which keeps this crate free of a TOML parser.
    fn toml_like(json: &str) -> BarbicanSettings {
        serde_json::from_str(json).unwrap()
    }

    fn no_password(_: &KeystoneSettings) -> Result<SecretString, String> {
        Ok(SecretString::new("pw".into()))
    }

    const BOUND: Duration = Duration::from_millis(1000);

    #[test]
    fn keystone_settings_become_a_config() {
        let s = settings(
            r#"{"listen": "127.0.0.1:9311", "public_url": "https://kms.example.com:9311/",
                "keystone": {"url": "http://127.0.0.1:5000/v3/", "user": "kcm",
                             "password_env": "KCM_KEYSTONE_PASSWORD", "project": "service"},
                "domains": {"Default": {"tenant": "default"}},
                "token_cache_ttl_ms": 5000}"#,
        );
        let c = s.into_config(BOUND, no_password).unwrap();
        assert_eq!(
            c.public_url.as_deref(),
            Some("https://kms.example.com:9311")
        );
        // Never trusted longer than the revocation bound.
        assert_eq!(c.token_cache_ttl, BOUND);
        let AuthMode::Keystone(k) = c.auth else {
            panic!("not keystone")
        };
        assert_eq!(k.base_url, "http://127.0.0.1:5000");
        assert_eq!(
            (k.user_domain.as_str(), k.project_domain.as_str()),
            ("Default", "Default")
        );
        assert!(!format!("{k:?}").contains("pw\""), "{k:?}");
    }

    #[test]
    fn no_auth_is_refused_off_loopback() {
        let text = |listen: &str| {
            format!(
                r#"{{"listen": "{listen}", "no_auth": {{"tenant": "default",
                     "project_id": "p1", "user_id": "u1"}}}}"#
            )
        };
        let c = settings(&text("127.0.0.1:9311"))
            .into_config(BOUND, no_password)
            .unwrap();
        let AuthMode::NoAuth(caller) = c.auth else {
            panic!("not no-auth")
        };
        assert_eq!(caller.role, Role::TenantAdmin);
        assert_eq!(caller.project_name, "p1");
        let e = settings(&text("0.0.0.0:9311"))
            .into_config(BOUND, no_password)
            .unwrap_err();
        assert!(e.contains("not a loopback address"), "{e}");
        let e = settings(&text("[::1]:9311"))
            .into_config(BOUND, no_password)
            .map(|_| ());
        assert!(e.is_ok(), "{e:?}");
    }

    #[test]
    fn bad_settings_are_named() {
        let refusal = |json: &str| {
            settings(json)
                .into_config(BOUND, no_password)
                .map(|_| ())
                .unwrap_err()
        };
        assert!(refusal("{}").contains("[barbican.keystone]"));
        let keystone =
            r#""keystone": {"url": "http://k:5000", "user": "kcm", "project": "service""#;
        assert!(refusal(&format!("{{{keystone}}}}}")).contains("exactly one of password_file"));
        assert!(refusal(&format!(
            r#"{{{keystone}, "password_env": "P"}}, "public_url": "ftp://x"}}"#
        ))
        .contains("public_url"));
        assert!(refusal(
            r#"{"no_auth": {"tenant": "t", "project_id": "p", "user_id": "u", "role": "owner"}}"#
        )
        .contains("admin, member or reader"));
        assert!(serde_json::from_str::<BarbicanSettings>(r#"{"lissten": "x"}"#).is_err());
    }
}
