//! `/v1/systems` and `/v1/keychain`: systems, their system keys, and the tenant's tree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Tenant;

/// The kind given to a system when the request names none.
pub const DEFAULT_SYSTEM_KIND: &str = "application";

/// Body of `POST /v1/systems`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "payments", "kind": "kubernetes", "description": "payments cluster"})))]
pub struct CreateSystemRequest {
    /// Name, unique in the tenant: 1–64 letters, digits, `-`, `_` or `.`, and not a UUID.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._-]{1,64}$", min_length = 1, max_length = 64)
    )]
    pub name: String,
    /// What kind of environment it is (free text, at most 64 characters); default `application`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(default = "application", max_length = 64))]
    pub kind: Option<String>,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub description: Option<String>,
    /// Where it runs (free form: `eu-west-1`, `dc2`, …), at most 64 letters,
    /// digits, `-`, `_` or `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._-]{0,64}$", max_length = 64)
    )]
    pub region: Option<String>,
    /// Labels (at most 32; names 1–63 of letters, digits, `-`, `_`, `.`, `/`;
    /// values at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = labels_schema))]
    pub labels: Option<BTreeMap<String, String>>,
    /// Link it to a root key now (default `true`); `false` registers it unlinked,
    /// to be linked later with `…/link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(default = true))]
    pub link: Option<bool>,
    /// Id of the tenant's root key to link it to; default the tenant's default root key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key_id: Option<String>,
}

/// The schema of a system's labels, with the limits the server checks: at most 32,
/// names 1–63 of letters, digits, `-`, `_`, `.`, `/`, values at most 256 characters
/// none of which is a control character; `null` as good as absent.
#[cfg(feature = "openapi")]
fn labels_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(256))
        .pattern(Some(r"^[^\u0000-\u001f\u007f-\u009f]*$"));
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[A-Za-z0-9._/-]{1,63}$"));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::RefOr(value.build().into())))
        .property_names(Some(name))
        .max_properties(Some(32))
        .description(Some(
            "Labels (at most 32; names 1–63 of letters, digits, `-`, `_`, `.`, `/`; \
             values at most 256 characters, no control characters).",
        ))
        .build()
}

/// Body of `POST /v1/systems/{id_or_name}/link`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LinkSystemRequest {
    /// Id of the tenant's root key to link it to; default the tenant's default root key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key_id: Option<String>,
}

/// Body of `POST /v1/systems/{id_or_name}/switch-root-key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SwitchRootKeyRequest {
    /// Id of the tenant's root key the system is to hang below.
    pub root_key_id: String,
}

/// Response of the system key rotation routes: where the rotation stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemKeyRotationBody {
    /// The system, with its active system key version.
    pub system: System,
    /// Key versions re-wrapped by this call.
    pub rewrapped: usize,
    /// Key versions still wrapped by an older system key version; 0: done (the older
    /// versions are erased).
    pub remaining: usize,
}

/// A system: a consumer environment linked to one root key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub system_key_state: Option<String>,
    /// Version of its latest system key (0: never linked).
    pub system_key_version: u32,
    /// `connected`; `locked: <reason>` when a key above it is not usable;
    /// `unlinked` when it has no root key.
    #[cfg_attr(feature = "openapi", schema(example = "connected"))]
    pub status: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// Response of `GET /v1/systems`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemList {
    /// The systems the caller can see.
    pub systems: Vec<System>,
}

/// Response of `GET /v1/keychain`: the caller's tenant as a tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Keychain {
    /// The tenant.
    pub tenant: Tenant,
    /// Its root keys, with the systems and service keys below them.
    pub root_keys: Vec<KeychainRootKey>,
    /// Systems linked to no root key.
    pub unlinked_systems: Vec<KeychainSystemNode>,
}

/// A root key (L1) in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeychainRootKey {
    /// Root key id.
    pub id: String,
    /// Keystore instance holding it.
    pub keystore: String,
    /// `generated`, `imported` or `external`.
    #[cfg_attr(feature = "openapi", schema(example = "generated"))]
    pub origin: String,
    /// Lifecycle state.
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub state: String,
    /// Systems linked to it.
    pub systems: Vec<KeychainSystemNode>,
}

/// A system (with its system key, L2) in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeychainSystemNode {
    /// System id.
    pub id: String,
    /// Name.
    pub name: String,
    /// What kind of environment it is, as registered: a kill switch's impact shows
    /// which Kubernetes clusters (`kubernetes`) or other systems it reaches.
    #[cfg_attr(feature = "openapi", schema(example = "kubernetes"))]
    #[serde(default)]
    pub kind: String,
    /// State of its active system key; `null` when unlinked.
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub state: Option<String>,
    /// Active system key version.
    pub system_key_version: u32,
    /// `connected`, `locked: <reason>` or `unlinked`.
    #[cfg_attr(feature = "openapi", schema(example = "connected"))]
    pub status: String,
    /// Its service keys (L3), destroyed ones excluded.
    pub service_keys: Vec<KeychainServiceKeyNode>,
    /// How many managed objects (Barbican secrets and containers) its key seals:
    /// what a kill switch on its root key makes unreadable besides the keys.
    #[serde(default)]
    pub managed_objects: u64,
    /// The enabled access keys of kind `xks` scoped to it: AWS KMS reaches its keys
    /// through them (an external key store), so a kill switch on its root key
    /// reaches into AWS.
    #[serde(default)]
    pub xks_access_keys: Vec<String>,
    /// The KMIP clients (storage systems, hypervisors, databases) whose access
    /// keys are scoped to it, by the names the serving node's `[kmip_server]`
    /// gives them: a kill switch on its root key cuts them off.
    #[serde(default)]
    pub kmip_clients: Vec<String>,
    /// The enabled Vault tokens (access keys of kind `vault`) of it: Ceph's RADOS
    /// Gateway, Transit plugins and scripts reach its keys through kcm's Vault API
    /// with them.
    #[serde(default)]
    pub vault_tokens: Vec<String>,
}

/// A service key (L3) in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeychainServiceKeyNode {
    /// Key id.
    pub id: String,
    /// Description.
    pub description: String,
    /// Lifecycle state.
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub state: String,
    /// Primary (encrypting) version.
    pub primary_version: u32,
    /// Aliases naming it (`alias/…`).
    pub aliases: Vec<String>,
}

/// Options of `POST /v1/systems/{id_or_name}/rewrap`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[serde(deny_unknown_fields)]
pub struct RewrapParams {
    /// Most key versions to re-wrap in this call (1–1000, default 100).
    #[serde(default = "default_rewrap_limit")]
    #[cfg_attr(
        feature = "openapi",
        param(required = false, minimum = 1, maximum = 1000, default = 100)
    )]
    pub limit: usize,
}

fn default_rewrap_limit() -> usize {
    100
}
