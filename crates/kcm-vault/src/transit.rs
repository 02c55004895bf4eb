//! Vault's Transit engine on kcm's service keys.
//!
//! A Transit key `<name>` of a token's system is the kcm service key the alias
//! `alias/transit/<system id>/<name>` names (the system in the alias, because aliases
//! are a tenant's and one tenant's systems may each have a key of the same name), so
//! rotation, policies, the audit log and the kill switch are kcm's. Its Vault
//! attributes are tags on the key (`vault:type`, `vault:deletion_allowed`).
//!
//! Ciphertexts are Vault's `vault:v<N>:<base64>`, the payload kcm's own
//! self-describing ciphertext (which names the key and its version N). A `context`,
//! when sent, is bound to the ciphertext as its encryption context
//! (`vault:context`), so decrypting needs the same one — for every key, which is
//! what Vault's derived keys do; kcm derives nothing else.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kcm_core::authz::Caller;
use kcm_core::crypto::CiphertextHeader;
use kcm_core::error::{Error, ErrorKind};
use kcm_core::keyspec::{EncryptionAlgorithm, KeySpec, KeyUsage};
use kcm_core::service::{CreateKeyRequest, KeyInfo, KeyRef, ReEncryptRequest, Service};
use kcm_frontdoor::Call;
use serde_json::{json, Map, Value};

use crate::error::VaultError;
use crate::request::{Batch, Request};

pub mod signing;

use crate::route::Route;
use signing::{key_type_named, Signing};

/// The one Transit key type kcm serves so far: AES-256-GCM (kcm's symmetric keys).
const AES256_GCM96: &str = "aes256-gcm96";
/// The tag holding a key's Vault type.
const TYPE_TAG: &str = "vault:type";
/// The tag holding whether a key may be deleted through Transit.
const DELETION_TAG: &str = "vault:deletion_allowed";
/// The encryption-context entry a Transit `context` is bound as.
const CONTEXT_ENTRY: &str = "vault:context";

/// Serves one Transit endpoint; `None` is Vault's 204 (nothing to say).
pub async fn serve(
    call: &Call<'_>,
    route: &Route,
    body: &[u8],
) -> Result<Option<Value>, VaultError> {
    let service = call.service();
    let caller = call
        .caller()
        .expect("a Transit request has an admitted caller");
    let request = Request::parse(body)?;
    let transit = Transit { service, caller };
    match route {
        Route::ListKeys => transit.list().await.map(Some),
        Route::CreateKey(name) => transit.create(name, &request).await.map(Some),
        Route::ReadKey(name) => transit.read(name).await.map(Some),
        Route::DeleteKey(name) => transit.delete(name).await.map(|()| None),
        Route::ConfigureKey(name) => transit.configure(name, &request).await.map(Some),
        Route::RotateKey(name) => transit.rotate(name).await.map(Some),
        Route::Encrypt(name) => transit.each(name, request, Transit::encrypt).await,
        Route::Decrypt(name) => transit.each(name, request, Transit::decrypt).await,
        Route::Rewrap(name) => transit.each(name, request, Transit::rewrap).await,
        Route::DataKey { plaintext, name } => {
            transit.data_key(name, *plaintext, &request).await.map(Some)
        }
        Route::Random(bytes) => transit.random(bytes.as_deref(), &request).await.map(Some),
        Route::Hash(algorithm) => hash(algorithm.as_deref(), &request).map(Some),
        Route::Sign { name, hash } => {
            let spec = transit.spec(name).await?;
            let how = Signing::of(spec, &request, hash.as_deref())?;
            transit
                .each(name, request, move |t, k, i| t.sign(k, i, how))
                .await
        }
        Route::Verify { name, hash } => {
            let spec = transit.spec(name).await?;
            let how = if spec.signing_algorithms().is_empty() {
                None
            } else {
                Some(Signing::of(spec, &request, hash.as_deref())?)
            };
            transit
                .each(name, request, move |t, k, i| t.verify(k, i, how))
                .await
        }
        Route::Hmac { name, hash } => {
            let spec = transit.spec(name).await?;
            let asked = match hash.as_deref() {
                Some(h) => Some(h),
                None => request.text("algorithm")?,
            };
            signing::check_hmac_hash(spec, asked)?;
            transit
                .each(name, request, move |t, k, i| t.hmac(k, i, spec))
                .await
        }
        _ => Err(VaultError::invalid("not a Transit endpoint")),
    }
}

impl Request {
    /// The encryption context a `context` field binds (none without one).
    pub fn context(&self) -> Result<BTreeMap<String, String>, VaultError> {
        let mut context = BTreeMap::new();
        if let Some(text) = self.text("context")? {
            if STANDARD.decode(text).is_err() {
                return Err(VaultError::invalid("context must be base64"));
            }
            if !text.is_empty() {
                context.insert(CONTEXT_ENTRY.to_owned(), text.to_owned());
            }
        }
        Ok(context)
    }
}

/// Transit's calls for one caller.
struct Transit<'a> {
    service: &'a Service,
    caller: &'a Caller,
}

/// A Transit key name: what kcm's alias names take (letters, digits, `-`, `_`),
/// 1 to 128 characters.
pub fn check_name(name: &str) -> Result<(), VaultError> {
    let fine = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if fine {
        Ok(())
    } else {
        Err(VaultError::invalid(format!(
            "key name {name:?} must be 1 to 128 letters, digits, - or _ (a kcm alias holds it)"
        )))
    }
}

/// A Vault ciphertext of kcm's `blob`.
fn vault_ciphertext(blob: &[u8]) -> Result<(String, u32), VaultError> {
    let version = CiphertextHeader::parse(blob)
        .map(|h| h.key_version)
        .ok_or_else(|| VaultError::from(Error::internal("a ciphertext kcm made has no header")))?;
    Ok((
        format!("vault:v{version}:{}", STANDARD.encode(blob)),
        version,
    ))
}

/// kcm's ciphertext in a Vault ciphertext `vault:v<N>:<base64>`, whose N must be
/// the version kcm's ciphertext names.
pub fn kcm_ciphertext(text: &str) -> Result<Vec<u8>, VaultError> {
    let invalid = || VaultError::invalid("invalid ciphertext: not vault:v<N>:<base64> of kcm's");
    let rest = text.strip_prefix("vault:v").ok_or_else(invalid)?;
    let (version, payload) = rest.split_once(':').ok_or_else(invalid)?;
    let version: u32 = version.parse().map_err(|_| invalid())?;
    let blob = STANDARD.decode(payload).map_err(|_| invalid())?;
    // The version shown must be the one the ciphertext names.
    match CiphertextHeader::parse(&blob) {
        Some(h) if h.key_version == version => Ok(blob),
        _ => Err(invalid()),
    }
}

impl Transit<'_> {
    fn system(&self) -> Result<String, VaultError> {
        crate::token_system(self.caller).map(|s| s.to_string())
    }

    fn prefix(&self) -> Result<String, VaultError> {
        Ok(format!("alias/transit/{}/", self.system()?))
    }

    fn key(&self, name: &str) -> Result<KeyRef, VaultError> {
        check_name(name)?;
        Ok(KeyRef::Alias(format!("{}{name}", self.prefix()?)))
    }

    /// A key's description as Vault reads it.
    fn describe(name: &str, info: &KeyInfo) -> Value {
        let record = &info.record;
        let created = record.created_at / 1000;
        let kind = record
            .tags
            .get(TYPE_TAG)
            .map_or(AES256_GCM96, String::as_str);
        let encrypts = record.usage == KeyUsage::EncryptDecrypt;
        let keys: Map<String, Value> = (1..=record.primary_version)
            .map(|v| (v.to_string(), json!(created)))
            .collect();
        json!({
            "name": name,
            "type": kind,
            "keys": keys,
            "latest_version": record.primary_version,
            "min_available_version": 0,
            "min_decryption_version": 1,
            "min_encryption_version": 0,
            "deletion_allowed": record.tags.get(DELETION_TAG).is_some_and(|v| v == "true"),
            "derived": false,
            "exportable": false,
            "allow_plaintext_backup": false,
            "supports_encryption": encrypts,
            "supports_decryption": encrypts,
            "supports_derivation": encrypts,
            "supports_signing": record.usage == KeyUsage::SignVerify,
            "imported_key": false,
            "auto_rotate_period": 0,
            "kcm_key_id": record.id.to_string(),
            "kcm_state": record.lifecycle.state().to_string(),
        })
    }

    async fn list(&self) -> Result<Value, VaultError> {
        let prefix = self.prefix()?;
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let (aliases, next) = self
                .service
                .list_aliases(self.caller, None, Some(100), marker.as_deref())
                .await?;
            names.extend(
                aliases
                    .iter()
                    .filter_map(|a| a.name.strip_prefix(&prefix).map(str::to_owned)),
            );
            match next {
                Some(next) => marker = Some(next),
                None => break,
            }
        }
        if names.is_empty() {
            return Err(Error::not_found("no Transit keys").into());
        }
        Ok(json!({ "keys": names }))
    }

    async fn create(&self, name: &str, request: &Request) -> Result<Value, VaultError> {
        let key = self.key(name)?;
        let kind = key_type_named(request.text("type")?.unwrap_or(AES256_GCM96))?;
        for (field, refused) in [
            ("exportable", "kcm's keys never leave kcm"),
            ("allow_plaintext_backup", "kcm's keys never leave kcm"),
            (
                "convergent_encryption",
                "convergent encryption is not offered",
            ),
        ] {
            if request.flag(field)? == Some(true) {
                return Err(VaultError::invalid(format!("{field}: {refused}")));
            }
        }
        let KeyRef::Alias(alias) = &key else {
            unreachable!("a Transit key is named by its alias")
        };
        let mut tags = BTreeMap::new();
        tags.insert(TYPE_TAG.to_owned(), kind.name.to_owned());
        tags.insert(DELETION_TAG.to_owned(), "false".to_owned());
        let made = self
            .service
            .create_key_with_alias(
                self.caller,
                CreateKeyRequest {
                    description: format!("Vault Transit key {name}"),
                    key_usage: Some(kind.usage.to_owned()),
                    key_spec: Some(kind.spec.to_owned()),
                    origin: None,
                    tags,
                    policy: None,
                    bypass_policy_lockout_safety_check: false,
                },
                Some(alias),
            )
            .await;
        let info = match made {
            Ok(info) => info,
            // Vault: creating a key that exists changes nothing and succeeds.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.service.describe_key(self.caller, &key).await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Self::describe(name, &info))
    }

    /// The spec of the key `name`.
    async fn spec(&self, name: &str) -> Result<KeySpec, VaultError> {
        let info = self
            .service
            .describe_key(self.caller, &self.key(name)?)
            .await?;
        Ok(info.record.spec)
    }

    async fn read(&self, name: &str) -> Result<Value, VaultError> {
        let info = self
            .service
            .describe_key(self.caller, &self.key(name)?)
            .await?;
        Ok(Self::describe(name, &info))
    }

    /// Deleting: refused unless `deletion_allowed` was configured; then the key is
    /// scheduled for deletion (kcm's shortest window, 7 days, cancellable) and the
    /// name is freed.
    async fn delete(&self, name: &str) -> Result<(), VaultError> {
        let key = self.key(name)?;
        let info = self.service.describe_key(self.caller, &key).await?;
        if info.record.tags.get(DELETION_TAG).map(String::as_str) != Some("true") {
            return Err(VaultError::invalid(
                "deletion is not allowed for this key: set deletion_allowed in its config first",
            ));
        }
        let id = KeyRef::Id(info.record.id);
        self.service
            .schedule_key_deletion(self.caller, &id, Some(7))
            .await?;
        let KeyRef::Alias(alias) = &key else {
            unreachable!("a Transit key is named by its alias")
        };
        self.service.delete_alias(self.caller, alias).await?;
        Ok(())
    }

    async fn configure(&self, name: &str, request: &Request) -> Result<Value, VaultError> {
        let key = self.key(name)?;
        for field in [
            "min_decryption_version",
            "min_encryption_version",
            "auto_rotate_period",
        ] {
            if request.number(field)?.is_some_and(|n| n != 0) {
                return Err(VaultError::invalid(format!(
                    "{field} is not served: use kcm's rotation and key states"
                )));
            }
        }
        if request.flag("exportable")? == Some(true) {
            return Err(VaultError::invalid(
                "exportable: kcm's keys never leave kcm",
            ));
        }
        if let Some(allowed) = request.flag("deletion_allowed")? {
            let mut tags = BTreeMap::new();
            tags.insert(DELETION_TAG.to_owned(), allowed.to_string());
            self.service.tag_key(self.caller, &key, tags).await?;
        }
        self.read(name).await
    }

    async fn rotate(&self, name: &str) -> Result<Value, VaultError> {
        let key = self.key(name)?;
        self.service.rotate_key_on_demand(self.caller, &key).await?;
        self.read(name).await
    }

    /// Runs `one` on each item of a batch (each answered on its own, a failure as
    /// its `error`), or on the request as one item.
    async fn each<'a, F, Fut>(
        &'a self,
        name: &'a str,
        request: Request,
        one: F,
    ) -> Result<Option<Value>, VaultError>
    where
        F: Fn(&'a Self, KeyRef, Request) -> Fut,
        Fut: std::future::Future<Output = Result<Value, VaultError>> + 'a,
    {
        let key = self.key(name)?;
        match request.into_items()? {
            Batch::One(item) => one(self, key, item).await.map(Some),
            Batch::Many(items) => {
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    results.push(match one(self, key.clone(), item).await {
                        Ok(value) => value,
                        Err(e) => json!({ "error": e.message_text() }),
                    });
                }
                Ok(Some(json!({ "batch_results": results })))
            }
        }
    }

    async fn encrypt(&self, key: KeyRef, item: Request) -> Result<Value, VaultError> {
        let plaintext = item
            .base64("plaintext")?
            .ok_or_else(|| VaultError::invalid("missing plaintext to encrypt"))?;
        if let Some(version) = item.number("key_version")? {
            let latest = self.service.describe_key(self.caller, &key).await?;
            if version != 0 && version != u64::from(latest.record.primary_version) {
                return Err(VaultError::invalid(
                    "kcm encrypts with a key's latest version only (key_version 0 or the latest)",
                ));
            }
        }
        let (_, blob) = self
            .service
            .encrypt(self.caller, &key, &plaintext, &item.context()?)
            .await?;
        let (ciphertext, version) = vault_ciphertext(&blob)?;
        Ok(json!({ "ciphertext": ciphertext, "key_version": version }))
    }

    async fn decrypt(&self, key: KeyRef, item: Request) -> Result<Value, VaultError> {
        let ciphertext = item
            .text("ciphertext")?
            .ok_or_else(|| VaultError::invalid("missing ciphertext to decrypt"))?;
        let blob = kcm_ciphertext(ciphertext)?;
        let decrypted = self
            .service
            .decrypt(self.caller, Some(&key), &blob, &item.context()?)
            .await?;
        Ok(json!({ "plaintext": STANDARD.encode(decrypted.plaintext.expose_secret()) }))
    }

    async fn rewrap(&self, key: KeyRef, item: Request) -> Result<Value, VaultError> {
        let ciphertext = item
            .text("ciphertext")?
            .ok_or_else(|| VaultError::invalid("missing ciphertext to rewrap"))?;
        let blob = kcm_ciphertext(ciphertext)?;
        let context = item.context()?;
        let rewrapped = self
            .service
            .re_encrypt(
                self.caller,
                ReEncryptRequest {
                    ciphertext: &blob,
                    source_key: Some(&key),
                    source_context: &context,
                    source_algorithm: EncryptionAlgorithm::SymmetricDefault,
                    destination: &key,
                    destination_context: &context,
                    destination_algorithm: EncryptionAlgorithm::SymmetricDefault,
                },
            )
            .await?;
        let (ciphertext, version) = vault_ciphertext(&rewrapped.ciphertext)?;
        Ok(json!({ "ciphertext": ciphertext, "key_version": version }))
    }

    async fn data_key(
        &self,
        name: &str,
        plaintext: bool,
        request: &Request,
    ) -> Result<Value, VaultError> {
        let key = self.key(name)?;
        let bits = request.number("bits")?.unwrap_or(256);
        if !matches!(bits, 128 | 256 | 512) {
            return Err(VaultError::invalid("bits must be 128, 256 or 512"));
        }
        let context = request.context()?;
        let len = (bits / 8) as usize;
        if plaintext {
            let made = self
                .service
                .generate_data_key(self.caller, &key, len, &context)
                .await?;
            let (ciphertext, version) = vault_ciphertext(&made.ciphertext)?;
            Ok(json!({
                "plaintext": STANDARD.encode(made.plaintext.expose_secret()),
                "ciphertext": ciphertext,
                "key_version": version,
            }))
        } else {
            let (_, blob) = self
                .service
                .generate_data_key_without_plaintext(self.caller, &key, len, &context)
                .await?;
            let (ciphertext, version) = vault_ciphertext(&blob)?;
            Ok(json!({ "ciphertext": ciphertext, "key_version": version }))
        }
    }

    async fn random(&self, bytes: Option<&str>, request: &Request) -> Result<Value, VaultError> {
        let count = match bytes {
            Some(b) => b
                .parse::<u64>()
                .map_err(|_| VaultError::invalid("the byte count must be a whole number"))?,
            None => request.number("bytes")?.unwrap_or(32),
        };
        if !(1..=1024).contains(&count) {
            return Err(VaultError::invalid("bytes must be 1 to 1024"));
        }
        let random = self
            .service
            .generate_random(self.caller, count as usize)
            .await?;
        Ok(json!({ "random_bytes": encode(random.expose_secret(), request.text("format")?)? }))
    }
}

/// `format`: `base64` (the default) or `hex`.
fn encode(bytes: &[u8], format: Option<&str>) -> Result<String, VaultError> {
    match format.unwrap_or("base64") {
        "base64" => Ok(STANDARD.encode(bytes)),
        "hex" => Ok(hex::encode(bytes)),
        other => Err(VaultError::invalid(format!(
            "format {other:?} is neither base64 nor hex"
        ))),
    }
}

/// `hash`: SHA-2 of the base64 `input` (no key: nothing of kcm's is used).
fn hash(algorithm: Option<&str>, request: &Request) -> Result<Value, VaultError> {
    use aws_lc_rs::digest;
    let algorithm = match algorithm
        .or(request.text("algorithm")?)
        .unwrap_or("sha2-256")
    {
        "sha2-224" => &digest::SHA224,
        "sha2-256" => &digest::SHA256,
        "sha2-384" => &digest::SHA384,
        "sha2-512" => &digest::SHA512,
        other => {
            return Err(VaultError::invalid(format!(
                "algorithm {other:?} is not one of sha2-224, sha2-256, sha2-384, sha2-512"
            )))
        }
    };
    let input = request
        .base64("input")?
        .ok_or_else(|| VaultError::invalid("missing input to hash"))?;
    let sum = digest::digest(algorithm, &input);
    Ok(json!({ "sum": encode(sum.as_ref(), Some(request.text("format")?.unwrap_or("hex")))? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_ciphertext_carries_kcms_and_its_version() {
        let invalid = [
            "",
            "vault:v1",
            "vault:vx:AAAA",
            "vault:v1:!!",
            "other:v1:AAAA",
        ];
        for text in invalid {
            assert!(kcm_ciphertext(text).is_err(), "{text}");
        }
        assert!(check_name("orders-2026_a").is_ok());
        for bad in ["", "a.b", "a/b", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes_are_sha2() {
        let request = Request::parse(br#"{"input":"YWJj"}"#).unwrap();
        let sum = hash(None, &request).unwrap();
        assert_eq!(
            sum["sum"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hash(Some("md5"), &request).is_err());
        assert!(Request::parse(b"[1]").is_err());
        assert!(Request::parse(b" ").unwrap().get("plaintext").is_none());
    }
}
