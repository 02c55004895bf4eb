//! Settings the core needs (the binary fills them from TOML and `KCM_*`).

use std::time::Duration;

/// Service-level settings.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Region shown in ARNs and required in SigV4 scopes.
    pub region: String,
    /// Upper bound for how long unwrapped material and credentials are trusted from
    /// the cache before the chain's states are read again (DESIGN.md §2).
    pub revocation_bound: Duration,
    /// How often material below a root key held only in the customer's keystore
    /// (HYOK) is unwrapped afresh, so that the holder revoking the key is noticed
    /// within this time even if it is shorter than `revocation_bound`.
    pub external_check_interval: Duration,
    /// Length of one "day" for deletion waiting periods and rotation periods.
    /// Always 24 h in production; tests shorten it through configuration so that the
    /// public API's rules (7–30 day windows, 90+ day periods) stay unchanged.
    pub day: Duration,
    /// How long BYOK import parameters (their token) stay usable. 24 h, as in AWS
    /// KMS; tests shorten it through configuration to see an expired token refused.
    pub import_token_lifetime: Duration,
    /// Name of the keystore new root keys are created in.
    pub default_keystore: String,
    /// Whether requests are recorded in the audit log. Only for measuring its cost:
    /// a KMS without an audit log cannot prove who did what.
    pub audit: bool,
    /// How often a signed checkpoint is written for each audit chain that grew.
    pub audit_checkpoint_interval: Duration,
    /// Request-rate quotas per access key and per tenant (none by default).
    pub rate_limits: crate::rate_limit::RateLimits,
    /// Where this node keeps audit records, durably, while the store cannot take
    /// them (forwarded once it can). `None`: a request whose record the store
    /// cannot take is refused.
    pub audit_spool: Option<std::path::PathBuf>,
    /// Where this node saves the newest record it appended and checkpoint it signed
    /// to each audit chain, so that after a restart it still holds the store to
    /// them. `None`: kept in memory only.
    pub audit_heads_file: Option<std::path::PathBuf>,
    /// The XKS proxy API's secondary authorisation over AWS KMS's request metadata
    /// (no rules: none).
    pub xks_policy: crate::xks_policy::XksPolicy,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            revocation_bound: Duration::from_secs(1),
            external_check_interval: Duration::from_secs(5),
            day: Duration::from_secs(86_400),
            import_token_lifetime: crate::service::IMPORT_TOKEN_LIFETIME,
            default_keystore: "software".into(),
            audit: true,
            audit_checkpoint_interval: Duration::from_secs(60),
            rate_limits: crate::rate_limit::RateLimits::default(),
            audit_spool: None,
            audit_heads_file: None,
            xks_policy: Default::default(),
        }
    }
}

impl ServiceConfig {
    /// Milliseconds in `days` configured days.
    pub fn days_ms(&self, days: u32) -> i64 {
        (self.day.as_secs_f64() * 1000.0 * f64::from(days)).round() as i64
    }
}
