//! `/v1/root-keys`: a tenant's root keys, bringing or holding your own, and the kill switch.

use serde::{Deserialize, Serialize};

use crate::KeychainSystemNode;

/// Body of `POST /v1/root-keys`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRootKeyRequest {
    /// Name of the keystore to generate it in (`software`, or a configured
    /// `[keystores.<name>]`); default the server's `default_keystore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<String>,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub description: Option<String>,
}

/// A root key (L1): its material never leaves its keystore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RootKey {
    /// Root key id (UUID).
    pub id: String,
    /// Name of the keystore holding it.
    pub keystore: String,
    /// Kind of that keystore (`software`, `pkcs11`, …).
    #[cfg_attr(feature = "openapi", schema(example = "pkcs11"))]
    pub keystore_kind: String,
    /// `generated`, `imported` or `external`.
    #[cfg_attr(feature = "openapi", schema(example = "generated"))]
    pub origin: String,
    /// Lifecycle state (`active`, `suspended`, `disabled`, …).
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub state: String,
    /// Free text.
    pub description: String,
    /// Whether new systems are linked to it unless told otherwise.
    pub default: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// Body of `POST /v1/root-keys/reference`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReferenceRootKeyRequest {
    /// Keystore holding the key; default the server's `default_keystore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<String>,
    /// The key in the keystore's terms: PKCS#11 `label:<CKA_LABEL>` or `id:<CKA_ID hex>`.
    #[cfg_attr(feature = "openapi", schema(example = "label:customer-root"))]
    pub reference: String,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub description: Option<String>,
}

/// Body of `POST /v1/root-keys/import-parameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RootKeyImportParametersRequest {
    /// Keystore to import into; default the server's `default_keystore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<String>,
    /// `RSAES_OAEP_SHA_256` (default) or `RSA_AES_KEY_WRAP_SHA_256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<WrappingAlgorithm>, example = "RSAES_OAEP_SHA_256"))]
    pub wrapping_algorithm: Option<String>,
    /// `RSA_3072` (default) or `RSA_4096`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<WrappingKeySpec>, example = "RSA_3072"))]
    pub wrapping_key_spec: Option<String>,
}

/// The wrappings of imported root key material the server takes (the names of
/// [`RootKeyImportParametersRequest::wrapping_algorithm`], for the document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(non_camel_case_types)]
pub enum WrappingAlgorithm {
    /// RSA-OAEP with SHA-256 over the 32 bytes (the default).
    RSAES_OAEP_SHA_256,
    /// RSA-OAEP wraps an ephemeral AES key, which wraps the material (RFC 5649).
    RSA_AES_KEY_WRAP_SHA_256,
}

/// The sizes of import wrapping key the server makes (the names of
/// [`RootKeyImportParametersRequest::wrapping_key_spec`], for the document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(non_camel_case_types)]
pub enum WrappingKeySpec {
    /// A 3072-bit RSA key (the default).
    RSA_3072,
    /// A 4096-bit RSA key.
    RSA_4096,
}

/// Response of `POST /v1/root-keys/import-parameters`: wrap 32 bytes of AES-256 key
/// material to `public_key` with `wrapping_algorithm`, then call
/// `POST /v1/root-keys/import` with the token before `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Body of `POST /v1/root-keys/import`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImportRootKeyRequest {
    /// The token from the import parameters (single-use).
    pub import_token: String,
    /// The wrapped key material, base64.
    pub wrapped_key_material: String,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RootKeyList {
    /// The tenant's root keys.
    pub root_keys: Vec<RootKey>,
}

/// Response of `POST /v1/root-keys/{id}/enable|disable|suspend`: what the change
/// did (or, for a dry run, would do) to the keychain below the root key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RootKeyImpactBody {
    /// The root key, after the change (as it is, for a dry run).
    pub root_key: RootKey,
    /// Its state before.
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub previous_state: String,
    /// The state the change leads (or would lead) to.
    #[cfg_attr(feature = "openapi", schema(example = "disabled"))]
    pub new_state: String,
    /// `false` for a dry run (and when the root key was already in that state).
    pub applied: bool,
    /// Every system linked to the root key, with its service keys: what is cut off
    /// (disable), made decrypt-only (suspend) or restored (enable).
    pub systems: Vec<KeychainSystemNode>,
}

/// Options of a root key state change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[serde(deny_unknown_fields)]
pub struct StateChangeParams {
    /// `true`: change nothing, only report the systems and keys the change would
    /// affect (the impact preview).
    #[serde(default)]
    pub dry_run: bool,
}
