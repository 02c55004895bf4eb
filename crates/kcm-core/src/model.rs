//! Identifiers and the records the core keeps in its store.
//!
//! Records hold only wrapped key material (`wrapped` fields): a dump of the store
//! never contains plaintext keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keyspec::{KeyOrigin, KeySpec, KeyUsage};
use crate::lifecycle::Lifecycle;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parses the canonical form, the one `Display` writes and stores keep:
            /// lower-case, hyphenated (`8-4-4-4-12` hex digits). Any other spelling
            /// of the same UUID (upper case, braces, no hyphens, `urn:uuid:`) is not
            /// an id, so one id has one text — in requests, in paths, in the store.
            pub fn parse(s: &str) -> Option<Self> {
                if !is_canonical_uuid(s) {
                    return None;
                }
                Uuid::try_parse(s).ok().map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

/// Whether `s` is a UUID as `Uuid::hyphenated` writes it: 36 characters, hyphens at
/// 8, 13, 18 and 23, lower-case hex digits everywhere else.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

uuid_id!(
    /// A tenant (customer); the isolation boundary.
    TenantId
);
uuid_id!(
    /// A root key (L1).
    RootKeyId
);
uuid_id!(
    /// A system (consumer environment) and, with a version, its system key (L2).
    SystemId
);
uuid_id!(
    /// A service key (L3), the "KMS key" of the AWS API.
    KeyId
);

impl KeyId {
    /// The id of the material of this key's `version` (AWS's `KeyMaterialId`: 64
    /// hex digits): a digest of the key id and the version, so it names the
    /// material without revealing anything of it, and every node computes the same.
    pub fn material_id(self, version: u32) -> String {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"kcm key material id v1\0");
        ctx.update(self.0.as_bytes());
        ctx.update(&version.to_be_bytes());
        hex::encode(ctx.finish())
    }
}

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// A role, as in DESIGN.md §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything in the tenant.
    TenantAdmin,
    /// Manage keys; no data-plane use.
    KeyAdmin,
    /// Cryptographic operations (and reading key metadata).
    KeyUser,
    /// Read metadata and audit only.
    Auditor,
    /// The operator: manages tenants and keystores; cannot use tenant keys.
    SystemAdmin,
}

/// Every role (for exhaustive tests and `--help`).
pub const ALL_ROLES: [Role; 5] = [
    Role::TenantAdmin,
    Role::KeyAdmin,
    Role::KeyUser,
    Role::Auditor,
    Role::SystemAdmin,
];

impl Role {
    /// Stable name (`tenant-admin`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::TenantAdmin => "tenant-admin",
            Role::KeyAdmin => "key-admin",
            Role::KeyUser => "key-user",
            Role::Auditor => "auditor",
            Role::SystemAdmin => "system-admin",
        }
    }

    /// Parses [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        ALL_ROLES.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRecord {
    /// Identifier.
    pub id: TenantId,
    /// Unique, human-chosen name.
    pub name: String,
    /// The 12-digit account id used in ARNs.
    pub account_id: String,
    /// The root key new systems of this tenant are linked to.
    pub default_root_key_id: RootKeyId,
    /// The tenant's `default` system.
    pub default_system_id: SystemId,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// What the store keeps of an access key's secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredSecret {
    /// The secret is derived when needed from the service's credential key (which
    /// exists only wrapped by a keystore root key) and this salt; the store keeps the
    /// salt and a one-way verifier (SHA-256) of the secret, neither of which can sign.
    Derived {
        /// What the secret is for, which fixes its form.
        kind: CredentialKind,
        /// Random per-key salt (not secret).
        salt: Vec<u8>,
        /// SHA-256 over a label, the key id and the secret.
        verifier: Vec<u8>,
    },
    /// Keys made by kcm before derived secrets: the secret sealed by the credential
    /// root key. Still accepted; new keys are never stored this way.
    Sealed(Vec<u8>),
}

/// What an access key's secret signs, which fixes its form and the doors that take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// kcm's own: SigV4 on the AWS API and `/v1`, bearer tokens on `/v1`; a secret
    /// of 40 characters.
    SigV4,
    /// AWS KMS's, for the XKS proxy API only: the specification wants 43 to 64
    /// characters of secret (kcm's are 44, Base64 of 32 bytes), and such a key signs
    /// nothing on kcm's other doors.
    Xks,
    /// A Vault token, for the Vault-compatible API only: sent whole in
    /// `X-Vault-Token` (`kcm.<id>.<secret>`), taken by no other door.
    Vault,
}

impl CredentialKind {
    /// Stable name (`sigv4`, `xks`, `vault`).
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::SigV4 => "sigv4",
            CredentialKind::Xks => "xks",
            CredentialKind::Vault => "vault",
        }
    }

    /// Parses [`CredentialKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sigv4" => Some(CredentialKind::SigV4),
            "xks" => Some(CredentialKind::Xks),
            "vault" => Some(CredentialKind::Vault),
            _ => None,
        }
    }
}

/// The prefix of a Vault token: `kcm.<access key id>.<secret>`.
pub const VAULT_TOKEN_PREFIX: &str = "kcm.";

/// The Vault token of access key `id` with `secret` (a [`CredentialKind::Vault`] key).
pub fn vault_token(id: &str, secret: &str) -> String {
    format!("{VAULT_TOKEN_PREFIX}{id}.{secret}")
}

/// The access key id and secret of a Vault token; `None` if it is not one.
pub fn parse_vault_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(VAULT_TOKEN_PREFIX)?;
    rest.split_once('.')
        .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
}

/// An access key: who calls. The store never holds its secret in a usable form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyRecord {
    /// The public access key id (20 characters, `KCM…`).
    pub id: String,
    /// Owning tenant; `None` for the operator's system-admin keys.
    pub tenant_id: Option<TenantId>,
    /// Role.
    pub role: Role,
    /// When set, the key may only touch this system.
    pub system_id: Option<SystemId>,
    /// How the request signatures of this key are checked; never the secret itself.
    pub secret: StoredSecret,
    /// When set, the only operations this key may call (stable operation names).
    pub operations: Option<Vec<String>>,
    /// Free text.
    pub description: String,
    /// Disabled keys are refused.
    pub enabled: bool,
    /// Creation time.
    pub created_at: UnixMillis,
}

impl AccessKeyRecord {
    /// What the key's secret signs (keys with a sealed secret predate the other kinds).
    pub fn kind(&self) -> CredentialKind {
        match &self.secret {
            StoredSecret::Derived { kind, .. } => *kind,
            StoredSecret::Sealed(_) => CredentialKind::SigV4,
        }
    }
}

/// Where a root key's material came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootKeyOrigin {
    /// Made by kcm inside the keystore.
    Generated,
    /// The customer's material, imported wrapped (BYOK).
    Imported,
    /// Lives only in the customer's keystore (HYOK).
    External,
}

impl RootKeyOrigin {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RootKeyOrigin::Generated => "generated",
            RootKeyOrigin::Imported => "imported",
            RootKeyOrigin::External => "external",
        }
    }

    /// Parses [`RootKeyOrigin::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Generated, Self::Imported, Self::External]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// A root key (L1): a handle to material that lives in a keystore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootKeyRecord {
    /// Identifier.
    pub id: RootKeyId,
    /// Owning tenant; `None` for the service's own credential-sealing root.
    pub tenant_id: Option<TenantId>,
    /// Name of the keystore instance that holds it.
    pub keystore: String,
    /// The keystore's opaque handle (for `software`: the material sealed under the master key).
    pub handle: Vec<u8>,
    /// Origin.
    pub origin: RootKeyOrigin,
    /// Lifecycle state (the kill switch changes it).
    pub lifecycle: Lifecycle,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A system: a consumer environment linked to one root key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemRecord {
    /// Identifier.
    pub id: SystemId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Unique within the tenant.
    pub name: String,
    /// Free-form kind (`kubernetes`, `storage`, `application`, …).
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Where the system runs (free form, e.g. `eu-west-1` or `dc2`); may be empty.
    pub region: String,
    /// Labels for selecting and grouping systems.
    pub labels: BTreeMap<String, String>,
    /// Version of the active system key (L2). 0 for a system registered without a
    /// root key; a system whose active version is erased is unlinked too.
    pub active_key_version: u32,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A system key (L2) version, wrapped by a root key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemKeyRecord {
    /// The system it belongs to.
    pub system_id: SystemId,
    /// Version, from 1.
    pub version: u32,
    /// The root key that wraps it.
    pub root_key_id: RootKeyId,
    /// The key material wrapped by the root key.
    pub wrapped: Vec<u8>,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// Automatic rotation settings of a service key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationSchedule {
    /// Period in days (90–2560, as in AWS).
    pub period_days: u32,
    /// When the next automatic rotation is due.
    pub next_rotation_at: UnixMillis,
}

/// A service key (L3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKeyRecord {
    /// Identifier.
    pub id: KeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The system whose system key wraps it.
    pub system_id: SystemId,
    /// Free text.
    pub description: String,
    /// Key usage.
    pub usage: KeyUsage,
    /// Key spec.
    pub spec: KeySpec,
    /// Where its material comes from.
    pub origin: KeyOrigin,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// Creation time.
    pub created_at: UnixMillis,
    /// When a pending deletion takes effect.
    pub deletion_at: Option<UnixMillis>,
    /// Automatic rotation, when enabled.
    pub rotation: Option<RotationSchedule>,
    /// The version used to encrypt.
    pub primary_version: u32,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The key policy document (`None`: roles alone decide), see [`crate::policy`].
    pub policy: Option<String>,
    /// For origin `EXTERNAL`: a check value of the material imported (HMAC-SHA-256
    /// keyed by it, hex; reveals nothing about it), so that a re-import must bring
    /// the same material. `None` until the first import.
    pub import_check: Option<String>,
    /// For origin `EXTERNAL`: when the imported material expires (AWS's `ValidTo`,
    /// expiration model `KEY_MATERIAL_EXPIRES`); the material is erased then and the
    /// key waits for it again. `None`: it does not expire.
    pub material_expires_at: Option<UnixMillis>,
}

impl ServiceKeyRecord {
    /// The id of the key material that encrypts now (AWS's `CurrentKeyMaterialId`):
    /// 64 hex digits that name the primary version and change when the key rotates.
    /// Derived from the key id and the version (a hash: it reveals nothing of the
    /// material), so every node computes the same id without storing one.
    pub fn current_material_id(&self) -> String {
        self.material_id(self.primary_version)
    }

    /// The id of the material of `version` (AWS's `KeyMaterialId`: 64 hex digits):
    /// a digest of the key id and the version, so it names the material without
    /// revealing anything of it.
    pub fn material_id(&self, version: u32) -> String {
        self.id.material_id(version)
    }
}

/// How a key version came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionOrigin {
    /// The first version, made with the key.
    Creation,
    /// Made by the automatic rotation schedule.
    AutomaticRotation,
    /// Made by RotateKeyOnDemand.
    OnDemandRotation,
}

impl VersionOrigin {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionOrigin::Creation => "creation",
            VersionOrigin::AutomaticRotation => "automatic",
            VersionOrigin::OnDemandRotation => "on-demand",
        }
    }

    /// Parses [`VersionOrigin::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Creation,
            Self::AutomaticRotation,
            Self::OnDemandRotation,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One version of a service key's material, wrapped by a system key version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersionRecord {
    /// The key.
    pub key_id: KeyId,
    /// Version, from 1.
    pub version: u32,
    /// The system key version that wraps it.
    pub system_key_version: u32,
    /// The material wrapped by that system key.
    pub wrapped: Vec<u8>,
    /// How it was made.
    pub origin: VersionOrigin,
    /// Creation time.
    pub created_at: UnixMillis,
    /// For imported material (origin `EXTERNAL`): its check value
    /// ([`crate::byok::material_check`]), so that the same material can be told
    /// apart from other material without keeping it. `None` for material kcm made,
    /// and for material imported before store schema 10 (the key's own
    /// `import_check` is that of its current material).
    pub import_check: Option<String>,
}

/// An alias (`alias/…`) naming a service key within a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRecord {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Full name including the `alias/` prefix.
    pub name: String,
    /// Target key.
    pub key_id: KeyId,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last change of target.
    pub updated_at: UnixMillis,
}

/// The audit chain a record belongs to: a tenant's, or the operator's (`None`).
pub type AuditChain = Option<TenantId>;

/// One audit record: who did what with which key, and how it ended. Never any
/// plaintext, ciphertext or secret. Records of one chain are hash-linked by `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When the request was served (Unix milliseconds).
    pub time: UnixMillis,
    /// The chain: the caller's tenant (`None`: the operator's chain).
    pub tenant: Option<TenantId>,
    /// Access key id of the caller (as claimed, when authentication failed).
    pub principal: String,
    /// The caller's role, once authenticated.
    pub role: Option<Role>,
    /// `aws`, `rest`, …
    pub front_door: String,
    /// Operation name (`Encrypt`, `CreateSystem`, …).
    pub operation: String,
    /// Keys involved.
    pub keys: Vec<AuditKey>,
    /// The system of the (first) key involved.
    pub system: Option<SystemId>,
    /// `success`, `denied` or `failed`.
    pub outcome: AuditOutcome,
    /// The error type the caller saw, if refused.
    pub error: Option<String>,
    /// Request id returned to the caller.
    pub request_id: String,
    /// Client address.
    pub source: Option<String>,
    /// The id the client gave its request (the Kubernetes API server's request
    /// uid, an `x-kcm-client-request-id` header), to find kcm's record from the
    /// client's log. Absent from records made before it existed, and hashed only
    /// when present, so their hashes stay what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// What the request said of itself that a door records as given, name by name
    /// (the XKS door: AWS KMS's request metadata — `awsPrincipalArn`, `kmsKeyArn`,
    /// `kmsOperation`, `kmsRequestId`, …), so that the record shows who, behind the
    /// access key, asked. Absent from records made before it existed, and hashed
    /// only when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<std::collections::BTreeMap<String, String>>,
    /// Hex SHA-256 of the previous record of the chain (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this record's content (every field above), see `crate::audit`.
    pub hash: String,
}

/// A key named by an audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditKey {
    /// Key id.
    pub id: KeyId,
    /// Version used, if one was.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<u32>,
    /// Set when the key is flagged compromised.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub compromised: bool,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// Done.
    Success,
    /// Refused by authentication or authorisation.
    Denied,
    /// Refused for any other reason (bad input, not found, wrong state, outage).
    Failed,
}

impl AuditOutcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failed => "failed",
        }
    }

    /// Parses [`AuditOutcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Success, Self::Denied, Self::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// A signed statement that a chain had `seq` records ending in `hash` at `time`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    /// The chain.
    pub tenant: Option<TenantId>,
    /// Last record covered.
    pub seq: u64,
    /// That record's hash.
    pub hash: String,
    /// When it was signed.
    pub time: UnixMillis,
    /// Hex Ed25519 signature by the audit signing key (see `crate::audit`).
    pub signature: String,
}

/// A query over one audit chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The chain.
    pub tenant: Option<TenantId>,
    /// Only records with `seq` greater than this.
    pub after_seq: u64,
    /// At most this many.
    pub limit: usize,
    /// Only records at or after this time.
    pub from: Option<UnixMillis>,
    /// Only records before this time.
    pub to: Option<UnixMillis>,
    /// Only records naming this key.
    pub key: Option<KeyId>,
    /// Only records of this access key.
    pub principal: Option<String>,
    /// Only records of this operation.
    pub operation: Option<String>,
}

uuid_id!(
    /// A managed object: a value a client stores and reads back (a Barbican secret
    /// or container, a KMIP object), sealed under its system's key.
    ObjectId
);

/// What a managed object holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A symmetric key (raw bytes).
    SymmetricKey,
    /// A private key (PKCS#8 DER or PEM, as stored).
    PrivateKey,
    /// A public key (SubjectPublicKeyInfo DER or PEM, as stored).
    PublicKey,
    /// An X.509 certificate.
    Certificate,
    /// A passphrase.
    Passphrase,
    /// Bytes kcm does not interpret.
    OpaqueData,
    /// No payload: a named set of links to other objects (a Barbican container).
    Container,
    /// The versions of a value at one path of a key-value store (Vault's KV
    /// version 2, [`crate::kv`]); served by that store's door only.
    #[serde(rename = "kv")]
    VersionedSecret,
}

/// Every object kind (for exhaustive tests and parsing).
pub const ALL_OBJECT_KINDS: [ObjectKind; 8] = [
    ObjectKind::SymmetricKey,
    ObjectKind::PrivateKey,
    ObjectKind::PublicKey,
    ObjectKind::Certificate,
    ObjectKind::Passphrase,
    ObjectKind::OpaqueData,
    ObjectKind::Container,
    ObjectKind::VersionedSecret,
];

impl ObjectKind {
    /// Stable name (`symmetric`, `private`, `public`, `certificate`, `passphrase`,
    /// `opaque`, `container`, `kv`): Barbican's secret types, and the store's column.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::SymmetricKey => "symmetric",
            ObjectKind::PrivateKey => "private",
            ObjectKind::PublicKey => "public",
            ObjectKind::Certificate => "certificate",
            ObjectKind::Passphrase => "passphrase",
            ObjectKind::OpaqueData => "opaque",
            ObjectKind::Container => "container",
            ObjectKind::VersionedSecret => "kv",
        }
    }

    /// Parses [`ObjectKind::as_str`].
    pub fn parse(s: &str) -> Option<ObjectKind> {
        ALL_OBJECT_KINDS.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether objects of this kind carry a payload (all but containers).
    pub fn has_payload(self) -> bool {
        self != ObjectKind::Container
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named reference from one object to another: a container's members, a key
/// pair's halves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLink {
    /// The member's name in the container (`private_key`, `certificate`, free text
    /// for a generic container).
    pub name: String,
    /// The object it names.
    pub object: ObjectId,
}

/// A service that registered its use of an object (a Barbican consumer): deleting
/// the object is the consumer's problem to know about, so it is listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectConsumer {
    /// The consuming service (`image`, `volume`, a free name).
    pub service: String,
    /// The kind of resource that uses it.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
}

/// Who may read an object beyond the role table: Barbican's per-secret read ACL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAcl {
    /// Whether every reader of the object's system may read it (the default). When
    /// false, only its creator and `users` may.
    pub project_access: bool,
    /// Principals (`keystone:<user id>`, an access key id) allowed to read it, even
    /// from another system of the tenant.
    pub users: Vec<String>,
}

impl Default for ObjectAcl {
    fn default() -> Self {
        Self {
            project_access: true,
            users: Vec::new(),
        }
    }
}

/// A managed object's description: everything but its identity, state and payload.
/// Stored as one JSON column, since nothing is looked up by these fields inside the
/// store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectAttributes {
    /// Its name; may be empty.
    pub name: String,
    /// Algorithm (`aes`, `rsa`, …), as the client named it.
    pub algorithm: Option<String>,
    /// Length in bits.
    pub bit_length: Option<u32>,
    /// Mode (`cbc`, …).
    pub mode: Option<String>,
    /// The payload's content type (`application/octet-stream`, `text/plain`).
    pub content_type: Option<String>,
    /// A door's own sub-kind (a container's type: `generic`, `rsa`, `certificate`).
    pub subtype: Option<String>,
    /// When it expires; an expired object's payload is no longer served.
    pub expiration: Option<UnixMillis>,
    /// Free metadata.
    pub metadata: BTreeMap<String, String>,
    /// Links to other objects.
    pub links: Vec<ObjectLink>,
    /// The principal that created it (set by the core).
    pub creator: String,
    /// Its read ACL.
    pub acl: ObjectAcl,
    /// Services that registered their use of it.
    pub consumers: Vec<ObjectConsumer>,
}

/// A managed object's payload as stored: sealed under one version of its system's
/// key (never in plaintext).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedPayload {
    /// The system key version that sealed it.
    pub system_key_version: u32,
    /// The payload sealed with AES-256-GCM, bound to the object
    /// ([`crate::crypto::WrapBinding::ManagedObject`]).
    pub sealed: Vec<u8>,
}

/// A managed object as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedObjectRecord {
    /// Identifier.
    pub id: ObjectId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The system whose key seals it.
    pub system_id: SystemId,
    /// What it holds.
    pub kind: ObjectKind,
    /// Lifecycle state: pending material until a payload arrives, then active.
    pub lifecycle: Lifecycle,
    /// Its description.
    pub attributes: ObjectAttributes,
    /// The sealed payload, once it has one.
    pub payload: Option<SealedPayload>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_in_canonical_form() {
        let canonical = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let id = KeyId::parse(canonical).expect("canonical");
        assert_eq!(id.to_string(), canonical, "Display writes what parse takes");
        let simple = canonical.replace('-', "");
        for other in [
            canonical.to_uppercase(),
            format!("{}{}", &canonical[..9].to_uppercase(), &canonical[9..]),
            format!("{{{canonical}}}"),
            simple.clone(),
            simple.to_uppercase(),
            format!("urn:uuid:{canonical}"),
        ] {
            // The same UUID to the uuid crate, but not a key id.
            assert_eq!(Uuid::try_parse(&other).ok(), Some(id.0), "{other}");
            assert_eq!(KeyId::parse(&other), None, "{other}");
            assert_eq!(TenantId::parse(&other), None, "{other}");
            assert_eq!(SystemId::parse(&other), None, "{other}");
            assert_eq!(RootKeyId::parse(&other), None, "{other}");
        }
        for wrong in [
            "",
            "1234abcd",
            "1234abcd-12ab-34cd-56ef-1234567890a",
            "1234abcd-12ab-34cd-56ef-1234567890abc",
            "1234abcd_12ab-34cd-56ef-1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890ag",
        ] {
            assert_eq!(KeyId::parse(wrong), None, "{wrong}");
        }
        // Every id a key is given round-trips.
        for _ in 0..100 {
            let id = KeyId::new_random();
            assert_eq!(KeyId::parse(&id.to_string()), Some(id));
        }
    }
}
