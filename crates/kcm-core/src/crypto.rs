//! Cryptographic building blocks, all from aws-lc-rs (DESIGN.md §4).
//!
//! - [`seal`] / [`open`]: AES-256-GCM with a random 96-bit nonce and associated data;
//!   used to wrap a child key with its parent.
//! - [`WrapBinding`]: the associated data that ties a wrapped blob to its identity, so
//!   a blob moved to another key or version does not unwrap.
//! - [`encrypt_data`] / [`decrypt_data`]: customer data under a service key version,
//!   with a per-request HKDF-derived key, in the self-describing [`CiphertextHeader`]
//!   format.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf;

use crate::model::{KeyId, ObjectId, ObjectKind, RootKeyId, SystemId, TenantId};
use crate::secret::SecretBytes;

/// Length of every symmetric key kcm makes (AES-256).
pub const KEY_LEN: usize = 32;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// Fills `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) {
    // aws-lc-rs only fails here if the OS RNG is broken; continuing would be unsafe.
    aws_lc_rs::rand::fill(buf).expect("operating system random source failed");
}

/// A decryption or authentication failure. Deliberately carries no detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct AuthenticationFailed;

fn gcm_key(key: &[u8]) -> Result<LessSafeKey, AuthenticationFailed> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| AuthenticationFailed)
}

/// AES-256-GCM: returns `nonce || ciphertext || tag`.
pub fn seal(key: &SecretBytes, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let key = gcm_key(key.expose_secret()).expect("AES-256 keys are 32 bytes");
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .expect("AES-GCM seal of a bounded input");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens a blob made by [`seal`] with the same key and `aad`.
pub fn open(
    key: &SecretBytes,
    sealed: &[u8],
    aad: &[u8],
) -> Result<SecretBytes, AuthenticationFailed> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(AuthenticationFailed);
    }
    let key = gcm_key(key.expose_secret())?;
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| AuthenticationFailed)?;
    let mut buf = SecretBytes::copy_from(body).expose_secret().to_vec();
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| AuthenticationFailed)?
        .len();
    buf.truncate(plain_len);
    Ok(SecretBytes::new(buf))
}

/// The identity a wrapped blob is bound to (its associated data): which key it is,
/// at which level, and which key wraps it. Each level names its ids by type, so a
/// tenant id cannot be passed where a system id belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapBinding<'a> {
    /// L2: a system key version, wrapped by its system's root key.
    SystemKey {
        /// The system's tenant.
        tenant: TenantId,
        /// The system.
        system: SystemId,
        /// The system key version.
        version: u32,
        /// The root key that wraps it.
        root: RootKeyId,
    },
    /// L3: a service key version, wrapped by a version of its system's key.
    ServiceKey {
        /// The key's tenant.
        tenant: TenantId,
        /// The service key.
        key: KeyId,
        /// The service key version.
        version: u32,
        /// The system whose key wraps it.
        system: SystemId,
        /// The system key version that wraps it.
        system_version: u32,
    },
    /// A managed object's payload, sealed by a version of its system's key. Its
    /// kind is bound too, so a payload cannot be served as another kind of object.
    ManagedObject {
        /// The object's tenant.
        tenant: TenantId,
        /// The object.
        object: ObjectId,
        /// What it holds.
        kind: ObjectKind,
        /// The system whose key seals it.
        system: SystemId,
        /// The system key version that seals it.
        system_version: u32,
    },
    /// An access key secret of a key made before secrets were derived, sealed by
    /// the service's credential root.
    AccessKeySecret {
        /// The access key's tenant (`None`: the operator's key).
        tenant: Option<TenantId>,
        /// The access key id.
        access_key_id: &'a str,
        /// The credential root.
        root: RootKeyId,
    },
    /// The service's credential key (from which access key secrets are derived),
    /// wrapped by the credential root.
    CredentialKey {
        /// The credential root.
        root: RootKeyId,
    },
    /// The Ed25519 audit signing key (PKCS#8), wrapped by the credential root.
    AuditSigningKey {
        /// The credential root.
        root: RootKeyId,
    },
}

/// A UUID as its 36 hyphenated lower-case characters, without allocating.
fn uuid_text(id: uuid::Uuid, buf: &mut [u8; 36]) -> &[u8] {
    id.hyphenated().encode_lower(buf).as_bytes()
}

/// A binding's fields in the order they are encoded.
struct AadFields<'b> {
    level: &'static [u8],
    tenant: &'b [u8],
    id: &'b [u8],
    version: u32,
    parent: &'b [u8],
    parent_version: u32,
}

impl<'b> AadFields<'b> {
    /// The fields of one of the service's own secrets: no tenant, a fixed name as
    /// its id, a single version, wrapped by (version 1 of) a root key.
    fn service_secret(level: &'static [u8], id: &'static [u8], root: &'b [u8]) -> Self {
        AadFields {
            level,
            tenant: b"",
            id,
            version: 1,
            parent: root,
            parent_version: 1,
        }
    }
}

impl WrapBinding<'_> {
    /// Unambiguous, length-prefixed encoding used as AEAD associated data:
    /// `kcm-wrap-v1`, then the level tag, tenant, id, version, parent id and parent
    /// version (the fields a level does not have are empty, or version 1).
    pub fn to_aad(&self) -> Vec<u8> {
        let (mut tenant_buf, mut id_buf, mut parent_buf) = ([0u8; 36], [0u8; 36], [0u8; 36]);
        let f = match *self {
            WrapBinding::SystemKey {
                tenant,
                system,
                version,
                root,
            } => AadFields {
                level: b"L2",
                tenant: uuid_text(tenant.0, &mut tenant_buf),
                id: uuid_text(system.0, &mut id_buf),
                version,
                parent: uuid_text(root.0, &mut parent_buf),
                parent_version: 1,
            },
            WrapBinding::ServiceKey {
                tenant,
                key,
                version,
                system,
                system_version,
            } => AadFields {
                level: b"L3",
                tenant: uuid_text(tenant.0, &mut tenant_buf),
                id: uuid_text(key.0, &mut id_buf),
                version,
                parent: uuid_text(system.0, &mut parent_buf),
                parent_version: system_version,
            },
            WrapBinding::ManagedObject {
                tenant,
                object,
                kind,
                system,
                system_version,
            } => AadFields {
                level: object_level(kind),
                tenant: uuid_text(tenant.0, &mut tenant_buf),
                id: uuid_text(object.0, &mut id_buf),
                version: 1,
                parent: uuid_text(system.0, &mut parent_buf),
                parent_version: system_version,
            },
            WrapBinding::AccessKeySecret {
                tenant,
                access_key_id,
                root,
            } => AadFields {
                level: b"AK",
                tenant: match tenant {
                    Some(t) => uuid_text(t.0, &mut tenant_buf),
                    None => b"",
                },
                id: access_key_id.as_bytes(),
                version: 1,
                parent: uuid_text(root.0, &mut parent_buf),
                parent_version: 1,
            },
            WrapBinding::CredentialKey { root } => AadFields::service_secret(
                b"CK",
                b"credential-key",
                uuid_text(root.0, &mut parent_buf),
            ),
            WrapBinding::AuditSigningKey { root } => AadFields::service_secret(
                b"AS",
                b"audit-signing-key",
                uuid_text(root.0, &mut parent_buf),
            ),
        };
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"kcm-wrap-v1");
        for field in [f.level, f.tenant, f.id] {
            push_len_prefixed(&mut out, field);
        }
        out.extend_from_slice(&f.version.to_be_bytes());
        push_len_prefixed(&mut out, f.parent);
        out.extend_from_slice(&f.parent_version.to_be_bytes());
        out
    }
}

/// The level tag of a managed object's payload: `MO-` and its kind.
fn object_level(kind: ObjectKind) -> &'static [u8] {
    match kind {
        ObjectKind::SymmetricKey => b"MO-symmetric",
        ObjectKind::PrivateKey => b"MO-private",
        ObjectKind::PublicKey => b"MO-public",
        ObjectKind::Certificate => b"MO-certificate",
        ObjectKind::Passphrase => b"MO-passphrase",
        ObjectKind::OpaqueData => b"MO-opaque",
        ObjectKind::Container => b"MO-container",
        ObjectKind::VersionedSecret => b"MO-kv",
    }
}

fn push_len_prefixed(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// Canonical bytes of an encryption context: pairs sorted by key, each length-prefixed.
/// An empty context encodes to nothing, so it equals "no context", as in AWS.
pub fn canonical_context(context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in context {
        push_len_prefixed(&mut out, k.as_bytes());
        push_len_prefixed(&mut out, v.as_bytes());
    }
    out
}

/// Current ciphertext format version.
pub const CIPHERTEXT_FORMAT_V1: u8 = 1;
const SALT_LEN: usize = 32;
/// Bytes of the header in front of every ciphertext.
pub const HEADER_LEN: usize = 1 + 16 + 4 + SALT_LEN + NONCE_LEN;
/// Bytes a ciphertext adds to its plaintext.
pub const CIPHERTEXT_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The self-describing header of a kcm ciphertext blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CiphertextHeader {
    /// The service key that encrypted it.
    pub key_id: KeyId,
    /// The key version used.
    pub key_version: u32,
}

impl CiphertextHeader {
    /// Reads the header of `blob` without decrypting; `None` if it is not a kcm ciphertext.
    pub fn parse(blob: &[u8]) -> Option<CiphertextHeader> {
        if blob.len() < CIPHERTEXT_OVERHEAD || blob[0] != CIPHERTEXT_FORMAT_V1 {
            return None;
        }
        let key_id = KeyId(uuid::Uuid::from_slice(&blob[1..17]).ok()?);
        let key_version = u32::from_be_bytes(blob[17..21].try_into().ok()?);
        Some(CiphertextHeader {
            key_id,
            key_version,
        })
    }
}

/// An HKDF output length.
struct OutputLen(usize);
impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA-256 (RFC 5869): fills `out` with the key derived from `ikm` with `salt`
/// and `info`. Fails only when `out` is longer than HKDF allows (255 × 32 bytes).
pub(crate) fn hkdf_sha256(
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), aws_lc_rs::error::Unspecified> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    prk.expand(&[info], OutputLen(out.len()))
        .and_then(|okm| okm.fill(out))
}

fn derive_data_key(version_key: &SecretBytes, salt: &[u8]) -> LessSafeKey {
    let mut derived = zeroize::Zeroizing::new([0u8; KEY_LEN]);
    hkdf_sha256(
        version_key.expose_secret(),
        salt,
        b"kcm data encryption v1",
        derived.as_mut(),
    )
    .expect("HKDF output of 32 bytes");
    gcm_key(derived.as_ref()).expect("32-byte key")
}

fn data_aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context);
    aad
}

/// Encrypts `plaintext` under one service key version, binding the canonical `context`.
pub fn encrypt_data(
    version_key: &SecretBytes,
    header: CiphertextHeader,
    plaintext: &[u8],
    context: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(CIPHERTEXT_OVERHEAD + plaintext.len());
    out.push(CIPHERTEXT_FORMAT_V1);
    out.extend_from_slice(header.key_id.0.as_bytes());
    out.extend_from_slice(&header.key_version.to_be_bytes());
    let mut salt_nonce = [0u8; SALT_LEN + NONCE_LEN];
    fill_random(&mut salt_nonce);
    out.extend_from_slice(&salt_nonce);
    let key = derive_data_key(version_key, &salt_nonce[..SALT_LEN]);
    let nonce = Nonce::try_assume_unique_for_key(&salt_nonce[SALT_LEN..]).expect("12 bytes");
    let aad = data_aad(&out, context);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(&aad), &mut out[HEADER_LEN..])
        .expect("AES-GCM seal of a bounded input");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Decrypts a blob made by [`encrypt_data`] with the version key its header names.
pub fn decrypt_data(
    version_key: &SecretBytes,
    blob: &[u8],
    context: &[u8],
) -> Result<SecretBytes, AuthenticationFailed> {
    CiphertextHeader::parse(blob).ok_or(AuthenticationFailed)?;
    let (header, body) = blob.split_at(HEADER_LEN);
    let key = derive_data_key(version_key, &header[21..21 + SALT_LEN]);
    let nonce = Nonce::try_assume_unique_for_key(&header[21 + SALT_LEN..])
        .map_err(|_| AuthenticationFailed)?;
    let aad = data_aad(header, context);
    let mut buf = body.to_vec();
    let plain_len = key
        .open_in_place(nonce, Aad::from(&aad), &mut buf)
        .map_err(|_| AuthenticationFailed)?
        .len();
    buf.truncate(plain_len);
    Ok(SecretBytes::new(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(key: KeyId, version: u32) -> WrapBinding<'static> {
        WrapBinding::ServiceKey {
            tenant: TenantId(uuid::Uuid::from_u128(1)),
            key,
            version,
            system: SystemId(uuid::Uuid::from_u128(2)),
            system_version: 1,
        }
    }

    /// The associated data of every level, byte for byte as kcm has always written
    /// it: a change here would make every stored wrapped key unreadable.
    #[test]
    fn binding_encoding_is_stable() {
        let t = TenantId(uuid::Uuid::from_u128(0x11));
        let root = RootKeyId(uuid::Uuid::from_u128(0x22));
        let system = SystemId(uuid::Uuid::from_u128(0x33));
        let key = KeyId(uuid::Uuid::from_u128(0x44));
        let expected = |level: &str, tenant: &str, id: &str, v: u32, parent: &str, pv: u32| {
            let mut out = b"kcm-wrap-v1".to_vec();
            for f in [level, tenant, id] {
                out.extend_from_slice(&(f.len() as u32).to_be_bytes());
                out.extend_from_slice(f.as_bytes());
            }
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&(parent.len() as u32).to_be_bytes());
            out.extend_from_slice(parent.as_bytes());
            out.extend_from_slice(&pv.to_be_bytes());
            out
        };
        let (ts, rs, ss, ks) = (
            t.to_string(),
            root.to_string(),
            system.to_string(),
            key.to_string(),
        );
        let cases = [
            (
                WrapBinding::SystemKey {
                    tenant: t,
                    system,
                    version: 3,
                    root,
                },
                expected("L2", &ts, &ss, 3, &rs, 1),
            ),
            (
                WrapBinding::ServiceKey {
                    tenant: t,
                    key,
                    version: 5,
                    system,
                    system_version: 2,
                },
                expected("L3", &ts, &ks, 5, &ss, 2),
            ),
            (
                WrapBinding::ManagedObject {
                    tenant: t,
                    object: ObjectId(uuid::Uuid::from_u128(0x55)),
                    kind: ObjectKind::Passphrase,
                    system,
                    system_version: 4,
                },
                expected(
                    "MO-passphrase",
                    &ts,
                    "00000000-0000-0000-0000-000000000055",
                    1,
                    &ss,
                    4,
                ),
            ),
            (
                WrapBinding::AccessKeySecret {
                    tenant: Some(t),
                    access_key_id: "KCMABC",
                    root,
                },
                expected("AK", &ts, "KCMABC", 1, &rs, 1),
            ),
            (
                WrapBinding::AccessKeySecret {
                    tenant: None,
                    access_key_id: "KCMOP",
                    root,
                },
                expected("AK", "", "KCMOP", 1, &rs, 1),
            ),
            (
                WrapBinding::CredentialKey { root },
                expected("CK", "", "credential-key", 1, &rs, 1),
            ),
            (
                WrapBinding::AuditSigningKey { root },
                expected("AS", "", "audit-signing-key", 1, &rs, 1),
            ),
        ];
        for (binding, bytes) in cases {
            assert_eq!(binding.to_aad(), bytes, "{binding:?}");
        }
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let parent = SecretBytes::random(KEY_LEN);
        let child = SecretBytes::random(KEY_LEN);
        let (k1, k2) = (KeyId::new_random(), KeyId::new_random());
        let aad = binding(k1, 1).to_aad();
        let wrapped = seal(&parent, child.expose_secret(), &aad);
        assert_eq!(open(&parent, &wrapped, &aad).unwrap(), child);
        // Moved to another key id, another version, or another parent: refused.
        assert!(open(&parent, &wrapped, &binding(k2, 1).to_aad()).is_err());
        assert!(open(&parent, &wrapped, &binding(k1, 2).to_aad()).is_err());
        let other = SecretBytes::random(KEY_LEN);
        assert!(open(&other, &wrapped, &aad).is_err());
        let mut tampered = wrapped.clone();
        tampered[20] ^= 1;
        assert!(open(&parent, &tampered, &aad).is_err());
        assert!(open(&parent, &wrapped[..10], &aad).is_err());
    }

    #[test]
    fn data_round_trip_with_context() {
        let key = SecretBytes::random(KEY_LEN);
        let header = CiphertextHeader {
            key_id: KeyId::new_random(),
            key_version: 7,
        };
        let mut ctx = BTreeMap::new();
        ctx.insert("purpose".to_string(), "test".to_string());
        let ctx = canonical_context(&ctx);
        let blob = encrypt_data(&key, header, b"hello", &ctx);
        assert_eq!(blob.len(), 5 + CIPHERTEXT_OVERHEAD);
        assert_eq!(CiphertextHeader::parse(&blob), Some(header));
        assert_eq!(
            decrypt_data(&key, &blob, &ctx).unwrap().expose_secret(),
            b"hello"
        );
        assert!(decrypt_data(&key, &blob, &[]).is_err());
        for i in [0usize, 5, 20, 30, 60, blob.len() - 1] {
            let mut t = blob.clone();
            t[i] ^= 0x80;
            assert!(decrypt_data(&key, &t, &ctx).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        let a: BTreeMap<_, _> = [("ab".to_string(), "c".to_string())].into();
        let b: BTreeMap<_, _> = [("a".to_string(), "bc".to_string())].into();
        assert_ne!(canonical_context(&a), canonical_context(&b));
        assert!(canonical_context(&BTreeMap::new()).is_empty());
    }
}
