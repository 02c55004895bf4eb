//! Request and response bodies of the `/v1` API.
//!
//! Field names are snake_case; times are RFC 3339 strings in UTC. Every type is
//! `Serialize + Deserialize` so that clients (the `kcm` CLI) can reuse them, and
//! `ToSchema` so that the OpenAPI document describes exactly what is sent.

use std::collections::BTreeMap;

use kcm_core::model::{Role, TenantRecord, UnixMillis};
use kcm_core::service::{
    AccessKeyInfo, ImportParameters, KeychainRoot, KeychainServiceKey, KeychainSystem,
    KeychainView, NewAccessKey, NewTenant, RootKeyImpact, RootKeyInfo, SystemInfo,
    SystemKeyRotation,
};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use zeroize::Zeroize;

/// Formats milliseconds since the Unix epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(ms: UnixMillis) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or_else(
        |_| {
            tracing::warn!(ms, "timestamp out of range; shown as the epoch");
            OffsetDateTime::UNIX_EPOCH
        },
    );
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// A role name, as accepted and returned by the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RoleName {
    /// Everything in the tenant.
    TenantAdmin,
    /// Manage keys; no data-plane use.
    KeyAdmin,
    /// Cryptographic operations (and reading key metadata).
    KeyUser,
    /// Read metadata and audit only.
    Auditor,
    /// The operator: manages tenants; cannot use tenant keys.
    SystemAdmin,
}

// ---------------------------------------------------------------- tenants

/// Body of `POST /v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "acme"}))]
pub struct CreateTenantRequest {
    /// Unique tenant name: 1–64 letters, digits, `-`, `_` or `.`.
    pub name: String,
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    /// Tenant id (UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The 12-digit account id used in key ARNs.
    pub account_id: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<&TenantRecord> for Tenant {
    fn from(t: &TenantRecord) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            account_id: t.account_id.clone(),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// Response of `POST /v1/tenants`: the tenant and its first tenant-admin access key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateTenantResponse {
    /// The new tenant.
    pub tenant: Tenant,
    /// Its first tenant-admin access key; the secret is shown only here.
    pub access_key: CreatedAccessKey,
}

impl From<NewTenant> for CreateTenantResponse {
    fn from(new: NewTenant) -> Self {
        Self {
            tenant: Tenant::from(&new.tenant),
            access_key: CreatedAccessKey::from(new.access_key),
        }
    }
}

/// Response of `GET /v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    /// Every tenant.
    pub tenants: Vec<Tenant>,
}

// ---------------------------------------------------------------- access keys

/// Body of `POST /v1/access-keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "key-user", "system": "payments", "description": "payments service"}))]
pub struct CreateAccessKeyRequest {
    /// Role of the new key.
    #[schema(value_type = RoleName)]
    pub role: String,
    /// Name or id of the system the key is scoped to; unscoped when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The only operations the key may call (names as in the API: `Encrypt`,
    /// `Decrypt`, `DescribeKey`, …); unlimited (within its role) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
}

/// An access key, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessKey {
    /// The public access key id.
    pub access_key_id: String,
    /// Role.
    #[schema(value_type = RoleName)]
    pub role: String,
    /// Owning tenant id; `null` for the operator's system-admin keys.
    pub tenant_id: Option<String>,
    /// Name of the system the key is scoped to; `null` when unscoped.
    pub system: Option<String>,
    /// Free text.
    pub description: String,
    /// Whether the key may be used.
    pub enabled: bool,
    /// The only operations the key may call; `null` when unlimited.
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<&AccessKeyInfo> for AccessKey {
    fn from(k: &AccessKeyInfo) -> Self {
        Self {
            access_key_id: k.id.clone(),
            role: role_name(k.role),
            tenant_id: k.tenant_id.map(|t| t.to_string()),
            system: k.system.clone(),
            description: k.description.clone(),
            enabled: k.enabled,
            operations: k.operations.clone(),
            created_at: rfc3339(k.created_at),
        }
    }
}

fn role_name(role: Role) -> String {
    role.as_str().to_string()
}

/// A newly created access key with its secret: the only response that carries one.
// The secret is wiped from memory when this value is dropped; `Debug` redacts it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreatedAccessKey {
    /// The key's public details.
    #[serde(flatten)]
    pub access_key: AccessKey,
    /// The secret access key. Shown once: store it now, it cannot be read again.
    pub secret_access_key: String,
}

impl std::fmt::Debug for CreatedAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedAccessKey")
            .field("access_key", &self.access_key)
            .field("secret_access_key", &"[REDACTED]")
            .finish()
    }
}

impl Drop for CreatedAccessKey {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
    }
}

impl From<NewAccessKey> for CreatedAccessKey {
    fn from(new: NewAccessKey) -> Self {
        Self {
            access_key: AccessKey::from(&new.info),
            secret_access_key: new.secret.expose_secret().to_string(),
        }
    }
}

/// Response of `GET /v1/access-keys` (never with secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessKeyList {
    /// The caller's tenant's access keys (for the operator: the operator's keys).
    pub access_keys: Vec<AccessKey>,
}

// ---------------------------------------------------------------- systems

/// The kind given to a system when the request names none.
pub const DEFAULT_SYSTEM_KIND: &str = "application";

/// Body of `POST /v1/systems`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "payments", "kind": "kubernetes", "description": "payments cluster"}))]
pub struct CreateSystemRequest {
    /// Name, unique in the tenant: 1–64 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// What kind of environment it is (free text, at most 64 characters); default `application`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = "application")]
    pub kind: Option<String>,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where it runs (free form: `eu-west-1`, `dc2`, …), at most 64 letters,
    /// digits, `-`, `_` or `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Labels (at most 32; names 1–63 of letters, digits, `-`, `_`, `.`, `/`;
    /// values at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Link it to a root key now (default `true`); `false` registers it unlinked,
    /// to be linked later with `…/link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(default = true)]
    pub link: Option<bool>,
    /// Id of the tenant's root key to link it to; default the tenant's default root key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key_id: Option<String>,
}

/// Body of `POST /v1/systems/{id_or_name}/link`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSystemRequest {
    /// Id of the tenant's root key to link it to; default the tenant's default root key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key_id: Option<String>,
}

/// Body of `POST /v1/systems/{id_or_name}/switch-root-key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRootKeyRequest {
    /// Id of the tenant's root key the system is to hang below.
    pub root_key_id: String,
}

/// Response of the system key rotation routes: where the rotation stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SystemKeyRotationBody {
    /// The system, with its active system key version.
    pub system: System,
    /// Key versions re-wrapped by this call.
    pub rewrapped: usize,
    /// Key versions still wrapped by an older system key version; 0: done (the older
    /// versions are erased).
    pub remaining: usize,
}

impl From<&SystemKeyRotation> for SystemKeyRotationBody {
    fn from(r: &SystemKeyRotation) -> Self {
        Self {
            system: System::from(&r.system),
            rewrapped: r.rewrapped,
            remaining: r.remaining,
        }
    }
}

/// A system: a consumer environment linked to one root key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct System {
    /// System id (UUID).
    pub id: String,
    /// Name, unique in the tenant.
    pub name: String,
    /// Kind of environment.
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Where it runs (may be empty).
    pub region: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The root key its system key is wrapped by; `null` when unlinked.
    pub root_key_id: Option<String>,
    /// Lifecycle state of its active system key (`active`, `disabled`, …); `null`
    /// when unlinked.
    #[schema(example = "active")]
    pub system_key_state: Option<String>,
    /// Version of its latest system key (0: never linked).
    pub system_key_version: u32,
    /// `connected`; `locked: <reason>` when a key above it is not usable;
    /// `unlinked` when it has no root key.
    #[schema(example = "connected")]
    pub status: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<&SystemInfo> for System {
    fn from(s: &SystemInfo) -> Self {
        Self {
            id: s.record.id.to_string(),
            name: s.record.name.clone(),
            kind: s.record.kind.clone(),
            description: s.record.description.clone(),
            region: s.record.region.clone(),
            labels: s.record.labels.clone(),
            root_key_id: s.root_key_id.map(|id| id.to_string()),
            system_key_state: s.system_key_state.map(|state| state.to_string()),
            system_key_version: s.record.active_key_version,
            status: s.status.describe(),
            created_at: rfc3339(s.record.created_at),
        }
    }
}

/// Response of `GET /v1/systems`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SystemList {
    /// The systems the caller can see.
    pub systems: Vec<System>,
}

// ---------------------------------------------------------------- keychain

/// Response of `GET /v1/keychain`: the caller's tenant as a tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Keychain {
    /// The tenant.
    pub tenant: Tenant,
    /// Its root keys, with the systems and service keys below them.
    pub root_keys: Vec<KeychainRootKey>,
    /// Systems linked to no root key.
    pub unlinked_systems: Vec<KeychainSystemNode>,
}

/// A root key (L1) in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeychainRootKey {
    /// Root key id.
    pub id: String,
    /// Keystore instance holding it.
    pub keystore: String,
    /// `generated`, `imported` or `external`.
    #[schema(example = "generated")]
    pub origin: String,
    /// Lifecycle state.
    #[schema(example = "active")]
    pub state: String,
    /// Systems linked to it.
    pub systems: Vec<KeychainSystemNode>,
}

/// A system (with its system key, L2) in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeychainSystemNode {
    /// System id.
    pub id: String,
    /// Name.
    pub name: String,
    /// State of its active system key; `null` when unlinked.
    #[schema(example = "active")]
    pub state: Option<String>,
    /// Active system key version.
    pub system_key_version: u32,
    /// `connected`, `locked: <reason>` or `unlinked`.
    #[schema(example = "connected")]
    pub status: String,
    /// Its service keys (L3), destroyed ones excluded.
    pub service_keys: Vec<KeychainServiceKeyNode>,
}

/// A service key (L3) in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeychainServiceKeyNode {
    /// Key id.
    pub id: String,
    /// Description.
    pub description: String,
    /// Lifecycle state.
    #[schema(example = "active")]
    pub state: String,
    /// Primary (encrypting) version.
    pub primary_version: u32,
    /// Aliases naming it (`alias/…`).
    pub aliases: Vec<String>,
}

impl From<&KeychainServiceKey> for KeychainServiceKeyNode {
    fn from(k: &KeychainServiceKey) -> Self {
        Self {
            id: k.id.to_string(),
            description: k.description.clone(),
            state: k.state.to_string(),
            primary_version: k.primary_version,
            aliases: k.aliases.clone(),
        }
    }
}

impl From<&KeychainSystem> for KeychainSystemNode {
    fn from(s: &KeychainSystem) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
            state: s.state.map(|state| state.to_string()),
            system_key_version: s.system_key_version,
            status: s.status.clone(),
            service_keys: s.service_keys.iter().map(Into::into).collect(),
        }
    }
}

impl From<&KeychainRoot> for KeychainRootKey {
    fn from(r: &KeychainRoot) -> Self {
        Self {
            id: r.id.to_string(),
            keystore: r.keystore.clone(),
            origin: r.origin.as_str().to_string(),
            state: r.state.to_string(),
            systems: r.systems.iter().map(Into::into).collect(),
        }
    }
}

impl From<&KeychainView> for Keychain {
    fn from(v: &KeychainView) -> Self {
        Self {
            tenant: Tenant::from(&v.tenant),
            root_keys: v.roots.iter().map(Into::into).collect(),
            unlinked_systems: v.unlinked.iter().map(Into::into).collect(),
        }
    }
}

// ---------------------------------------------------------------- root keys

/// Body of `POST /v1/root-keys`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRootKeyRequest {
    /// Name of the keystore to generate it in (`software`, or a configured
    /// `[keystores.<name>]`); default the server's `default_keystore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<String>,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A root key (L1): its material never leaves its keystore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RootKey {
    /// Root key id (UUID).
    pub id: String,
    /// Name of the keystore holding it.
    pub keystore: String,
    /// Kind of that keystore (`software`, `pkcs11`, …).
    #[schema(example = "pkcs11")]
    pub keystore_kind: String,
    /// `generated`, `imported` or `external`.
    #[schema(example = "generated")]
    pub origin: String,
    /// Lifecycle state (`active`, `suspended`, `disabled`, …).
    #[schema(example = "active")]
    pub state: String,
    /// Free text.
    pub description: String,
    /// Whether new systems are linked to it unless told otherwise.
    pub default: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<&RootKeyInfo> for RootKey {
    fn from(r: &RootKeyInfo) -> Self {
        Self {
            id: r.id.to_string(),
            keystore: r.keystore.clone(),
            keystore_kind: r.keystore_kind.to_string(),
            origin: r.origin.as_str().to_string(),
            state: r.state.to_string(),
            description: r.description.clone(),
            default: r.is_default,
            created_at: rfc3339(r.created_at),
        }
    }
}

/// Body of `POST /v1/root-keys/reference`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRootKeyRequest {
    /// Keystore holding the key; default the server's `default_keystore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<String>,
    /// The key in the keystore's terms: PKCS#11 `label:<CKA_LABEL>` or `id:<CKA_ID hex>`.
    #[schema(example = "label:customer-root")]
    pub reference: String,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `POST /v1/root-keys/import-parameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RootKeyImportParametersRequest {
    /// Keystore to import into; default the server's `default_keystore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<String>,
    /// `RSAES_OAEP_SHA_256` (default) or `RSA_AES_KEY_WRAP_SHA_256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "RSAES_OAEP_SHA_256")]
    pub wrapping_algorithm: Option<String>,
    /// `RSA_3072` (default) or `RSA_4096`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "RSA_3072")]
    pub wrapping_key_spec: Option<String>,
}

/// Response of `POST /v1/root-keys/import-parameters`: wrap 32 bytes of AES-256 key
/// material to `public_key` with `wrapping_algorithm`, then call
/// `POST /v1/root-keys/import` with the token before `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RootKeyImportParameters {
    /// Single-use token naming this import.
    pub import_token: String,
    /// The RSA wrapping public key, DER (SubjectPublicKeyInfo), base64.
    pub public_key: String,
    /// The same key as PEM, for `openssl pkeyutl -pubin -inkey`.
    pub public_key_pem: String,
    /// The wrapping the material must have.
    pub wrapping_algorithm: String,
    /// Size of the RSA key.
    pub wrapping_key_spec: String,
    /// When the token stops working (RFC 3339); it also ends with a server restart.
    pub expires_at: String,
}

impl From<&ImportParameters> for RootKeyImportParameters {
    fn from(p: &ImportParameters) -> Self {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&p.public_key_der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Self {
            import_token: p.import_token.clone(),
            public_key: b64,
            public_key_pem: pem,
            wrapping_algorithm: p.algorithm.as_str().to_string(),
            wrapping_key_spec: p.key_spec.as_str().to_string(),
            expires_at: rfc3339(p.expires_at),
        }
    }
}

/// Body of `POST /v1/root-keys/import`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRootKeyRequest {
    /// The token from the import parameters (single-use).
    pub import_token: String,
    /// The wrapped key material, base64.
    pub wrapped_key_material: String,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl std::fmt::Debug for ImportRootKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRootKeyRequest")
            .field("import_token", &"[REDACTED]")
            .field("wrapped_key_material", &"[REDACTED]")
            .field("description", &self.description)
            .finish()
    }
}

/// Response of `GET /v1/root-keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RootKeyList {
    /// The tenant's root keys.
    pub root_keys: Vec<RootKey>,
}

/// Response of `POST /v1/root-keys/{id}/enable|disable|suspend`: what the change
/// did (or, for a dry run, would do) to the keychain below the root key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RootKeyImpactBody {
    /// The root key, after the change (as it is, for a dry run).
    pub root_key: RootKey,
    /// Its state before.
    #[schema(example = "active")]
    pub previous_state: String,
    /// The state the change leads (or would lead) to.
    #[schema(example = "disabled")]
    pub new_state: String,
    /// `false` for a dry run (and when the root key was already in that state).
    pub applied: bool,
    /// Every system linked to the root key, with its service keys: what is cut off
    /// (disable), made decrypt-only (suspend) or restored (enable).
    pub systems: Vec<KeychainSystemNode>,
}

impl From<&RootKeyImpact> for RootKeyImpactBody {
    fn from(i: &RootKeyImpact) -> Self {
        Self {
            root_key: RootKey::from(&i.root),
            previous_state: i.previous_state.to_string(),
            new_state: i.new_state.to_string(),
            applied: i.applied,
            systems: i.systems.iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        // Out of range: never panics.
        assert_eq!(rfc3339(i64::MAX), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn role_names_match_the_core() {
        for role in kcm_core::model::ALL_ROLES {
            let doc: RoleName = serde_json::from_value(serde_json::json!(role.as_str())).unwrap();
            assert_eq!(serde_json::to_value(doc).unwrap(), role.as_str());
        }
    }

    #[test]
    fn created_access_key_is_flat_and_redacted_in_debug() {
        let key = CreatedAccessKey {
            access_key: AccessKey {
                access_key_id: "KCMAAAA".into(),
                role: "key-user".into(),
                tenant_id: None,
                system: None,
                description: String::new(),
                enabled: true,
                operations: None,
                created_at: rfc3339(0),
            },
            secret_access_key: "s3cr3t".into(),
        };
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json["access_key_id"], "KCMAAAA");
        assert_eq!(json["secret_access_key"], "s3cr3t");
        assert!(!format!("{key:?}").contains("s3cr3t"));
    }
}

// ---------------------------------------------------------------- backup

/// Body of `GET /v1/backup`: a kcm backup archive (`KCMBAK1`), binary.
///
/// Only for the OpenAPI document; the handler sends the archive bytes as they are.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BackupArchiveBody(pub Vec<u8>);
