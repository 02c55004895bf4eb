//! The `xks` keystore: root keys that stay in the customer's own key manager,
//! reached through an AWS KMS External Key Store (XKS) proxy (HYOK).
//!
//! kcm never holds such a key's material. Every wrap and unwrap of a system key
//! is a SigV4-signed HTTPS call to the proxy's `encrypt` or `decrypt` API, so the
//! customer can cut kcm off by disabling the key on their side (or turning the
//! proxy off); kcm notices within its `external_check_interval` because material
//! below such a root is cached no longer than that. The proxy API cannot create,
//! import or destroy keys: this keystore only refers to keys the customer made
//! ([`KeystoreProvider::reference_root_key`] with the `externalKeyId`).
//!
//! The protocol is the public "AWS KMS External Key Store Proxy API"
//! specification, version 1: `POST <uri_path>/keys/<externalKeyId>/metadata|encrypt|decrypt`
//! and `POST <uri_path>/health`, JSON bodies, SigV4 with service `kms-xks-proxy`.
//!
//! # The proxy's errors
//!
//! The specification's "Error Codes" table fixes each error's `errorName`, the HTTP
//! status it comes with and the APIs that may answer it; the body is
//! `{"errorName": ..., "errorMessage": ...}`. kcm turns each into a [`KeystoreError`],
//! which the core turns into what its caller sees ([`ErrorKind`], here with the type
//! the AWS API door answers with):
//!
//! | `errorName` | HTTP | answered by | [`KeystoreError`] | caller sees |
//! |---|---|---|---|---|
//! | `ValidationException` | 400 | all but health | `Misconfigured` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//! | `InvalidStateException` | 400 | all | `KeyUnusable` (from health: `Unavailable`) | `InvalidState`, AWS `KMSInvalidStateException` (400) |
//! | `InvalidCiphertextException` | 400 | decrypt | `UnwrapFailed` | `Internal`, AWS `KMSInternalException` (500): a stored wrapped key that does not open |
//! | `InvalidKeyUsageException` | 400 | encrypt, decrypt | `KeyUnusable` | `InvalidState`, AWS `KMSInvalidStateException` (400) |
//! | `AuthenticationFailedException` | 401 | all | `Misconfigured` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//! | `AccessDeniedException` | 403 | all but health | `KeyUnusable` | `InvalidState`, AWS `KMSInvalidStateException` (400) |
//! | `KeyNotFoundException` | 404 | all but health | `KeyUnusable` | `InvalidState`, AWS `KMSInvalidStateException` (400) |
//! | `InvalidUriPathException` | 404 | all | `Misconfigured` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//! | `ThrottlingException` | 429 | all | `Unavailable` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//! | `UnsupportedOperationException` | 501 | all | `Misconfigured` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//! | `DependencyTimeoutException` | 503 | all | `Unavailable` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//! | `InternalException` | 500 | all | `Unavailable` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//! | anything else | | | `Unavailable` | `KeystoreUnavailable`, AWS `DependencyTimeoutException` (503) |
//!
//! `KeyUnusable` is the key holder's verdict on the key (disabled, deleted, refused
//! to kcm): the periodic check locks the systems below such a key as revoked by its
//! holder (and a reference to such a key is refused as the caller's `InvalidInput`). `Misconfigured` is the operator's to fix (credentials, `uri_path`, a proxy
//! that cannot do what kcm asks); the caller is told only that, the log says what.
//! `Unavailable` says nothing about the key: the proxy is busy, slow, broken or not
//! speaking the API, and the same call may work later.
//!
//! "Anything else" is every answer the table does not define, which the
//! specification (like AWS KMS) treats as a malformed response: a name not in the
//! table, a name with another status or from an API the table does not list it for,
//! an error body that is not that JSON, a 200 whose body is not the API's, an answer
//! over 64 KiB, a redirect (never followed: the request may hold a system key), and
//! no answer within the timeout.
//! The `errorMessage` is cut to the specification's printable ASCII under 512
//! characters, and the `errorName` to 64 of them, before kcm logs or repeats either.
//!
//! [`ErrorKind`]: kcm_core::error::ErrorKind

mod blob;
mod http;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::SecretBytes;
use kcm_sigv4::Credentials;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::blob::Sealed;
use crate::http::{Failure, Proxy};

/// How kcm reaches one XKS proxy.
#[derive(Debug, Clone)]
pub struct XksConfig {
    /// The keystore's name in kcm's settings (for messages and request metadata).
    pub name: String,
    /// `https://<server>[:port]`, without a path.
    pub endpoint: String,
    /// `[/<prefix>]/kms/xks/v1`, as configured at the proxy.
    pub uri_path: String,
    /// The proxy's SigV4 access key id and secret access key.
    pub credentials: Credentials,
    /// The region kcm signs for (the proxy checks the credential scope).
    pub region: String,
    /// A PEM file of the CA certificates to trust for the proxy instead of the
    /// operating system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// kcm's client certificate and key (PEM files), for a proxy that requires
    /// mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// How long one call may take before it fails as unavailable.
    pub timeout: Duration,
}

/// The SigV4 service name the XKS specification fixes.
pub const SIGV4_SERVICE: &str = "kms-xks-proxy";

/// The longest `externalKeyId` the specification allows.
const MAX_KEY_ID: usize = 128;
/// The first byte of every handle this keystore issues.
const HANDLE_V1: u8 = 1;

/// A keystore backed by one XKS proxy.
#[derive(Debug)]
pub struct XksKeystore {
    proxy: Proxy,
    name: String,
}

impl XksKeystore {
    /// Checks the settings and builds the HTTPS client. Does not call the proxy:
    /// a proxy that is down when kcm starts only locks the systems below its keys.
    pub fn new(config: XksConfig) -> KeystoreResult<Self> {
        let name = config.name.clone();
        Ok(Self {
            proxy: Proxy::new(config)?,
            name,
        })
    }

    fn key_id<'h>(&self, handle: &'h [u8]) -> KeystoreResult<&'h str> {
        match handle.split_first() {
            Some((&HANDLE_V1, id)) => std::str::from_utf8(id)
                .ok()
                .filter(|id| valid_key_id(id))
                .ok_or_else(|| self.bad_handle()),
            _ => Err(self.bad_handle()),
        }
    }

    fn bad_handle(&self) -> KeystoreError {
        KeystoreError::KeyUnusable(format!(
            "the handle does not name a key of the xks keystore {:?}",
            self.name
        ))
    }

    /// The key's metadata, refused unless it is an enabled AES-256 key usable to
    /// encrypt and decrypt.
    async fn usable_key(&self, key_id: &str) -> KeystoreResult<()> {
        let meta: wire::MetadataResponse = self
            .call_for_key(key_id, "metadata", "DescribeKey", &wire::Empty {})
            .await?;
        let usage = |u: &str| meta.key_usage.iter().any(|k| k == u);
        if meta.key_spec != "AES_256" || !usage("ENCRYPT") || !usage("DECRYPT") {
            return Err(KeystoreError::KeyUnusable(format!(
                "external key {key_id:?} is {} with usage {:?}; kcm needs an AES_256 key usable to ENCRYPT and DECRYPT",
                meta.key_spec, meta.key_usage
            )));
        }
        if meta.key_status != "ENABLED" {
            return Err(KeystoreError::KeyUnusable(format!(
                "external key {key_id:?} is {} in the customer's key manager",
                meta.key_status
            )));
        }
        Ok(())
    }

    /// Calls the proxy's `op` API on `key_id` (`kms_operation` is the KMS operation
    /// the request metadata names), a failure said as what it means for kcm.
    async fn call_for_key<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        key_id: &str,
        op: &str,
        kms_operation: &str,
        payload: &Req,
    ) -> KeystoreResult<Resp> {
        self.proxy
            .call(key_id, op, kms_operation, payload)
            .await
            .map_err(|f| self.key_error(op, key_id, f))
    }

    /// What a failed call of the proxy's `op` API (`metadata`, `encrypt`, `decrypt`
    /// or [`HEALTH`]) means for kcm: the table in the module documentation.
    fn key_error(&self, op: &str, key_id: &str, failure: Failure) -> KeystoreError {
        let name = &self.name;
        let (status, error_name, message) = match failure {
            Failure::Transport(why) => {
                return KeystoreError::Unavailable(format!("xks proxy {name:?}: {why}"))
            }
            Failure::Proxy {
                status,
                error_name,
                message,
            } => (status, error_name, message),
        };
        let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
        if !spec_defines(&error_name, status, op) {
            // Spec, "Error Codes" and its KMS considerations: an error outside the
            // table (or with another status, or from another API) is a malformed
            // response. It says nothing about the key or kcm's settings.
            return KeystoreError::Unavailable(format!(
                "xks proxy {name:?} answered {op} with HTTP {status} {error_name:?}, which the XKS proxy API does not define there{detail}"
            ));
        }
        match error_name.as_str() {
            // Spec: "the key store is disabled/deactivated/blocked"; health names no key.
            "InvalidStateException" if op == HEALTH => KeystoreError::Unavailable(format!(
                "xks proxy {name:?} says its key store is disabled{detail}"
            )),
            "InvalidCiphertextException" => KeystoreError::UnwrapFailed,
            "KeyNotFoundException" => KeystoreError::KeyUnusable(format!(
                "external key {key_id:?} is not found at xks proxy {name:?}"
            )),
            "InvalidStateException" => KeystoreError::KeyUnusable(format!(
                "external key {key_id:?} is disabled by its holder (xks proxy {name:?}{detail})"
            )),
            // AccessDenied: the proxy's own authorisation (spec, "Authorization")
            // refuses kcm this key: the holder's decision, like disabling it.
            "InvalidKeyUsageException" | "AccessDeniedException" => {
                KeystoreError::KeyUnusable(format!(
                    "xks proxy {name:?} refused to use external key {key_id:?}: {error_name}{detail}"
                ))
            }
            "AuthenticationFailedException" => KeystoreError::Misconfigured(format!(
                "xks proxy {name:?} rejected kcm's SigV4 credentials (check access_key_id, the secret and region){detail}"
            )),
            "InvalidUriPathException" => KeystoreError::Misconfigured(format!(
                "xks proxy {name:?} does not serve uri_path {:?}{detail}",
                self.proxy.uri_path()
            )),
            // Validation: kcm's request is not what this proxy accepts; Unsupported:
            // the proxy does not implement it. Neither goes away by retrying.
            "ValidationException" | "UnsupportedOperationException" => {
                KeystoreError::Misconfigured(format!(
                    "xks proxy {name:?} refused kcm's request: {error_name}{detail}"
                ))
            }
            // Throttling, DependencyTimeout and Internal: the proxy or the key manager
            // behind it cannot serve now (the spec's KMS messages: retry, slow down,
            // check the HSM). Nothing about the key: the same call may work later.
            _ => KeystoreError::Unavailable(format!(
                "xks proxy {name:?} answered {op} with HTTP {status} {error_name}{detail}"
            )),
        }
    }
}

/// The `op` of the health API in [`XksKeystore::key_error`].
const HEALTH: &str = "health";
/// The proxy APIs, as kcm names them in its calls: all of them, those that name a
/// key, and those that use one.
const ALL_APIS: &[&str] = &["metadata", "encrypt", "decrypt", HEALTH];
const KEY_APIS: &[&str] = &["metadata", "encrypt", "decrypt"];
const CRYPTO_APIS: &[&str] = &["encrypt", "decrypt"];

/// The specification's "Error Codes" table: each `errorName`, its HTTP status and
/// the APIs that may answer it.
const SPEC_ERRORS: [(&str, u16, &[&str]); 12] = [
    ("ValidationException", 400, KEY_APIS),
    ("InvalidStateException", 400, ALL_APIS),
    ("InvalidCiphertextException", 400, &["decrypt"]),
    ("InvalidKeyUsageException", 400, CRYPTO_APIS),
    ("AuthenticationFailedException", 401, ALL_APIS),
    ("AccessDeniedException", 403, KEY_APIS),
    ("KeyNotFoundException", 404, KEY_APIS),
    ("InvalidUriPathException", 404, ALL_APIS),
    ("ThrottlingException", 429, ALL_APIS),
    ("UnsupportedOperationException", 501, ALL_APIS),
    ("DependencyTimeoutException", 503, ALL_APIS),
    ("InternalException", 500, ALL_APIS),
];

/// Whether the specification defines `error_name` with `status` as an answer of `op`.
fn spec_defines(error_name: &str, status: u16, op: &str) -> bool {
    SPEC_ERRORS
        .iter()
        .any(|&(n, s, apis)| n == error_name && s == status && apis.contains(&op))
}

/// Whether `id` is an `externalKeyId` the specification allows: 1 to 128 of
/// letters, digits, `-`, `.` and `_`.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// SHA-256 over aad ‖ metadata ‖ iv ‖ ciphertext ‖ tag (the spec's Appendix C).
fn integrity_value(aad: &[u8], sealed: &Sealed<'_>) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [
        aad,
        sealed.metadata,
        sealed.iv,
        sealed.ciphertext,
        sealed.tag,
    ] {
        ctx.update(part);
    }
    ctx.finish()
}

fn decode_field(field: &str, value: &str) -> Result<Vec<u8>, String> {
    B64.decode(value)
        .map_err(|_| format!("the proxy's {field} is not Base64"))
}

/// Base64 of `aad`, or nothing when it is empty (the field is optional).
fn aad_field(aad: &[u8]) -> Option<String> {
    (!aad.is_empty()).then(|| B64.encode(aad))
}

#[async_trait]
impl KeystoreProvider for XksKeystore {
    fn kind(&self) -> &'static str {
        "xks"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            generate: false,
            import: false,
            reference: true,
        }
    }

    async fn health(&self) -> KeystoreResult<()> {
        let health: wire::HealthResponse = match self.proxy.call_health().await {
            Ok(health) => health,
            // A proxy's secondary authorisation may refuse the health check itself
            // (the specification lets a proxy authorise each call with a policy of its
            // own). It answered, and took kcm's signature: it is reachable, and
            // whether a key may be used is decided key by key. Such a refusal must
            // not lock every system below the proxy's keys.
            Err(Failure::Proxy {
                status: 403,
                error_name,
                ..
            }) if error_name == "AccessDeniedException" => {
                tracing::debug!(keystore = %self.name, "the xks proxy's policy refuses kcm its health check; taken as reachable");
                return Ok(());
            }
            Err(f) => return Err(self.key_error(HEALTH, "", f)),
        };
        let serving = health
            .ekm_fleet_details
            .iter()
            .any(|e| e.health_status == "ACTIVE" || e.health_status == "DEGRADED");
        if serving {
            Ok(())
        } else {
            let states: Vec<String> = health
                .ekm_fleet_details
                .iter()
                .map(|e| format!("{}={}", e.id, e.health_status))
                .collect();
            Err(KeystoreError::Unavailable(format!(
                "xks proxy {:?}: no key manager can serve ({})",
                self.name,
                states.join(", ")
            )))
        }
    }

    async fn create_root_key(&self, _label: &str) -> KeystoreResult<Vec<u8>> {
        Err(KeystoreError::Unsupported(format!(
            "the xks keystore {:?} cannot create keys: create the key in your key manager and reference it by its externalKeyId",
            self.name
        )))
    }

    async fn reference_root_key(&self, reference: &str) -> KeystoreResult<Vec<u8>> {
        if !valid_key_id(reference) {
            return Err(KeystoreError::KeyUnusable(format!(
                "{reference:?} is not an XKS externalKeyId (1 to {MAX_KEY_ID} of letters, digits, '-', '.', '_')"
            )));
        }
        self.usable_key(reference).await?;
        let mut handle = Vec::with_capacity(1 + reference.len());
        handle.push(HANDLE_V1);
        handle.extend_from_slice(reference.as_bytes());
        Ok(handle)
    }

    async fn check_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let key_id = self.key_id(handle)?;
        self.usable_key(key_id).await
    }

    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> KeystoreResult<Vec<u8>> {
        let key_id = self.key_id(handle)?;
        let encoded = Zeroizing::new(B64.encode(plaintext.expose_secret()));
        let aad_b64 = aad_field(aad);
        let request = wire::EncryptRequest {
            plaintext: &encoded,
            encryption_algorithm: "AES_GCM",
            additional_authenticated_data: aad_b64.as_deref(),
            ciphertext_data_integrity_value_algorithm: "SHA_256",
        };
        let response: wire::EncryptResponse = self
            .call_for_key(key_id, "encrypt", "Encrypt", &request)
            .await?;

        let invalid = |why: String| {
            KeystoreError::Unavailable(format!(
                "xks proxy {:?} gave an unusable encrypt response: {why}",
                self.name
            ))
        };
        let ciphertext = decode_field("ciphertext", &response.ciphertext).map_err(invalid)?;
        let iv = decode_field("initializationVector", &response.initialization_vector)
            .map_err(invalid)?;
        let tag =
            decode_field("authenticationTag", &response.authentication_tag).map_err(invalid)?;
        let metadata = match &response.ciphertext_metadata {
            Some(m) => decode_field("ciphertextMetadata", m).map_err(invalid)?,
            None => Vec::new(),
        };
        if ciphertext.len() != plaintext.len()
            || !blob::valid_iv(&iv)
            || tag.len() != blob::TAG_LEN
            || metadata.len() > blob::MAX_METADATA
        {
            return Err(invalid(
                "a field has the wrong length (ciphertext, IV, tag or metadata)".into(),
            ));
        }
        let sealed = Sealed {
            iv: &iv,
            metadata: &metadata,
            tag: &tag,
            ciphertext: &ciphertext,
        };
        // The integrity value is the proxy's promise that this output decrypts;
        // kcm stores the wrapped key only if it matches.
        let expected = integrity_value(aad, &sealed);
        let given = response
            .ciphertext_data_integrity_value
            .as_deref()
            .ok_or_else(|| invalid("no ciphertextDataIntegrityValue".into()))
            .and_then(|v| decode_field("ciphertextDataIntegrityValue", v).map_err(invalid))?;
        if given != expected.as_ref() {
            return Err(invalid(
                "ciphertextDataIntegrityValue does not match the output".into(),
            ));
        }
        Ok(sealed.encode())
    }

    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> KeystoreResult<SecretBytes> {
        let key_id = self.key_id(handle)?;
        let sealed = blob::decode(wrapped)?;
        let ciphertext = B64.encode(sealed.ciphertext);
        let metadata = (!sealed.metadata.is_empty()).then(|| B64.encode(sealed.metadata));
        let tag = B64.encode(sealed.tag);
        let iv = B64.encode(sealed.iv);
        let aad_b64 = aad_field(aad);
        let request = wire::DecryptRequest {
            ciphertext: &ciphertext,
            ciphertext_metadata: metadata.as_deref(),
            encryption_algorithm: "AES_GCM",
            additional_authenticated_data: aad_b64.as_deref(),
            authentication_tag: &tag,
            initialization_vector: &iv,
        };
        let response: wire::DecryptResponse = self
            .call_for_key(key_id, "decrypt", "Decrypt", &request)
            .await?;
        let encoded = Zeroizing::new(response.plaintext);
        let plaintext = SecretBytes::new(B64.decode(encoded.as_bytes()).map_err(|_| {
            KeystoreError::Unavailable(format!(
                "xks proxy {:?} gave a plaintext that is not Base64",
                self.name
            ))
        })?);
        if plaintext.len() != sealed.ciphertext.len() {
            return Err(KeystoreError::Unavailable(format!(
                "xks proxy {:?} gave a plaintext of the wrong length",
                self.name
            )));
        }
        Ok(plaintext)
    }

    /// The key is the customer's: kcm forgets its handle and changes nothing at
    /// the proxy (the API has no way to, by design).
    async fn destroy(&self, _handle: &[u8]) -> KeystoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, uri_path: &str) -> XksConfig {
        XksConfig {
            name: "xks".into(),
            endpoint: endpoint.into(),
            uri_path: uri_path.into(),
            credentials: Credentials::new("AKIDEXAMPLEAKIDEXAMPLE", "secret"),
            region: "us-east-1".into(),
            ca_file: None,
            client_identity: None,
            timeout: Duration::from_secs(1),
        }
    }

    fn refused(config: XksConfig) -> String {
        match XksKeystore::new(config) {
            Err(KeystoreError::Misconfigured(why)) => why,
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }

    #[test]
    fn settings_are_checked_before_anything_is_called() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        assert!(XksKeystore::new(config("https://xks.example.com", "/kms/xks/v1")).is_ok());
        assert!(
            XksKeystore::new(config("https://xks.example.com:8443/", "/p-1/kms/xks/v1/")).is_ok()
        );
        assert!(refused(config("http://xks.example.com", "/kms/xks/v1")).contains("https"));
        assert!(refused(config("https://xks.example.com/p", "/kms/xks/v1")).contains("uri_path"));
        assert!(refused(config("https://xks.example.com", "/kms/xks/v2")).contains("uri_path"));
        assert!(refused(config("https://xks.example.com", "/a b/kms/xks/v1")).contains("uri_path"));
        let mut no_region = config("https://xks.example.com", "/kms/xks/v1");
        no_region.region.clear();
        assert!(refused(no_region).contains("region"));
        let mut missing_ca = config("https://xks.example.com", "/kms/xks/v1");
        missing_ca.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(refused(missing_ca).contains("/nonexistent/ca.pem"));
    }

    /// Health has no key: the key's errors are not among its answers, and a disabled
    /// key store is the proxy being unavailable. (The key APIs are tested against the
    /// proxy, in tests/proxy.rs.)
    #[test]
    fn health_errors_never_name_a_key() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ks = XksKeystore::new(config("https://xks.example.com", "/kms/xks/v1")).unwrap();
        for (error_name, status, _) in SPEC_ERRORS {
            let e = ks.key_error(
                HEALTH,
                "",
                Failure::Proxy {
                    status,
                    error_name: error_name.into(),
                    message: None,
                },
            );
            let operator = matches!(
                error_name,
                "AuthenticationFailedException"
                    | "InvalidUriPathException"
                    | "UnsupportedOperationException"
            );
            match e {
                KeystoreError::Misconfigured(_) if operator => {}
                KeystoreError::Unavailable(m) if !operator => {
                    assert!(!m.contains("external key"), "{error_name}: {m}")
                }
                other => panic!("health answered {error_name}: {other:?}"),
            }
        }
    }

    #[test]
    fn external_key_ids_follow_the_spec() {
        assert!(valid_key_id("customer-key_1.v2"));
        assert!(valid_key_id(&"a".repeat(128)));
        assert!(!valid_key_id(""));
        assert!(!valid_key_id(&"a".repeat(129)));
        assert!(!valid_key_id("a/b"));
        assert!(!valid_key_id("a b"));
    }

    #[test]
    fn the_integrity_value_is_the_specs_example() {
        // Appendix C of the XKS proxy API specification.
        let aad = b"project=nile,department=marketing";
        let iv = B64.decode("HMrlRw85cAJUd5Ax").unwrap();
        let ciphertext = B64.decode("ghxkK1txeDNn3q8Y").unwrap();
        let tag = B64.decode("vBxN2ncH1oEkR8WVXpmyYQ==").unwrap();
        let metadata = B64.decode("a2V5X3ZlcnNpb249MQ==").unwrap();
        let sealed = Sealed {
            iv: &iv,
            metadata: &metadata,
            tag: &tag,
            ciphertext: &ciphertext,
        };
        assert_eq!(
            B64.encode(integrity_value(aad, &sealed)),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
    }
}
