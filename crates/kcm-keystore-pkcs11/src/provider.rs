//! The [`KeystoreProvider`] methods of [`Pkcs11Keystore`]: each builds what it
//! needs, then runs one blocking operation on a pooled session.

use async_trait::async_trait;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::SessionState;
use kcm_core::crypto::fill_random;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::SecretBytes;
use zeroize::Zeroize;

use crate::blob::{self, IV_LEN};
use crate::error::{is_authentication_failure, misconfigured, rv, Failure};
use crate::handle::{
    handle_of, is_reference, key_id, reference_handle_of, KeyId, KEY_ID_LEN, MAX_REFERENCED_ID_LEN,
};
use crate::keystore::Pkcs11Keystore;

/// AES-256 key length in bytes (`CKA_VALUE_LEN`).
const AES_256_LEN: u64 = 32;

/// The attributes every root key gets, generated or imported: an AES key kept in the
/// token, sensitive, never extractable, usable only to encrypt and decrypt.
fn root_key_template(label: &str, id: &KeyId) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

#[async_trait]
impl KeystoreProvider for Pkcs11Keystore {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            generate: true,
            import: true,
            reference: true,
        }
    }

    async fn health(&self) -> KeystoreResult<()> {
        self.run("health check", |inner, lease| {
            // Both go to the token: is it there, and is our session still logged in?
            inner.ctx.get_token_info(lease.slot)?;
            if lease.session.get_session_info()?.session_state() != SessionState::RwUser {
                return Err(Failure::Lost("the session is no longer logged in"));
            }
            Ok(())
        })
        .await
    }

    async fn create_root_key(&self, label: &str) -> KeystoreResult<Vec<u8>> {
        let mut id: KeyId = vec![0; KEY_ID_LEN];
        fill_random(&mut id);
        let mut template = root_key_template(label, &id);
        template.push(Attribute::ValueLen(AES_256_LEN.into()));
        let handle = handle_of(&id);
        self.run("key generation", move |inner, lease| {
            let handle = lease
                .session
                .generate_key(&Mechanism::AesKeyGen, &template)?;
            inner.remember(&id, handle);
            Ok(())
        })
        .await?;
        Ok(handle)
    }

    async fn import_root_key(
        &self,
        label: &str,
        material: &SecretBytes,
    ) -> KeystoreResult<Vec<u8>> {
        if material.len() != AES_256_LEN as usize {
            return Err(misconfigured(format!(
                "imported key material must be {AES_256_LEN} bytes, got {}",
                material.len()
            )));
        }
        let mut id: KeyId = vec![0; KEY_ID_LEN];
        fill_random(&mut id);
        let mut template = root_key_template(label, &id);
        template.push(Attribute::Value(material.expose_secret().to_vec()));
        let handle = handle_of(&id);
        self.run("key import", move |inner, lease| {
            let created = lease.session.create_object(&template);
            // The template holds the material: wipe it whatever happened.
            for attribute in &mut template {
                if let Attribute::Value(value) = attribute {
                    value.zeroize();
                }
            }
            inner.remember(&id, created?);
            Ok(())
        })
        .await?;
        Ok(handle)
    }

    async fn reference_root_key(&self, reference: &str) -> KeystoreResult<Vec<u8>> {
        let named = match reference.split_once(':') {
            Some(("label", label)) if !label.is_empty() => {
                Attribute::Label(label.as_bytes().to_vec())
            }
            Some(("id", hex_id)) => Attribute::Id(
                hex::decode(hex_id)
                    .ok()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        KeystoreError::KeyUnusable(format!(
                            "{hex_id:?} is not a CKA_ID in hex (e.g. id:c0ffee01)"
                        ))
                    })?,
            ),
            _ => {
                return Err(KeystoreError::KeyUnusable(format!(
                    "{reference:?} names no key: use label:<CKA_LABEL> or id:<CKA_ID in hex>"
                )))
            }
        };
        let label = self.inner.token_label.clone();
        let id = self
            .run("key lookup", move |_, lease| {
                let s = &lease.session;
                let found = s.find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Token(true),
                    named,
                ])?;
                let unusable = |why: String| Failure::Ks(KeystoreError::KeyUnusable(why));
                let object = match found.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(unusable(format!(
                            "token \"{label}\" has no such secret key"
                        )))
                    }
                    _ => {
                        return Err(unusable(format!(
                            "token \"{label}\" has {} secret keys by that name; refer to one by id",
                            found.len()
                        )))
                    }
                };
                let wanted = [
                    AttributeType::KeyType,
                    AttributeType::ValueLen,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                    AttributeType::Id,
                ];
                let (mut aes256, mut encrypt, mut decrypt, mut id) = (0, false, false, Vec::new());
                for attribute in s.get_attributes(object, &wanted)? {
                    match attribute {
                        Attribute::KeyType(t) if t == KeyType::AES => aes256 += 1,
                        Attribute::ValueLen(len) if u64::from(len) == AES_256_LEN => aes256 += 1,
                        Attribute::Encrypt(v) => encrypt = v,
                        Attribute::Decrypt(v) => decrypt = v,
                        Attribute::Id(v) => id = v,
                        _ => {}
                    }
                }
                if aes256 != 2 {
                    return Err(unusable("the key is not an AES-256 key".into()));
                }
                if !(encrypt && decrypt) {
                    return Err(unusable(
                        "the key does not allow both encrypt and decrypt (CKA_ENCRYPT, CKA_DECRYPT)"
                            .into(),
                    ));
                }
                if id.is_empty() || id.len() > MAX_REFERENCED_ID_LEN {
                    return Err(unusable(format!(
                        "the key needs a CKA_ID of 1 to {MAX_REFERENCED_ID_LEN} bytes, unique \
                         among the token's keys"
                    )));
                }
                let same_id = s.find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Token(true),
                    Attribute::Id(id.clone()),
                ])?;
                if same_id.len() != 1 {
                    return Err(unusable(format!(
                        "{} secret keys share its CKA_ID {}; give it a unique one",
                        same_id.len(),
                        hex::encode(&id)
                    )));
                }
                Ok(id)
            })
            .await?;
        Ok(reference_handle_of(&id))
    }

    async fn check_root_key(&self, handle: &[u8]) -> KeystoreResult<()> {
        let id = key_id(handle)?;
        self.run("key check", move |inner, lease| {
            match inner.find_key(&lease.session, &id)? {
                Some(_) => Ok(()),
                None => Err(KeystoreError::KeyUnusable(format!(
                    "token \"{}\" has no key with CKA_ID {}",
                    inner.token_label,
                    hex::encode(&id)
                ))
                .into()),
            }
        })
        .await
    }

    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> KeystoreResult<Vec<u8>> {
        let id = key_id(handle)?;
        let mut iv = [0u8; IV_LEN];
        fill_random(&mut iv);
        let plaintext = plaintext.clone(); // zeroized when the task drops it
        let aad = aad.to_vec();
        let sealed = self
            .run("wrap", move |inner, lease| {
                inner.with_key(&lease.session, &id, |key| {
                    let mut iv = iv;
                    let mechanism = blob::aes_gcm(&mut iv, &aad)?;
                    lease
                        .session
                        .encrypt(&mechanism, key, plaintext.expose_secret())
                })
            })
            .await?;
        Ok(blob::encode(&iv, &sealed))
    }

    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> KeystoreResult<SecretBytes> {
        let id = key_id(handle)?;
        let (iv, sealed) = blob::decode(wrapped)?;
        let sealed = sealed.to_vec();
        let aad = aad.to_vec();
        self.run("unwrap", move |inner, lease| {
            let result = inner.with_key(&lease.session, &id, |key| {
                let mut iv = iv;
                let mechanism = blob::aes_gcm(&mut iv, &aad)?;
                // Straight into zeroizing storage.
                lease
                    .session
                    .decrypt(&mechanism, key, &sealed)
                    .map(SecretBytes::new)
            });
            match result {
                Err(Failure::Ck(e)) if is_authentication_failure(&e) => {
                    Err(KeystoreError::UnwrapFailed.into())
                }
                other => other,
            }
        })
        .await
    }

    async fn destroy(&self, handle: &[u8]) -> KeystoreResult<()> {
        let id = key_id(handle)?;
        if is_reference(handle) {
            // The customer's own key: kcm only forgets it, it never destroys it.
            return Ok(());
        }
        self.run("destroy", move |inner, lease| {
            // Always look it up afresh (not the hot path). No key: already destroyed,
            // which is success, so that destroy is idempotent.
            if let Some(object) = inner.find_key(&lease.session, &id)? {
                match lease.session.destroy_object(object) {
                    Ok(()) => {}
                    // Destroyed concurrently by someone else: same outcome.
                    Err(e) if matches!(rv(&e), Some(RvError::ObjectHandleInvalid)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            inner.forget(&id);
            Ok(())
        })
        .await
    }
}
