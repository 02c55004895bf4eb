//! Server settings: built-in defaults, then the TOML file, then `KCM_*` environment
//! variables, then command-line flags (each overriding the one before).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kcm_frontdoor::connections::ConnectionLimits;
use serde::Deserialize;

/// The `[rate_limits]` table: request-rate quotas, per node. A rate of 0 (the
/// default) is no quota; a burst of 0 is one second's worth of the rate.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Requests a second each access key may make, on average.
    pub access_key_requests_per_second: u32,
    /// Requests an access key may make at once after a quiet spell.
    pub access_key_burst: u32,
    /// Requests a second each tenant may make, over all its access keys.
    pub tenant_requests_per_second: u32,
    /// Requests a tenant may make at once after a quiet spell.
    pub tenant_burst: u32,
}

impl RateLimitSettings {
    /// The core's quotas.
    pub fn limits(&self) -> kcm_core::rate_limit::RateLimits {
        let rate = |per_second: u32, burst: u32| {
            (per_second > 0).then_some(kcm_core::rate_limit::Rate {
                per_second,
                burst: if burst == 0 { per_second } else { burst },
            })
        };
        kcm_core::rate_limit::RateLimits {
            access_key: rate(self.access_key_requests_per_second, self.access_key_burst),
            tenant: rate(self.tenant_requests_per_second, self.tenant_burst),
        }
    }
}

/// The `[tls]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// The `[keystore]` table: the software keystore's master key.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreSettings {
    /// Master key file (default `<data-dir>/master.key`). Ignored when a passphrase is set.
    pub master_key_file: Option<PathBuf>,
    /// A file holding the passphrase the master key is derived from (readable by its
    /// owner only; one line). Without it, the systemd credential
    /// `kcm-master-passphrase` or `KCM_MASTER_PASSPHRASE` may give one.
    pub passphrase_file: Option<PathBuf>,
}

/// The name of the embedded keystore, always present.
pub const SOFTWARE_KEYSTORE: &str = "software";

/// One `[keystores.<name>]` table: a keystore provider besides the embedded
/// `software` one. `kind` says which.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KeystoreConfig {
    /// A PKCS#11 token (an HSM, or SoftHSM2 for development).
    Pkcs11(Pkcs11Settings),
    /// An AWS KMS External Key Store (XKS) proxy in front of the customer's own
    /// key manager (HYOK: keys are referenced, never held).
    Xks(XksSettings),
    /// An external keystore plugin: a process kcm starts and supervises, speaking
    /// the `kcm.keystore.v1` gRPC protocol (docs/keystore-plugins.md).
    Plugin(PluginSettings),
}

/// A `kind = "plugin"` keystore table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// The plugin executable (an absolute path).
    pub command: PathBuf,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables for it (it inherits only PATH, HOME and the locale
    /// from kcm). Put secrets in files the plugin reads, not here.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Where kcm creates the plugin's private socket directory (default: the
    /// system's temporary directory; a Unix socket path is limited to 107 bytes).
    pub socket_dir: Option<PathBuf>,
    /// How long a (re)started plugin has to become healthy, in milliseconds.
    #[serde(default = "default_plugin_start_timeout_ms")]
    pub start_timeout_ms: u64,
    /// How long one call to the plugin may take, in milliseconds.
    #[serde(default = "default_plugin_call_timeout_ms")]
    pub call_timeout_ms: u64,
}

fn default_plugin_start_timeout_ms() -> u64 {
    10_000
}

fn default_plugin_call_timeout_ms() -> u64 {
    5_000
}

/// A `kind = "xks"` keystore table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XksSettings {
    /// `https://<server>[:port]` of the proxy.
    pub endpoint: String,
    /// `[/<prefix>]/kms/xks/v1`, as the proxy serves it.
    #[serde(default = "default_xks_uri_path")]
    pub uri_path: String,
    /// The SigV4 access key id the proxy issued to kcm.
    pub access_key_id: String,
    /// File holding the SigV4 secret access key (mode 0600; one line). Exactly
    /// one of `secret_file` and `secret_env` is set.
    pub secret_file: Option<PathBuf>,
    /// Name of the environment variable holding the secret access key (removed
    /// from the environment once read).
    pub secret_env: Option<String>,
    /// The region kcm signs for; the proxy checks it.
    #[serde(default = "default_xks_region")]
    pub region: String,
    /// PEM file of the CA certificates that sign the proxy's certificate (else
    /// the operating system's roots).
    pub ca_file: Option<PathBuf>,
    /// PEM file of kcm's client certificate (chain, leaf first), for a proxy that
    /// requires mutual TLS; set with `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key (mode 0600).
    pub client_key_file: Option<PathBuf>,
    /// How long one call to the proxy may take, in milliseconds.
    #[serde(default = "default_xks_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_xks_uri_path() -> String {
    "/kms/xks/v1".into()
}

fn default_xks_region() -> String {
    "us-east-1".into()
}

fn default_xks_timeout_ms() -> u64 {
    2000
}

/// A `kind = "pkcs11"` keystore table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Settings {
    /// The vendor's PKCS#11 module (shared library).
    pub module: PathBuf,
    /// Label of the token to use; the slot is found by it.
    pub token_label: String,
    /// File holding the user PIN (mode 0600; one line). Exactly one of `pin_file`
    /// and `pin_env` is set: the PIN is never written in the configuration itself.
    pub pin_file: Option<PathBuf>,
    /// Name of the environment variable holding the user PIN (removed from the
    /// environment once read).
    pub pin_env: Option<String>,
    /// Most sessions kept open with the token.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
}

fn default_max_sessions() -> usize {
    8
}

/// Everything `kcm serve` can be configured with. Field names are the TOML keys;
/// each also has a `KCM_<UPPER_NAME>` environment variable.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Data directory: embedded store, software keystore, credentials file.
    pub data_dir: PathBuf,
    /// Listen address (`host:port`).
    pub listen: String,
    /// Region in ARNs and SigV4 scopes.
    pub region: String,
    /// Log filter (`info`, `kcm=debug`, …).
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Revocation bound in milliseconds (DESIGN.md §2).
    pub revocation_bound_ms: u64,
    /// How often material below a root key held in the customer's own keystore
    /// (HYOK) is unwrapped afresh, in milliseconds (DESIGN.md §2).
    pub external_check_interval_ms: u64,
    /// Seconds in a "day" for deletion windows and rotation periods. Testing only.
    pub day_seconds: f64,
    /// How long BYOK import parameters stay usable, in milliseconds (24 h, as in AWS
    /// KMS). Testing only: tests shorten it to see an expired token refused.
    pub import_token_lifetime_ms: u64,
    /// How often background work (deletions, rotations) runs, in milliseconds.
    pub scheduler_interval_ms: u64,
    /// Record every request in the audit log. Turn off only to measure its cost.
    pub audit: bool,
    /// How often a signed checkpoint is written for each audit chain that grew, in
    /// milliseconds.
    pub audit_checkpoint_interval_ms: u64,
    /// Keep audit records in `<data_dir>/audit-spool` while the store cannot take
    /// them, and forward them when it can; off: such requests are refused.
    pub audit_spool: bool,
    /// TLS.
    pub tls: TlsSettings,
    /// Serve plain HTTP on an address other than loopback. Off: without `[tls]`, a
    /// listener reachable from other hosts would receive bearer secrets and signed
    /// requests in clear text, so kcm refuses to start. Turn on only when something
    /// on the path (a TLS-terminating proxy, a private link) protects the traffic.
    pub allow_plain_http: bool,
    /// Who may read `/metrics`: [`MetricsAccess::Off`] (not served) or
    /// [`MetricsAccess::Public`] (anyone who can reach the listener, no credentials).
    pub metrics: MetricsAccess,
    /// Software keystore.
    pub keystore: KeystoreSettings,
    /// The keystore new root keys are created in: `software` or the name of a
    /// `[keystores.<name>]` table.
    pub default_keystore: String,
    /// Keystores besides the embedded `software` one, by name.
    pub keystores: BTreeMap<String, KeystoreConfig>,
    /// A PostgreSQL URL: the store shared by every node of a cluster, instead of
    /// the embedded SQLite file in the data directory.
    pub database_url: Option<DatabaseUrl>,
    /// Most connections this node keeps to PostgreSQL.
    pub database_max_connections: u32,
    /// The Kubernetes KMS v2 plugin inside this server, for a single host
    /// (`[kubernetes_kms]`); none when absent.
    pub kubernetes_kms: Option<KubernetesKmsSettings>,
    /// The OpenStack Key Manager API (Barbican v1) on a listener of its own, with
    /// Keystone tokens (`[barbican]`); none when absent.
    pub barbican: Option<kcm_barbican::BarbicanSettings>,
    /// The AWS XKS proxy API on a listener of its own, over HTTPS only, so that AWS
    /// KMS keeps its external keys in kcm (`[xks_server]`); none when absent.
    pub xks_server: Option<kcm_xks_server::config::XksServerSettings>,
    /// KMIP on a listener of its own, over mutual TLS (`[kmip_server]`); none when
    /// absent.
    pub kmip_server: Option<kcm_kmip::config::KmipServerSettings>,
    /// The Vault-compatible API (Transit) on a listener of its own, HTTPS when
    /// `[tls]` is set (`[vault_server]`); none when absent.
    pub vault_server: Option<kcm_vault::config::VaultServerSettings>,
    /// Most client connections open at once, over every listener. Unset: derived
    /// from the open-file limit (raised to its hard limit at start): three quarters
    /// of it, at most 16 384. At the cap a new connection makes room by closing the
    /// least recently active one that serves no authenticated request; it is
    /// refused only when every one does.
    pub max_connections: Option<usize>,
    /// How long a client has to send a request head, in milliseconds: from its
    /// connection's accept (TLS handshake included), or from the first byte of a
    /// later request on a kept-alive connection.
    pub header_read_timeout_ms: u64,
    /// How long a client has to send a request body once its head is read, in
    /// milliseconds.
    pub body_read_timeout_ms: u64,
    /// How long a kept-alive connection may wait silent for its next request, in
    /// milliseconds.
    pub idle_timeout_ms: u64,
    /// Most bytes of request bodies read but not yet authenticated (SigV4 bodies,
    /// before their signature is checked), over every connection.
    pub max_unauthenticated_body_bytes: usize,
    /// Request-rate quotas per access key and per tenant (`[rate_limits]`).
    pub rate_limits: RateLimitSettings,
}

/// Whether `/metrics` is served (the `metrics` setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Not served (`404`): the default, so that nothing about the traffic is told to
    /// whoever can reach the listener.
    #[default]
    Off,
    /// Served to anyone who can reach the listener, without credentials, as
    /// Prometheus scrapes it: request counts and latencies per door, operation and
    /// status (no tenant, key, caller or address).
    Public,
}

impl std::str::FromStr for MetricsAccess {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "off" => Ok(MetricsAccess::Off),
            "public" => Ok(MetricsAccess::Public),
            other => Err(format!("{other:?} is neither \"off\" nor \"public\"")),
        }
    }
}

/// `[kubernetes_kms]`: serve the Kubernetes KMS v2 API on a Unix socket from this
/// server itself (the door `k8s-kms`), acting as one access key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesKmsSettings {
    /// The Unix socket (mode 0600, owned by the server's user); the API server's
    /// EncryptionConfiguration names it as `unix://<socket>`.
    pub socket: PathBuf,
    /// The key that encrypts: a key id or `alias/NAME`.
    pub key_id: String,
    /// The cluster's name, bound to every ciphertext as encryption context.
    pub cluster: String,
    /// The access key the plugin acts as (scoped to the cluster's system, limited to
    /// Encrypt, Decrypt and DescribeKey). Whoever can open the socket acts as it.
    pub access_key_id: String,
    /// How old the answer to Status may be, in milliseconds (default: the
    /// revocation bound).
    pub status_max_age_ms: Option<u64>,
}

/// A database URL: it may hold a password, so `Debug` shows only its scheme.
#[derive(Clone)]
pub struct DatabaseUrl(zeroize::Zeroizing<String>);

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|url| Self(zeroize::Zeroizing::new(url)))
    }
}

impl DatabaseUrl {
    /// The URL, password included. Every call site handles a secret.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The URL as it may be printed: scheme, user, host, port and database. The
    /// password and the query (which may carry `password=`) are left out, so this
    /// is built from the parts that are kept rather than by cutting the secret out.
    pub fn display_target(&self) -> String {
        kcm_store_postgres::display_target(self.expose_secret())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split_once("://").map_or("?", |(s, _)| s);
        write!(f, "DatabaseUrl({scheme}://[REDACTED])")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./kcm-data"),
            listen: "127.0.0.1:8990".into(),
            region: "us-east-1".into(),
            log: "info".into(),
            log_format: "text".into(),
            revocation_bound_ms: 1000,
            external_check_interval_ms: 5000,
            day_seconds: 86_400.0,
            import_token_lifetime_ms: 24 * 60 * 60 * 1000,
            scheduler_interval_ms: 1000,
            audit: true,
            audit_checkpoint_interval_ms: 60_000,
            audit_spool: true,
            tls: TlsSettings::default(),
            allow_plain_http: false,
            metrics: MetricsAccess::Off,
            keystore: KeystoreSettings::default(),
            default_keystore: SOFTWARE_KEYSTORE.into(),
            keystores: BTreeMap::new(),
            database_url: None,
            database_max_connections: 16,
            kubernetes_kms: None,
            barbican: None,
            xks_server: None,
            vault_server: None,
            kmip_server: None,
            max_connections: None,
            header_read_timeout_ms: millis(ConnectionLimits::DEFAULT_HEADER_READ_TIMEOUT),
            body_read_timeout_ms: millis(ConnectionLimits::DEFAULT_BODY_READ_TIMEOUT),
            idle_timeout_ms: millis(ConnectionLimits::DEFAULT_IDLE_TIMEOUT),
            max_unauthenticated_body_bytes: ConnectionLimits::DEFAULT_UNAUTHENTICATED_BODY_BYTES,
            rate_limits: RateLimitSettings::default(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Sets `into` from the environment variable `name` when it is set and not empty.
/// A value that does not parse is an error naming the variable; strings and paths
/// always parse.
fn env_parse<T: std::str::FromStr>(name: &str, into: &mut T) -> Result<()>
where
    T::Err: std::fmt::Display,
{
    if let Some(v) = env(name) {
        *into = v
            .parse()
            .map_err(|e| anyhow::anyhow!("environment variable {name}={v:?} is invalid: {e}"))?;
    }
    Ok(())
}

/// The log filter `text` (the `log` setting, tracing's `EnvFilter` syntax) as a
/// filter, or why it is refused: a directive that does not parse, or a bare word
/// that is not a level. tracing would take a bare word such as `debg` as the name of
/// a target and log nothing else, so a typo would silently turn the log off; a
/// target is written with its level instead (`kcm_core=trace`).
pub fn log_filter(text: &str) -> Result<tracing_subscriber::EnvFilter> {
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains(['=', '['])
            && directive
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .is_err()
        {
            bail!(
                "log filter {text:?} is invalid: {directive:?} is not a level (off, error, warn, \
                 info, debug, trace); to log a target at every level write {directive}=trace"
            );
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map_err(|e| anyhow::anyhow!("log filter {text:?} is invalid: {e}"))
}

impl Settings {
    /// Loads settings: defaults, then `config` (TOML), then the environment.
    /// Flags are applied by the caller afterwards.
    pub fn load(config: Option<&Path>) -> Result<Settings> {
        let mut s = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("config file {} is invalid", path.display()))?
            }
            None => Settings::default(),
        };
        env_parse("KCM_DATA_DIR", &mut s.data_dir)?;
        env_parse("KCM_LISTEN", &mut s.listen)?;
        env_parse("KCM_REGION", &mut s.region)?;
        env_parse("KCM_LOG", &mut s.log)?;
        env_parse("KCM_LOG_FORMAT", &mut s.log_format)?;
        env_parse("KCM_REVOCATION_BOUND_MS", &mut s.revocation_bound_ms)?;
        env_parse(
            "KCM_EXTERNAL_CHECK_INTERVAL_MS",
            &mut s.external_check_interval_ms,
        )?;
        env_parse("KCM_DAY_SECONDS", &mut s.day_seconds)?;
        env_parse(
            "KCM_IMPORT_TOKEN_LIFETIME_MS",
            &mut s.import_token_lifetime_ms,
        )?;
        env_parse("KCM_SCHEDULER_INTERVAL_MS", &mut s.scheduler_interval_ms)?;
        env_parse("KCM_AUDIT", &mut s.audit)?;
        env_parse(
            "KCM_AUDIT_CHECKPOINT_INTERVAL_MS",
            &mut s.audit_checkpoint_interval_ms,
        )?;
        env_parse("KCM_AUDIT_SPOOL", &mut s.audit_spool)?;
        if let Some(v) = env("KCM_TLS_CERT") {
            s.tls.cert = Some(v.into());
        }
        if let Some(v) = env("KCM_TLS_KEY") {
            s.tls.key = Some(v.into());
        }
        env_parse("KCM_ALLOW_PLAIN_HTTP", &mut s.allow_plain_http)?;
        env_parse("KCM_METRICS", &mut s.metrics)?;
        if let Some(v) = env("KCM_MASTER_KEY_FILE") {
            s.keystore.master_key_file = Some(v.into());
        }
        if let Some(v) = env("KCM_MASTER_PASSPHRASE_FILE") {
            s.keystore.passphrase_file = Some(v.into());
        }
        env_parse("KCM_DEFAULT_KEYSTORE", &mut s.default_keystore)?;
        if let Some(v) = env("KCM_DATABASE_URL") {
            s.database_url = Some(DatabaseUrl(zeroize::Zeroizing::new(v)));
        }
        env_parse(
            "KCM_DATABASE_MAX_CONNECTIONS",
            &mut s.database_max_connections,
        )?;
        if env("KCM_MAX_CONNECTIONS").is_some() {
            let mut n = 0usize;
            env_parse("KCM_MAX_CONNECTIONS", &mut n)?;
            s.max_connections = Some(n);
        }
        env_parse("KCM_HEADER_READ_TIMEOUT_MS", &mut s.header_read_timeout_ms)?;
        env_parse("KCM_BODY_READ_TIMEOUT_MS", &mut s.body_read_timeout_ms)?;
        env_parse("KCM_IDLE_TIMEOUT_MS", &mut s.idle_timeout_ms)?;
        env_parse(
            "KCM_MAX_UNAUTHENTICATED_BODY_BYTES",
            &mut s.max_unauthenticated_body_bytes,
        )?;
        let limits = &mut s.rate_limits;
        env_parse(
            "KCM_ACCESS_KEY_REQUESTS_PER_SECOND",
            &mut limits.access_key_requests_per_second,
        )?;
        env_parse("KCM_ACCESS_KEY_BURST", &mut limits.access_key_burst)?;
        env_parse(
            "KCM_TENANT_REQUESTS_PER_SECOND",
            &mut limits.tenant_requests_per_second,
        )?;
        env_parse("KCM_TENANT_BURST", &mut limits.tenant_burst)?;
        Ok(s)
    }

    /// Checks values that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<()> {
        if !(self.day_seconds > 0.0 && self.day_seconds.is_finite()) {
            bail!(
                "day_seconds must be a positive number, got {}",
                self.day_seconds
            );
        }
        if self.import_token_lifetime_ms == 0 {
            bail!("import_token_lifetime_ms must be at least 1");
        }
        if self.revocation_bound_ms == 0 {
            bail!("revocation_bound_ms must be at least 1");
        }
        if self.external_check_interval_ms == 0 {
            bail!("external_check_interval_ms must be at least 1");
        }
        if self.audit_checkpoint_interval_ms == 0 {
            bail!("audit_checkpoint_interval_ms must be at least 1");
        }
        if self.scheduler_interval_ms == 0 {
            bail!("scheduler_interval_ms must be at least 1");
        }
        log_filter(&self.log)?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("log_format must be text or json, got {:?}", self.log_format);
        }
        if let Some(k8s) = &self.kubernetes_kms {
            kcm_k8s_kms::embedded::parse_key(&k8s.key_id)
                .map_err(|e| anyhow::anyhow!("kubernetes_kms.key_id: {e}"))?;
            kcm_k8s_kms::check_cluster_name(&k8s.cluster)
                .map_err(|e| anyhow::anyhow!("kubernetes_kms.cluster: {e}"))?;
            if k8s.access_key_id.is_empty() {
                bail!("kubernetes_kms.access_key_id is empty");
            }
            if k8s.status_max_age_ms == Some(0) {
                bail!("kubernetes_kms.status_max_age_ms must be at least 1");
            }
        }
        if let Some(barbican) = &self.barbican {
            let listen = barbican.validate().map_err(|e| anyhow::anyhow!(e))?;
            if self.listen.parse::<std::net::SocketAddr>().ok() == Some(listen) {
                bail!("barbican.listen must differ from listen: the Barbican API has a listener of its own");
            }
        }
        if let Some(xks) = &self.xks_server {
            let listen = xks.validate().map_err(|e| anyhow::anyhow!(e))?;
            if listens_on(
                listen,
                [
                    Some(self.listen.as_str()),
                    self.barbican.as_ref().map(|b| b.listen.as_str()),
                ],
            ) {
                bail!("xks_server.listen must differ from listen and barbican.listen: the XKS proxy API has a listener of its own");
            }
            if self.tls.cert.is_none() {
                bail!(
                    "xks_server needs tls.cert and tls.key: the XKS proxy API is served over \
                     HTTPS only (AWS KMS connects to nothing else, and the requests carry key \
                     material)"
                );
            }
        }
        if let Some(vault) = &self.vault_server {
            let listen = vault.validate().map_err(|e| anyhow::anyhow!(e))?;
            if listens_on(
                listen,
                [
                    Some(self.listen.as_str()),
                    self.barbican.as_ref().map(|b| b.listen.as_str()),
                    self.xks_server.as_ref().map(|x| x.listen.as_str()),
                ],
            ) {
                bail!("vault_server.listen must differ from the other listeners: the Vault API has a listener of its own");
            }
        }
        if let Some(kmip) = &self.kmip_server {
            let listen = kmip.validate().map_err(|e| anyhow::anyhow!(e))?;
            if self.listen.parse::<std::net::SocketAddr>().ok() == Some(listen) {
                bail!("kmip_server.listen must differ from listen: KMIP has a listener of its own");
            }
            if self.tls.cert.is_none() {
                bail!(
                    "kmip_server needs tls.cert and tls.key: KMIP is served over mutual TLS only"
                );
            }
        }
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("database_url must be a postgres:// or postgresql:// URL");
            }
        }
        // A management change holds one connection (the cluster-wide change lock)
        // while it reads through others, and the change listener holds one more.
        if !(4..=1000).contains(&self.database_max_connections) {
            bail!(
                "database_max_connections must be between 4 and 1000 (a node holds one \
                 connection for a management change while it reads through others)"
            );
        }
        self.validate_connection_limits()?;
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            bail!("TLS needs both tls.cert and tls.key (or KCM_TLS_CERT and KCM_TLS_KEY)");
        }
        self.check_plain_http("listen", &self.listen)?;
        if let Some(barbican) = &self.barbican {
            self.check_plain_http("barbican.listen", &barbican.listen)?;
        }
        if self.region.is_empty()
            || !self
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            bail!("region {:?} is invalid", self.region);
        }
        self.validate_keystores()
    }

    /// Refuses to serve plain HTTP on `address` (the setting `name`) unless it is a
    /// loopback address, TLS is configured, or `allow_plain_http` says so. A host
    /// name counts as loopback only if every address it resolves to is one.
    fn check_plain_http(&self, name: &str, address: &str) -> Result<()> {
        if self.tls.cert.is_some() || self.allow_plain_http {
            return Ok(());
        }
        use std::net::ToSocketAddrs;
        let addresses: Vec<std::net::SocketAddr> = address
            .to_socket_addrs()
            .with_context(|| format!("{name} {address:?} is not an address to listen on"))?
            .collect();
        if addresses.is_empty() || !addresses.iter().all(|a| a.ip().is_loopback()) {
            bail!(
                "{name} {address:?} is not a loopback address and no TLS is configured: access \
                 key secrets and signed requests would cross the network in plain HTTP. Set \
                 tls.cert and tls.key (KCM_TLS_CERT, KCM_TLS_KEY), listen on 127.0.0.1, or, if \
                 a TLS proxy or a private link protects the traffic, set allow_plain_http = true \
                 (KCM_ALLOW_PLAIN_HTTP=true)"
            );
        }
        Ok(())
    }

    fn validate_connection_limits(&self) -> Result<()> {
        if self
            .max_connections
            .is_some_and(|n| !(1..=1_000_000).contains(&n))
        {
            bail!("max_connections must be between 1 and 1000000 (or unset: derived from the open-file limit)");
        }
        for (name, ms, max) in [
            (
                "header_read_timeout_ms",
                self.header_read_timeout_ms,
                600_000,
            ),
            ("body_read_timeout_ms", self.body_read_timeout_ms, 600_000),
            ("idle_timeout_ms", self.idle_timeout_ms, 3_600_000),
        ] {
            if !(100..=max).contains(&ms) {
                bail!("{name} must be between 100 and {max}, got {ms}");
            }
        }
        // At least twice the largest body any door takes (the AWS API's), so that
        // one such body never has the budget to itself.
        let least = 2 * kcm_aws_api::MAX_BODY;
        if !(least..=(4 << 30)).contains(&self.max_unauthenticated_body_bytes) {
            bail!(
                "max_unauthenticated_body_bytes must be between {least} and 4294967296, got {}",
                self.max_unauthenticated_body_bytes
            );
        }
        Ok(())
    }

    /// The bounds every listener applies, for a process allowed `nofile` open files
    /// (the cap is derived from it unless `max_connections` is set).
    pub fn connection_limits(&self, nofile: u64) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self
                .max_connections
                .unwrap_or_else(|| ConnectionLimits::max_connections_for(nofile)),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(self.body_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            unauthenticated_body_bytes: self.max_unauthenticated_body_bytes,
        }
    }

    fn validate_keystores(&self) -> Result<()> {
        for (name, keystore) in &self.keystores {
            if name == SOFTWARE_KEYSTORE {
                bail!("keystores.{name}: the name {SOFTWARE_KEYSTORE:?} is the embedded keystore's; choose another");
            }
            if name.is_empty()
                || name.len() > 32
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                bail!("keystores.{name}: a keystore name is 1 to 32 of a-z, 0-9 and '-'");
            }
            match keystore {
                KeystoreConfig::Pkcs11(p) => {
                    if p.pin_file.is_some() == p.pin_env.is_some() {
                        bail!("keystores.{name}: set exactly one of pin_file and pin_env");
                    }
                    let label = p.token_label.trim();
                    if label.is_empty() || label.len() > 32 {
                        bail!("keystores.{name}: token_label must be 1 to 32 characters");
                    }
                    if !(1..=256).contains(&p.max_sessions) {
                        bail!("keystores.{name}: max_sessions must be between 1 and 256");
                    }
                }
                KeystoreConfig::Xks(x) => {
                    if x.secret_file.is_some() == x.secret_env.is_some() {
                        bail!("keystores.{name}: set exactly one of secret_file and secret_env");
                    }
                    if x.client_cert_file.is_some() != x.client_key_file.is_some() {
                        bail!("keystores.{name}: client_cert_file and client_key_file go together (mutual TLS to the proxy)");
                    }
                    if !(100..=60_000).contains(&x.timeout_ms) {
                        bail!("keystores.{name}: timeout_ms must be between 100 and 60000");
                    }
                }
                KeystoreConfig::Plugin(p) => {
                    if !p.command.is_absolute() {
                        bail!(
                            "keystores.{name}: command {} must be an absolute path",
                            p.command.display()
                        );
                    }
                    if !(100..=600_000).contains(&p.start_timeout_ms)
                        || !(100..=60_000).contains(&p.call_timeout_ms)
                    {
                        bail!("keystores.{name}: start_timeout_ms must be 100 to 600000 and call_timeout_ms 100 to 60000");
                    }
                }
            }
        }
        if self.default_keystore != SOFTWARE_KEYSTORE
            && !self.keystores.contains_key(&self.default_keystore)
        {
            bail!(
                "default_keystore {:?} is neither {SOFTWARE_KEYSTORE:?} nor a [keystores.<name>] table",
                self.default_keystore
            );
        }
        Ok(())
    }

    /// The file the server reads the software keystore's master key from when no
    /// passphrase is set: `keystore.master_key_file`, else `<data-dir>/master.key`.
    /// The restore asks here too, so it puts the key where the server will look.
    pub fn master_key_file(&self) -> PathBuf {
        self.keystore
            .master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(kcm_keystore_software::MASTER_KEY_FILE))
    }

    /// The revocation bound.
    pub fn revocation_bound(&self) -> Duration {
        Duration::from_millis(self.revocation_bound_ms)
    }

    /// The configured length of a day.
    pub fn day(&self) -> Duration {
        Duration::from_secs_f64(self.day_seconds)
    }

    /// How long BYOK import parameters stay usable.
    pub fn import_token_lifetime(&self) -> Duration {
        Duration::from_millis(self.import_token_lifetime_ms)
    }

    /// The background work interval.
    pub fn scheduler_interval(&self) -> Duration {
        Duration::from_millis(self.scheduler_interval_ms)
    }
}

/// Whether one of the `others` listener addresses (those set) is `listen`.
fn listens_on<'a>(
    listen: std::net::SocketAddr,
    others: impl IntoIterator<Item = Option<&'a str>>,
) -> bool {
    others
        .into_iter()
        .flatten()
        .any(|other| other.parse::<std::net::SocketAddr>().ok() == Some(listen))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why the configuration `text`, written to `path`, is refused: by the parser
    /// or by validation.
    fn refusal(path: &Path, text: &str) -> String {
        std::fs::write(path, text).unwrap();
        match Settings::load(Some(path)) {
            Ok(s) => s.validate().unwrap_err().to_string(),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn toml_file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nday_seconds = 0.5\n[tls]\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.day_seconds, 0.5);
        assert_eq!(s.region, "us-east-1");
        std::fs::write(&path, "lissten = \"x\"\n").unwrap();
        let err = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
        assert!(err.contains("lissten"), "{err}");
    }

    #[test]
    fn connection_limits_have_careful_defaults_and_are_checked() {
        let s = Settings::default();
        let limits = s.connection_limits(20_000);
        assert_eq!(limits.max_connections, 15_000);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.body_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.unauthenticated_body_bytes, 32 << 20);
        s.validate().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        std::fs::write(
            &path,
            "max_connections = 200\nheader_read_timeout_ms = 2000\nidle_timeout_ms = 5000\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        s.validate().unwrap();
        let limits = s.connection_limits(20_000);
        assert_eq!(limits.max_connections, 200);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));

        let invalid = |text: &str| refusal(&path, text);
        assert!(invalid("max_connections = 0\n").contains("max_connections"));
        assert!(invalid("header_read_timeout_ms = 5\n").contains("header_read_timeout_ms"));
        assert!(invalid("idle_timeout_ms = 0\n").contains("idle_timeout_ms"));
        assert!(invalid("max_unauthenticated_body_bytes = 1024\n")
            .contains("max_unauthenticated_body_bytes"));
    }

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        let shown = |url: &str| DatabaseUrl(zeroize::Zeroizing::new(url.into())).display_target();
        assert_eq!(
            shown("postgres://kcm:s3cret@db.example:5432/kcm?sslmode=require&password=s3cret"),
            "postgres://kcm@db.example:5432/kcm"
        );
        assert_eq!(shown("postgresql://db/kcm"), "postgresql://db/kcm");
        assert_eq!(
            shown("postgres:///kcm?host=/run/postgresql&password=s3cret"),
            "postgres:///kcm"
        );
        for odd in [
            "postgres://kcm:s3/cr@et@db/kcm",
            "postgres://kcm:s3cret@[::1/kcm",
        ] {
            assert!(!shown(odd).contains("s3"), "{}", shown(odd));
        }
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let s = Settings {
            day_seconds: 0.0,
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("day_seconds"));
        let s = Settings {
            import_token_lifetime_ms: 0,
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("import_token_lifetime_ms"));
        let s = Settings {
            tls: TlsSettings {
                cert: Some("c.pem".into()),
                key: None,
            },
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("TLS"));
        let s = Settings {
            database_max_connections: 2,
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database_max_connections must be between 4 and 1000"));
    }

    #[test]
    fn plain_http_is_refused_off_loopback_unless_allowed_or_tls() {
        let on = |listen: &str| Settings {
            listen: listen.into(),
            ..Settings::default()
        };
        for loopback in [
            "127.0.0.1:8990",
            "127.9.9.9:1",
            "[::1]:8990",
            "localhost:8990",
        ] {
            on(loopback).validate().unwrap();
        }
        for open in ["0.0.0.0:8990", "[::]:8990", "192.0.2.10:8990"] {
            let e = on(open).validate().unwrap_err().to_string();
            assert!(e.contains("not a loopback address and no TLS"), "{e}");
            assert!(e.contains("allow_plain_http = true"), "{e}");
            Settings {
                allow_plain_http: true,
                ..on(open)
            }
            .validate()
            .unwrap();
            Settings {
                tls: TlsSettings {
                    cert: Some("c.pem".into()),
                    key: Some("k.pem".into()),
                },
                ..on(open)
            }
            .validate()
            .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        let e = refusal(
            &path,
            "[barbican]\nlisten = \"0.0.0.0:9311\"\n[barbican.keystone]\n\
             url = \"http://127.0.0.1:5000/v3\"\nuser = \"kcm\"\npassword_env = \"P\"\n\
             project = \"service\"\n[barbican.domains.Default]\ntenant = \"default\"\n",
        );
        assert!(
            e.contains("barbican.listen \"0.0.0.0:9311\" is not a loopback"),
            "{e}"
        );
        std::fs::write(&path, "allow_plain_http = true\nlisten = \"0.0.0.0:1\"\n").unwrap();
        Settings::load(Some(&path)).unwrap().validate().unwrap();
    }

    #[test]
    fn metrics_are_off_unless_made_public() {
        assert_eq!(Settings::default().metrics, MetricsAccess::Off);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        std::fs::write(&path, "metrics = \"public\"\n").unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        assert_eq!(s.metrics, MetricsAccess::Public);
        assert!(refusal(&path, "metrics = \"open\"\n").contains("open"));
        assert_eq!("off".parse::<MetricsAccess>(), Ok(MetricsAccess::Off));
        assert!("Public".parse::<MetricsAccess>().is_err());
    }

    #[test]
    fn a_log_filter_that_would_log_nothing_is_refused() {
        for good in [
            "info",
            "warn,kcm_core=debug",
            "kcm_core=trace",
            "",
            "off",
            "DEBUG",
        ] {
            log_filter(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        let e = log_filter("kcm=bogus").unwrap_err().to_string();
        assert!(e.contains("log filter \"kcm=bogus\" is invalid"), "{e}");
        let e = log_filter("info,debg").unwrap_err().to_string();
        assert!(e.contains("\"debg\" is not a level"), "{e}");
        assert!(e.contains("debg=trace"), "{e}");
        let s = Settings {
            log: "verbose".into(),
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("verbose"));
    }

    #[test]
    fn pkcs11_keystore_tables_parse_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        let table =
            "[keystores.hsm]\nkind = \"pkcs11\"\nmodule = \"/m.so\"\ntoken_label = \"kcm\"\n";
        std::fs::write(
            &path,
            format!("default_keystore = \"hsm\"\n{table}pin_env = \"HSM_PIN\"\n"),
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        s.validate().unwrap();
        let KeystoreConfig::Pkcs11(p) = &s.keystores["hsm"] else {
            panic!("not a pkcs11 table: {:?}", s.keystores["hsm"]);
        };
        assert_eq!((p.token_label.as_str(), p.max_sessions), ("kcm", 8));

        let invalid = |text: String| refusal(&path, &text);
        assert!(invalid(table.to_string()).contains("exactly one of pin_file and pin_env"));
        assert!(
            invalid(format!("{table}pin_env = \"P\"\npin_file = \"/p\"\n")).contains("exactly one")
        );
        assert!(invalid(format!("{table}pin_env = \"P\"\npin = \"1234\"\n")).contains("pin"));
        assert!(invalid("default_keystore = \"nope\"\n".into()).contains("nope"));
        assert!(invalid(
            "[keystores.software]\nkind = \"pkcs11\"\nmodule = \"/m\"\ntoken_label = \"t\"\npin_env = \"P\"\n"
                .into()
        )
        .contains("embedded"));
        assert!(invalid("[keystores.x]\nkind = \"vault\"\n".into()).contains("vault"));
    }

    #[test]
    fn an_xks_server_table_needs_tls_and_a_listener_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        let invalid = |text: &str| refusal(&path, text);
        let table = "[xks_server]\nlisten = \"127.0.0.1:8446\"\nuri_path_prefix = \"/a\"\n";
        let e = invalid(table);
        assert!(e.contains("xks_server needs tls.cert"), "{e}");
        let tls = "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n";
        std::fs::write(&path, format!("{table}{tls}")).unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        s.validate().unwrap();
        assert_eq!(s.xks_server.unwrap().uri_path(), "/a/kms/xks/v1");
        let same = format!("listen = \"127.0.0.1:8446\"\n{table}{tls}");
        assert!(invalid(&same).contains("listener of its own"));
        assert!(
            invalid(&format!("[xks_server]\nuri_path_prefix = \"x\"\n{tls}"))
                .contains("uri_path_prefix")
        );
        assert!(invalid("[xks_server]\nlissten = \"x\"\n").contains("lissten"));
    }

    #[test]
    fn a_kmip_server_table_needs_tls_and_well_formed_clients() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        let invalid = |text: &str| refusal(&path, text);
        let fingerprint = "ab".repeat(32);
        let table = format!(
            "[kmip_server]\nlisten = \"127.0.0.1:5696\"\nclient_ca_file = \"/ca.pem\"\n\
             [[kmip_server.clients]]\nname = \"rgw\"\nfingerprint = \"{fingerprint}\"\n\
             access_key_id = \"KCMKEY\"\n"
        );
        assert!(invalid(&table).contains("kmip_server needs tls.cert"));
        let tls = "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n";
        std::fs::write(&path, format!("{table}{tls}")).unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        s.validate().unwrap();
        assert_eq!(s.kmip_server.unwrap().clients[0].access_key_id, "KCMKEY");
        let short = table.replace(&fingerprint, "abcd");
        assert!(invalid(&format!("{short}{tls}")).contains("64 hex digits"));
        assert!(invalid("[kmip_server]\nlisten = \"x\"\n").contains("client_ca_file"));
    }

    #[test]
    fn a_barbican_table_parses_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        let table = "[barbican]\nlisten = \"127.0.0.1:9311\"\n\
            [barbican.keystone]\nurl = \"http://127.0.0.1:5000/v3\"\nuser = \"kcm\"\n\
            password_env = \"KCM_KEYSTONE_PASSWORD\"\nproject = \"service\"\n\
            [barbican.domains.Default]\ntenant = \"default\"\n";
        std::fs::write(&path, table).unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        s.validate().unwrap();
        let b = s.barbican.unwrap();
        assert_eq!(b.domains["Default"].tenant, "default");
        assert_eq!(b.keystone.unwrap().user_domain, "Default");

        let invalid = |text: &str| refusal(&path, text);
        assert!(invalid("[barbican]\nlisten = \"127.0.0.1:8990\"\n[barbican.no_auth]\ntenant = \"t\"\nproject_id = \"p\"\nuser_id = \"u\"\n")
            .contains("must differ from listen"));
        assert!(invalid("[barbican]\nlisten = \"0.0.0.0:9311\"\n[barbican.no_auth]\ntenant = \"t\"\nproject_id = \"p\"\nuser_id = \"u\"\n")
            .contains("not a loopback address"));
        assert!(invalid("[barbican]\nlissten = \"x\"\n").contains("lissten"));
    }

    #[test]
    fn xks_keystore_tables_parse_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcm.toml");
        let table = "[keystores.xks]\nkind = \"xks\"\nendpoint = \"https://xks.example.com\"\naccess_key_id = \"AKIDAKIDAKIDAKIDAKID\"\n";
        std::fs::write(&path, format!("{table}secret_env = \"XKS_SECRET\"\n")).unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        s.validate().unwrap();
        let KeystoreConfig::Xks(x) = &s.keystores["xks"] else {
            panic!("not an xks table: {:?}", s.keystores["xks"]);
        };
        assert_eq!(
            (x.uri_path.as_str(), x.region.as_str(), x.timeout_ms),
            ("/kms/xks/v1", "us-east-1", 2000)
        );

        let invalid = |text: String| refusal(&path, &text);
        assert!(invalid(table.to_string()).contains("exactly one of secret_file and secret_env"));
        assert!(
            invalid(format!("{table}secret_env = \"S\"\ntimeout_ms = 5\n")).contains("timeout_ms")
        );
        assert!(invalid(format!("{table}secret_env = \"S\"\nsecret = \"x\"\n")).contains("secret"));
        assert!(invalid(format!(
            "{table}secret_env = \"S\"\nclient_cert_file = \"/c.pem\"\n"
        ))
        .contains("go together"));
    }
}
