//! The service: every operation of every front door is a method here.
//!
//! Each public method authenticates nothing (front doors prove who signed) but
//! authorises everything: it resolves what it touches, calls
//! [`crate::authz::authorize`], checks the lifecycle through
//! [`crate::lifecycle::chain_allows`], and only then reads material or writes.
//!
//! Management changes are serialised by `Service::lock_changes` (this node's
//! mutex, plus the store's cluster-wide lock when nodes share the store), so a
//! read-modify-write of a record cannot lose a concurrent update on any node.

mod access_keys;
mod aliases;
mod asymmetric;
mod audit;
mod backup;
mod bootstrap;
mod byok;
mod chain;
mod change_lock;
mod crypto_ops;
mod federated;
mod keychain;
mod keys;
mod kv;
mod lease;
mod objects;
mod policies;
mod resolve;
mod root_keys;
mod rotation;
mod scheduler;
mod system_rotation;
mod systems;
mod tenants;
mod vault_sessions;
mod xks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use access_keys::{AccessKeyInfo, Credential, NewAccessKey, XKS_OPERATIONS};
pub use aliases::{is_reserved_alias, RESERVED_ALIAS_PREFIX};
pub use asymmetric::{DataKeyPair, PublicKeyInfo, Signed, MAX_MESSAGE, MAX_SIGNATURE};
pub use audit::MAX_AUDIT_PAGE;
pub use backup::BackupArchive;
pub use bootstrap::BootstrapCredentials;
pub use byok::{ImportParameters, MaterialImport, IMPORT_TOKEN_LIFETIME};
pub use chain::LoadedKey;
pub use crypto_ops::{DataKey, Decrypted, ReEncryptRequest, ReEncrypted};
pub use federated::{FederatedLogin, PROJECT_SYSTEM_KIND};
pub use keychain::{KeychainRoot, KeychainServiceKey, KeychainSystem, KeychainView};
pub use keys::{CreateKeyRequest, KeyInfo, KeyPage};
pub use kv::KvPath;
pub use objects::{
    GenerateObject, NewObject, ObjectChange, ObjectFilter, ObjectInfo, ObjectPage,
    MAX_OBJECTS_PER_SYSTEM, MAX_OBJECT_PAGE, MAX_OBJECT_PAYLOAD,
};
pub use policies::{grant_token, CreateGrantRequest, GrantPage, GrantRef, NewGrant};
pub use root_keys::{RootKeyChange, RootKeyImpact, RootKeyInfo};
pub use rotation::{RotationInfo, RotationStatus};
pub use system_rotation::{SystemKeyRotation, MAX_REWRAP_BATCH};
pub use systems::{NewSystem, SystemInfo, SystemStatus};
pub use tenants::NewTenant;
pub use vault_sessions::{session_expiry, VaultSession, MAX_SESSION, SESSION_PREFIX};
pub use xks::{xks_key_ref, XksEncrypted, XksHealth, XksKeyMetadata};

use crate::authz::{Caller, Principal};
use crate::cache::TtlMap;
use crate::config::ServiceConfig;
use crate::error::{Error, Result};
use crate::keystore::KeystoreProvider;
use crate::model::*;
use crate::store::Store;

/// How a request names a service key, after the front door has decoded its syntax.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// By key id.
    Id(KeyId),
    /// By full alias name (`alias/…`).
    Alias(String),
    /// By a name qualified with an account (an AWS key or alias ARN names the
    /// account that owns the key). In any account but the caller's tenant's it names
    /// no key the caller can see: the core answers it as a missing key, as AWS
    /// answers another account's ARN, without looking it up.
    InAccount {
        /// The 12-digit account id the name was qualified with.
        account: String,
        /// The key id or alias within that account.
        key: Box<KeyRef>,
    },
}

impl KeyRef {
    /// The key id or alias this names, whatever account qualifies it.
    pub fn unqualified(&self) -> &KeyRef {
        match self {
            KeyRef::InAccount { key, .. } => key.unqualified(),
            plain => plain,
        }
    }

    /// The account an ARN named the key or alias in, if it was named by one.
    pub fn account(&self) -> Option<&str> {
        match self {
            KeyRef::InAccount { account, .. } => Some(account),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Id(id) => id.fmt(f),
            KeyRef::Alias(name) => f.write_str(name),
            KeyRef::InAccount { key, .. } => key.fmt(f),
        }
    }
}

/// The kcm service core.
pub struct Service {
    store: Arc<dyn Store>,
    keystores: HashMap<String, Arc<dyn KeystoreProvider>>,
    config: ServiceConfig,
    keys: TtlMap<KeyId, LoadedKey>,
    system_keys: TtlMap<(SystemId, u32), chain::LoadedSystemKey>,
    aliases: TtlMap<(TenantId, String), KeyId>,
    credentials: TtlMap<String, Credential>,
    credential_key: tokio::sync::OnceCell<crate::secret::SecretBytes>,
    /// The key that signs Vault sessions, derived from the credential key once.
    vault_session_key: tokio::sync::OnceCell<aws_lc_rs::hmac::Key>,
    audit_writer: std::sync::OnceLock<crate::audit::writer::AuditWriter>,
    audit_spool: Option<Arc<crate::audit::spool::Spool>>,
    audit_health: Arc<crate::audit::writer::WriterHealth>,
    /// What this node appended and signed, to hold the store's audit chains to.
    audit_heads: Arc<crate::audit::heads::Heads>,
    audit_signer: tokio::sync::OnceCell<audit::AuditSigner>,
    writes: tokio::sync::Mutex<()>,
    rate_limiter: crate::rate_limit::RateLimiter,
    /// This node's id in a cluster (random per start), for the scheduler lease.
    node_id: String,
    /// The KMIP clients this node's configuration maps to access keys: (access
    /// key id, client name), for the kill-switch preview.
    kmip_clients: std::sync::RwLock<Vec<(String, String)>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.config)
            .field("keystores", &self.keystores.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service over `store`, with the named keystores. `config.default_keystore`
    /// must be one of them.
    pub fn new(
        store: Arc<dyn Store>,
        keystores: HashMap<String, Arc<dyn KeystoreProvider>>,
        config: ServiceConfig,
    ) -> Result<Self> {
        if !keystores.contains_key(&config.default_keystore) {
            return Err(Error::invalid(format!(
                "the default keystore {:?} is not configured",
                config.default_keystore
            )));
        }
        let bound = config.revocation_bound;
        let audit_spool = match &config.audit_spool {
            Some(dir) => Some(Arc::new(crate::audit::spool::Spool::open(dir).map_err(
                |e| {
                    Error::new(
                        crate::error::ErrorKind::StoreUnavailable,
                        format!("cannot open the audit spool {}: {e}", dir.display()),
                    )
                },
            )?)),
            None => None,
        };
        if let Some(spool) = audit_spool.as_ref().filter(|s| !s.is_empty()) {
            tracing::warn!(
                segments = spool.segments(),
                "the audit spool holds records of an earlier run: forwarding them to the store"
            );
        }
        let audit_heads = match &config.audit_heads_file {
            Some(path) => crate::audit::heads::Heads::load(path).map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::StoreUnavailable,
                    format!(
                        "cannot read {}: {e}. It holds what this node appended to the audit \
                         log, to hold the store to; if it is damaged, remove it (the node then \
                         holds the store only to what it appends from now on)",
                        path.display()
                    ),
                )
            })?,
            None => crate::audit::heads::Heads::default(),
        };
        Ok(Self {
            store,
            keystores,
            keys: TtlMap::new(bound),
            system_keys: TtlMap::new(bound),
            aliases: TtlMap::new(bound),
            credentials: TtlMap::new(bound),
            credential_key: tokio::sync::OnceCell::new(),
            vault_session_key: tokio::sync::OnceCell::new(),
            audit_writer: std::sync::OnceLock::new(),
            audit_spool,
            audit_health: Arc::default(),
            audit_heads: Arc::new(audit_heads),
            audit_signer: tokio::sync::OnceCell::new(),
            rate_limiter: crate::rate_limit::RateLimiter::new(config.rate_limits),
            config,
            writes: tokio::sync::Mutex::new(()),
            node_id: uuid::Uuid::new_v4().simple().to_string(),
            kmip_clients: std::sync::RwLock::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The region used in ARNs and SigV4 scopes.
    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// Admits one request of an authenticated `principal`: the caller of the
    /// request's core call, or [`ErrorKind::Throttled`](crate::error::ErrorKind::Throttled)
    /// when its access key or tenant exceeded its request-rate quota. Every front door
    /// calls this once per request (through its shared front-door path), after
    /// authentication and before anything else is done.
    pub fn admit_caller(&self, principal: Principal) -> Result<Caller> {
        self.rate_limiter.admit(&principal)?;
        Ok(Caller::new(principal))
    }

    /// Readiness: the store and the default keystore answer (each within
    /// [`READY_DEADLINE`]), and audit records can be written somewhere.
    pub async fn ready(&self) -> Result<()> {
        let late = |what: &str| {
            Error::new(
                crate::error::ErrorKind::StoreUnavailable,
                format!("the {what} did not answer within {READY_DEADLINE:?}"),
            )
        };
        tokio::time::timeout(READY_DEADLINE, self.store.ping())
            .await
            .map_err(|_| late("store"))??;
        if let Some(reason) = self.audit_health.unwritable() {
            // Requests are what would find out that records can be written again;
            // while the node is not ready it gets none, so readiness tries itself.
            let probe = self.store.commit(vec![crate::store::Write::PutMeta {
                key: READY_PROBE_META.into(),
                value: now_ms().to_string(),
            }]);
            match tokio::time::timeout(READY_DEADLINE, probe).await {
                Ok(Ok(())) => self.audit_health.set(None),
                _ => {
                    return Err(Error::new(
                        crate::error::ErrorKind::StoreUnavailable,
                        reason,
                    ))
                }
            }
        }
        // Only the default keystore (which holds the service's own credential root)
        // decides readiness: a customer's HSM or XKS proxy that is down locks the
        // systems below its keys, and must not take the node away from every other
        // tenant. Their state shows in each system's status.
        tokio::time::timeout(READY_DEADLINE, self.default_keystore().health())
            .await
            .map_err(|_| late("default keystore"))??;
        Ok(())
    }

    fn keystore(&self, name: &str) -> Result<&Arc<dyn KeystoreProvider>> {
        self.keystores.get(name).ok_or_else(|| {
            Error::internal(format!("root key refers to unconfigured keystore {name:?}"))
        })
    }

    fn default_keystore(&self) -> &Arc<dyn KeystoreProvider> {
        &self.keystores[&self.config.default_keystore]
    }
}

/// The longest readiness waits for the store or the default keystore: a load
/// balancer's health check gives up after a second or two, and a hung dependency
/// must make the node "not ready", not make the check time out.
pub const READY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// The setting readiness writes to learn whether the store takes writes again,
/// after audit records could be written nowhere.
const READY_PROBE_META: &str = "ready_probe";

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `len` random characters from an alphabet without look-alikes, for ids and secrets.
fn random_token(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0u8; len];
    crate::crypto::fill_random(&mut bytes);
    // Rejection sampling would be exact; 256 % 32 == 0 and 256 % 64 == 0 keep it
    // unbiased for the alphabets used here.
    debug_assert!(256 % alphabet.len() == 0);
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}
