//! Managed objects: values a client stores and reads back (Barbican secrets and
//! containers, KMIP objects), unlike service keys, whose material never leaves kcm.
//!
//! An object belongs to a system and its payload is sealed under that system's key
//! (AES-256-GCM, bound to tenant, object, kind and system key version), so the store
//! never holds it in plaintext, and reading it back unwraps through the chain as
//! Decrypt does: a disabled, suspended-for-writing or compromised root key, an
//! unlinked system and the revocation bound apply unchanged. Every call is
//! authorised here, with the operations of the one table; a door only translates.

use std::collections::BTreeMap;

use super::{now_ms, Service};
use crate::authz::{authorize, authorize_op, Caller, Op, Principal, Target};
use crate::crypto::{self, WrapBinding};
use crate::error::{Error, ErrorKind, Result};
use crate::keyspec::KeySpec;
use crate::lifecycle::{chain_allows, KeyState, KeyUse, Lifecycle, Transition};
use crate::model::*;
use crate::secret::SecretBytes;
use crate::store::Write;

/// The largest payload an object holds: Barbican's default
/// `max_allowed_secret_in_bytes`.
pub const MAX_OBJECT_PAYLOAD: usize = 10_000;
/// Most objects one list page holds.
pub const MAX_OBJECT_PAGE: usize = 100;
/// Most metadata items, links, consumers or ACL users on one object.
const MAX_ITEMS: usize = 64;
/// Longest name, metadata key or value, or other attribute text.
const MAX_TEXT: usize = 255;
/// Most objects one system holds (lists read them all, so this bounds a list).
pub const MAX_OBJECTS_PER_SYSTEM: u64 = 100_000;

/// A new object, as a door received it.
#[derive(Debug)]
pub struct NewObject {
    /// What it holds.
    pub kind: ObjectKind,
    /// Its description (`creator` and `acl` are set by the core).
    pub attributes: ObjectAttributes,
    /// Its payload, if it comes with one (never for a container).
    pub payload: Option<SecretBytes>,
}

/// Material the core generates for a new object (a Barbican order).
#[derive(Debug)]
pub enum GenerateObject {
    /// Random bytes as a symmetric key: 128, 192, 256 or 512 bits.
    Symmetric {
        /// Length in bits.
        bits: u32,
        /// Its description.
        attributes: ObjectAttributes,
    },
    /// An RSA key pair (2048, 3072 or 4096 bits): a private key (PKCS#8 PEM), a
    /// public key (SubjectPublicKeyInfo PEM) and a container of subtype `rsa`
    /// linking them as `private_key` and `public_key`.
    RsaKeyPair {
        /// Modulus length in bits.
        bits: u32,
        /// The description of all three (the container's name is this name).
        attributes: ObjectAttributes,
    },
    /// An EC key pair on P-256, P-384 or P-521 (`bits` 256, 384 or 521), kept as an
    /// RSA key pair is, in a container of subtype `ec`.
    EcKeyPair {
        /// The curve's size in bits.
        bits: u32,
        /// The description of all three (the container's name is this name).
        attributes: ObjectAttributes,
    },
}

/// What a list of objects is narrowed to.
#[derive(Clone, Debug, Default)]
pub struct ObjectFilter {
    /// Only this kind.
    pub kind: Option<ObjectKind>,
    /// Only containers (true) or only objects with payloads (false).
    pub containers: bool,
    /// Only objects of this name.
    pub name: Option<String>,
    /// Only this algorithm (case-insensitive).
    pub algorithm: Option<String>,
    /// Only this length.
    pub bit_length: Option<u32>,
    /// Only this mode (case-insensitive).
    pub mode: Option<String>,
    /// Objects to skip.
    pub offset: usize,
    /// Most objects to return (1–[`MAX_OBJECT_PAGE`]).
    pub limit: usize,
}

/// One page of a list.
#[derive(Debug)]
pub struct ObjectPage {
    /// The objects, oldest first.
    pub objects: Vec<ObjectInfo>,
    /// How many match the filter in all.
    pub total: usize,
}

/// A change to an object's description.
#[derive(Clone, Debug)]
pub enum ObjectChange {
    /// Replaces all metadata.
    ReplaceMetadata(BTreeMap<String, String>),
    /// Sets one metadata item.
    PutMetadataItem {
        /// Its key.
        key: String,
        /// Its value.
        value: String,
    },
    /// Removes one metadata item (NotFound if absent).
    DeleteMetadataItem(String),
    /// Replaces the read ACL ([`Op::SetObjectAcl`]).
    SetAcl(ObjectAcl),
    /// Registers a consumer (again: no change).
    AddConsumer(ObjectConsumer),
    /// Removes a consumer (NotFound if absent).
    RemoveConsumer(ObjectConsumer),
    /// Gives the object a new name (empty: none).
    Rename(String),
}

impl ObjectChange {
    fn op(&self) -> Op {
        match self {
            ObjectChange::SetAcl(_) => Op::SetObjectAcl,
            _ => Op::UpdateObject,
        }
    }
}

/// An object as callers see it: never its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Identifier.
    pub id: ObjectId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The system whose key seals it.
    pub system_id: SystemId,
    /// What it holds.
    pub kind: ObjectKind,
    /// Pre-active until its payload arrives, then active.
    pub state: KeyState,
    /// Whether it holds a payload.
    pub has_payload: bool,
    /// Its description.
    pub attributes: ObjectAttributes,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

impl From<&ManagedObjectRecord> for ObjectInfo {
    fn from(r: &ManagedObjectRecord) -> Self {
        ObjectInfo {
            id: r.id,
            tenant_id: r.tenant_id,
            system_id: r.system_id,
            kind: r.kind,
            state: r.lifecycle.state(),
            has_payload: r.payload.is_some(),
            attributes: r.attributes.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Whether `op` only reads an object, which its read ACL can open to principals
/// outside its system and close to readers inside it.
fn reads(op: Op) -> bool {
    matches!(op, Op::GetObject | Op::GetObjectPayload | Op::UseObject)
}

/// Whether `principal` may read `record` as far as its read ACL goes: everyone in
/// its system while project access is on; otherwise its creator, the principals
/// listed, and a tenant-admin of its system (as Barbican lets the project admin).
fn acl_admits(record: &ManagedObjectRecord, principal: &Principal) -> bool {
    let a = &record.attributes;
    let me = principal.access_key_id.as_str();
    a.acl.project_access
        || a.creator == me
        || a.acl.users.iter().any(|u| u == me)
        || (principal.role == Role::TenantAdmin
            && principal.system_scope.is_none_or(|s| s == record.system_id))
}

fn check_text(what: &str, text: &str) -> Result<()> {
    if text.len() > MAX_TEXT || text.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} must be at most {MAX_TEXT} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_count(what: &str, n: usize) -> Result<()> {
    if n > MAX_ITEMS {
        return Err(Error::invalid(format!(
            "at most {MAX_ITEMS} {what} per object"
        )));
    }
    Ok(())
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<()> {
    check_count("metadata items", metadata.len())?;
    for (k, v) in metadata {
        if k.is_empty() {
            return Err(Error::invalid("a metadata key must not be empty"));
        }
        check_text("a metadata key", k)?;
        check_text("a metadata value", v)?;
    }
    Ok(())
}

fn check_acl(acl: &ObjectAcl) -> Result<()> {
    check_count("ACL users", acl.users.len())?;
    acl.users
        .iter()
        .try_for_each(|u| check_text("an ACL user", u))
}

fn check_consumer(c: &ObjectConsumer) -> Result<()> {
    for (what, text) in [
        ("a consumer's service", &c.service),
        ("a consumer's resource type", &c.resource_type),
        ("a consumer's resource id", &c.resource_id),
    ] {
        if text.is_empty() {
            return Err(Error::invalid(format!("{what} must not be empty")));
        }
        check_text(what, text)?;
    }
    Ok(())
}

/// Checks what a caller may set on a new object.
fn check_attributes(a: &ObjectAttributes, now: UnixMillis) -> Result<()> {
    check_text("a name", &a.name)?;
    for (what, text) in [
        ("an algorithm", &a.algorithm),
        ("a mode", &a.mode),
        ("a content type", &a.content_type),
        ("a subtype", &a.subtype),
    ] {
        if let Some(text) = text {
            check_text(what, text)?;
        }
    }
    if a.bit_length.is_some_and(|b| b == 0 || b > 65_536) {
        return Err(Error::invalid("a bit length must be between 1 and 65536"));
    }
    if a.expiration.is_some_and(|e| e <= now) {
        return Err(Error::invalid("the expiration must be in the future"));
    }
    check_metadata(&a.metadata)?;
    check_count("links", a.links.len())?;
    a.links
        .iter()
        .try_for_each(|l| check_text("a link name", &l.name))?;
    check_count("consumers", a.consumers.len())?;
    a.consumers.iter().try_for_each(check_consumer)
}

fn check_payload(payload: &SecretBytes) -> Result<()> {
    let len = payload.expose_secret().len();
    if len == 0 {
        return Err(Error::invalid("a payload must not be empty"));
    }
    if len > MAX_OBJECT_PAYLOAD {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("a payload holds at most {MAX_OBJECT_PAYLOAD} bytes, not {len}"),
        ));
    }
    Ok(())
}

impl Service {
    /// Stores a new object in `system` (the caller's, or one its scope allows). An
    /// object with a payload is active at once; one without waits for
    /// [`Service::put_object_payload`]; a container is active with no payload, and
    /// every object it links must be readable by the caller.
    pub async fn create_object(
        &self,
        caller: &Caller,
        system: SystemId,
        new: NewObject,
    ) -> Result<ObjectInfo> {
        let system = self.object_system(caller, Op::CreateObject, system).await?;
        let now = now_ms();
        check_attributes(&new.attributes, now)?;
        if new.kind == ObjectKind::VersionedSecret {
            return Err(Error::invalid(
                "a versioned secret is written through the key-value store, not created as an object",
            ));
        }
        if new.kind == ObjectKind::Container {
            if new.payload.is_some() {
                return Err(Error::invalid("a container holds links, not a payload"));
            }
            for link in &new.attributes.links {
                self.readable_object(caller, link.object).await?;
            }
        } else if !new.attributes.links.is_empty() {
            return Err(Error::invalid("only a container links other objects"));
        }
        if let Some(payload) = &new.payload {
            check_payload(payload)?;
        }
        let mut record = self.new_record(caller, &system, new.kind, new.attributes, now);
        if let Some(payload) = &new.payload {
            self.seal_payload(&system, &mut record, payload).await?;
        } else if new.kind.has_payload() {
            record.lifecycle = Lifecycle::pending_material();
        }
        self.insert_objects(&system, vec![record.clone()]).await?;
        Ok(ObjectInfo::from(&record))
    }

    /// Generates material and stores it as new objects in `system`, in one commit:
    /// one symmetric key, or an RSA or EC key pair and its container (returned
    /// container first, then the private and the public key).
    pub async fn generate_object(
        &self,
        caller: &Caller,
        system: SystemId,
        what: GenerateObject,
    ) -> Result<Vec<ObjectInfo>> {
        let system = self.object_system(caller, Op::CreateObject, system).await?;
        let now = now_ms();
        let records = match what {
            GenerateObject::Symmetric {
                bits,
                mut attributes,
            } => {
                if !matches!(bits, 128 | 192 | 256 | 512) {
                    return Err(Error::invalid(format!(
                        "a symmetric key is 128, 192, 256 or 512 bits long, not {bits}"
                    )));
                }
                attributes.bit_length = Some(bits);
                attributes
                    .content_type
                    .get_or_insert_with(|| "application/octet-stream".into());
                check_attributes(&attributes, now)?;
                let material = SecretBytes::random(bits as usize / 8);
                let mut record =
                    self.new_record(caller, &system, ObjectKind::SymmetricKey, attributes, now);
                self.seal_payload(&system, &mut record, &material).await?;
                vec![record]
            }
            GenerateObject::RsaKeyPair { bits, attributes } => {
                let spec = match bits {
                    2048 => KeySpec::Rsa2048,
                    3072 => KeySpec::Rsa3072,
                    4096 => KeySpec::Rsa4096,
                    _ => {
                        return Err(Error::invalid(format!(
                            "an RSA key pair is 2048, 3072 or 4096 bits long, not {bits}"
                        )))
                    }
                };
                self.key_pair_records(caller, &system, (spec, "rsa", bits), attributes, now)
                    .await?
            }
            GenerateObject::EcKeyPair { bits, attributes } => {
                let spec = match bits {
                    256 => KeySpec::EccNistP256,
                    384 => KeySpec::EccNistP384,
                    521 => KeySpec::EccNistP521,
                    _ => {
                        return Err(Error::invalid(format!(
                            "an EC key pair is on P-256, P-384 or P-521 (256, 384 or 521 bits), not {bits} bits"
                        )))
                    }
                };
                self.key_pair_records(caller, &system, (spec, "ec", bits), attributes, now)
                    .await?
            }
        };
        self.insert_objects(&system, records.clone()).await?;
        Ok(records.iter().map(ObjectInfo::from).collect())
    }

    /// A new key pair of `spec` as records: its container (subtype `algorithm`),
    /// the private key (PKCS#8 PEM) and the public key (SubjectPublicKeyInfo PEM).
    async fn key_pair_records(
        &self,
        caller: &Caller,
        system: &SystemRecord,
        (spec, algorithm, bits): (KeySpec, &str, u32),
        attributes: ObjectAttributes,
        now: UnixMillis,
    ) -> Result<Vec<ManagedObjectRecord>> {
        check_attributes(&attributes, now)?;
        let (private, public) =
            crate::key_material::generate_data_key_pair_off_thread(spec).await?;
        let half = |kind| {
            let mut a = attributes.clone();
            a.algorithm = Some(algorithm.into());
            a.bit_length = Some(bits);
            a.content_type = Some("application/octet-stream".into());
            self.new_record(caller, system, kind, a, now)
        };
        let mut private_record = half(ObjectKind::PrivateKey);
        let mut public_record = half(ObjectKind::PublicKey);
        let private_pem = crate::object_crypto::pem("PRIVATE KEY", private.expose_secret());
        self.seal_payload(system, &mut private_record, &private_pem)
            .await?;
        let public_pem = crate::object_crypto::pem("PUBLIC KEY", &public);
        self.seal_payload(system, &mut public_record, &public_pem)
            .await?;
        let mut container = attributes;
        container.subtype = Some(algorithm.into());
        container.links = vec![
            ObjectLink {
                name: "private_key".into(),
                object: private_record.id,
            },
            ObjectLink {
                name: "public_key".into(),
                object: public_record.id,
            },
        ];
        let container = self.new_record(caller, system, ObjectKind::Container, container, now);
        Ok(vec![container, private_record, public_record])
    }

    /// An object's description.
    pub async fn get_object(&self, caller: &Caller, id: ObjectId) -> Result<ObjectInfo> {
        let record = self.authorized_object(caller, Op::GetObject, id).await?;
        Ok(ObjectInfo::from(&record))
    }

    /// An object's payload, unsealed through its chain: refused while its root
    /// key, system key or the object itself forbids decrypting (the kill switch,
    /// within the revocation bound), and once it has expired.
    pub async fn object_payload(
        &self,
        caller: &Caller,
        id: ObjectId,
    ) -> Result<(ObjectInfo, SecretBytes)> {
        let (record, payload) = self
            .open_object(caller, Op::GetObjectPayload, id, KeyUse::Decrypt)
            .await?;
        Ok((ObjectInfo::from(&record), payload))
    }

    /// Computes with an object's material inside kcm (KMIP's Encrypt, Decrypt,
    /// Sign, Signature Verify, MAC and MAC Verify): a symmetric key encrypts,
    /// decrypts and MACs, a private key signs, a public or private key verifies.
    /// The object's state and its chain's must allow the use (protecting new data
    /// needs an active object; processing what it protected, also a deactivated
    /// or compromised one), so the kill switch cuts it off as it cuts off Decrypt.
    pub async fn compute_with_object(
        &self,
        caller: &Caller,
        id: ObjectId,
        computation: crate::object_crypto::Computation,
    ) -> Result<crate::object_crypto::Computed> {
        use crate::object_crypto::Material;
        let (record, material) = self
            .open_object(caller, Op::UseObject, id, computation.key_use())
            .await?;
        let kind = match record.kind {
            ObjectKind::SymmetricKey => Material::Symmetric,
            ObjectKind::PrivateKey => Material::Private,
            ObjectKind::PublicKey => Material::Public,
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidKeyUsage,
                    format!(
                        "object {id} is a {}, which holds no key to compute with",
                        other.as_str()
                    ),
                ))
            }
        };
        let material = material.expose_secret().to_vec();
        let material = zeroize::Zeroizing::new(material);
        tokio::task::spawn_blocking(move || {
            crate::object_crypto::compute(kind, &material, computation)
        })
        .await
        .map_err(|_| Error::internal("a computation with an object did not finish"))?
    }

    /// Re-keys a symmetric key (KMIP's Re-key): a new key of the same length and
    /// description in the same system, which takes over the old key's name (the
    /// old one loses it, so a lookup by name finds the new one), in one commit.
    /// The old key stays, under its id, to process what it protected.
    pub async fn rekey_object(&self, caller: &Caller, id: ObjectId) -> Result<ObjectInfo> {
        let mut changes = self.lock_changes().await?;
        let mut old = self.authorized_object(caller, Op::UpdateObject, id).await?;
        if old.kind != ObjectKind::SymmetricKey {
            return Err(Error::new(
                ErrorKind::InvalidKeyUsage,
                format!(
                    "object {id} is a {}: only a symmetric key is re-keyed",
                    old.kind.as_str()
                ),
            ));
        }
        let system = self
            .object_system(caller, Op::CreateObject, old.system_id)
            .await?;
        let bits = old.attributes.bit_length.unwrap_or(256);
        if !matches!(bits, 128 | 192 | 256 | 512) {
            return Err(Error::invalid(format!(
                "object {id} is {bits} bits long, which is no length kcm generates"
            )));
        }
        let now = now_ms();
        let mut attributes = old.attributes.clone();
        attributes.consumers.clear();
        let mut new = self.new_record(caller, &system, ObjectKind::SymmetricKey, attributes, now);
        let material = SecretBytes::random(bits as usize / 8);
        self.seal_payload(&system, &mut new, &material).await?;
        self.check_capacity(&system, 1).await?;
        old.attributes.name.clear();
        old.updated_at = now;
        changes
            .commit(vec![
                Write::PutManagedObject(old),
                Write::PutManagedObject(new.clone()),
            ])
            .await?;
        Ok(ObjectInfo::from(&new))
    }

    /// An object's record and payload, unsealed through its chain once `op` is
    /// authorised and the object's state and its chain's allow `use_`; refused
    /// once it has expired.
    async fn open_object(
        &self,
        caller: &Caller,
        op: Op,
        id: ObjectId,
        use_: KeyUse,
    ) -> Result<(ManagedObjectRecord, SecretBytes)> {
        let record = self.authorized_object(caller, op, id).await?;
        let payload = self.unseal_object(&record, use_).await?;
        Ok((record, payload))
    }

    /// An object's payload, unsealed through its chain once the object's state
    /// and its chain's allow `use_`; refused once it has expired.
    pub(super) async fn unseal_object(
        &self,
        record: &ManagedObjectRecord,
        use_: KeyUse,
    ) -> Result<SecretBytes> {
        let id = record.id;
        if record.attributes.expiration.is_some_and(|e| e <= now_ms()) {
            return Err(Error::not_found(format!("object {id} has expired")));
        }
        let Some(sealed) = &record.payload else {
            return Err(Error::not_found(format!("object {id} has no payload")));
        };
        let system = self.system_record(record.system_id).await?;
        // The states that decide are those of the system's active key and its
        // root (an unlinked system refuses here), as for a service key.
        let active = self
            .load_system_key(&system, system.active_key_version)
            .await?;
        let own = record.lifecycle.state();
        if !chain_allows(own, &[active.state, active.root_state], use_) {
            let needed = use_.required_of_ancestors();
            let (what, state) = if !own.allows(use_) {
                (format!("object {id}"), own)
            } else if !active.state.allows(needed) {
                (format!("the system key of {}", system.name), active.state)
            } else {
                (format!("root key {}", active.root_id), active.root_state)
            };
            let kind = if state == KeyState::Disabled {
                ErrorKind::KeyDisabled
            } else {
                ErrorKind::InvalidState
            };
            return Err(Error::new(
                kind,
                format!("object {id} cannot be used: {what} is {state}"),
            ));
        }
        let sealer = if sealed.system_key_version == system.active_key_version {
            active
        } else {
            self.load_system_key(&system, sealed.system_key_version)
                .await?
        };
        let aad = object_aad(record, sealed.system_key_version);
        crypto::open(sealer.material()?, &sealed.sealed, &aad).map_err(|_| {
            Error::internal(format!(
                "the payload of object {id} does not open under its system key"
            ))
        })
    }

    /// Gives an object that waits for its payload one; refused once it has one.
    pub async fn put_object_payload(
        &self,
        caller: &Caller,
        id: ObjectId,
        payload: SecretBytes,
        content_type: Option<String>,
    ) -> Result<ObjectInfo> {
        check_payload(&payload)?;
        if let Some(t) = &content_type {
            check_text("a content type", t)?;
        }
        let mut changes = self.lock_changes().await?;
        let mut record = self
            .authorized_object(caller, Op::PutObjectPayload, id)
            .await?;
        if record.payload.is_some() || !record.kind.has_payload() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("object {id} already has its payload, which cannot be replaced"),
            ));
        }
        let system = self.system_record(record.system_id).await?;
        self.seal_payload(&system, &mut record, &payload).await?;
        record
            .lifecycle
            .apply(Transition::Activate)
            .map_err(|e| Error::new(ErrorKind::InvalidState, e.to_string()))?;
        if content_type.is_some() {
            record.attributes.content_type = content_type;
        }
        record.updated_at = now_ms();
        changes
            .commit(vec![Write::PutManagedObject(record.clone())])
            .await?;
        Ok(ObjectInfo::from(&record))
    }

    /// Objects of `system` that match `filter` and that the caller may read, oldest
    /// first, one page.
    pub async fn list_objects(
        &self,
        caller: &Caller,
        system: SystemId,
        filter: &ObjectFilter,
    ) -> Result<ObjectPage> {
        if filter.limit == 0 || filter.limit > MAX_OBJECT_PAGE {
            return Err(Error::invalid(format!(
                "a page holds 1 to {MAX_OBJECT_PAGE} objects"
            )));
        }
        let system = self.object_system(caller, Op::ListObjects, system).await?;
        let same = |want: &Option<String>, have: &Option<String>| {
            want.as_ref()
                .is_none_or(|w| have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w)))
        };
        let matching: Vec<ManagedObjectRecord> = self
            .store
            .managed_objects(system.id)
            .await?
            .into_iter()
            .filter(|r| {
                let a = &r.attributes;
                r.kind != ObjectKind::VersionedSecret
                    && (r.kind == ObjectKind::Container) == filter.containers
                    && filter.kind.is_none_or(|k| k == r.kind)
                    && filter.name.as_ref().is_none_or(|n| *n == a.name)
                    && same(&filter.algorithm, &a.algorithm)
                    && same(&filter.mode, &a.mode)
                    && filter.bit_length.is_none_or(|b| a.bit_length == Some(b))
                    && acl_admits(r, &caller.principal)
            })
            .collect();
        Ok(ObjectPage {
            total: matching.len(),
            objects: matching
                .iter()
                .skip(filter.offset)
                .take(filter.limit)
                .map(ObjectInfo::from)
                .collect(),
        })
    }

    /// Changes an object's metadata, read ACL or consumers.
    pub async fn update_object(
        &self,
        caller: &Caller,
        id: ObjectId,
        change: ObjectChange,
    ) -> Result<ObjectInfo> {
        let mut changes = self.lock_changes().await?;
        let mut record = self.authorized_object(caller, change.op(), id).await?;
        let a = &mut record.attributes;
        match change {
            ObjectChange::ReplaceMetadata(metadata) => {
                check_metadata(&metadata)?;
                a.metadata = metadata;
            }
            ObjectChange::PutMetadataItem { key, value } => {
                a.metadata.insert(key, value);
                check_metadata(&a.metadata)?;
            }
            ObjectChange::DeleteMetadataItem(key) => {
                if a.metadata.remove(&key).is_none() {
                    return Err(Error::not_found(format!(
                        "object {id} has no metadata item {key:?}"
                    )));
                }
            }
            ObjectChange::SetAcl(acl) => {
                check_acl(&acl)?;
                a.acl = acl;
            }
            ObjectChange::AddConsumer(consumer) => {
                check_consumer(&consumer)?;
                if !a.consumers.contains(&consumer) {
                    a.consumers.push(consumer);
                    check_count("consumers", a.consumers.len())?;
                }
            }
            ObjectChange::Rename(name) => {
                check_text("a name", &name)?;
                a.name = name;
            }
            ObjectChange::RemoveConsumer(consumer) => {
                let before = a.consumers.len();
                a.consumers.retain(|c| *c != consumer);
                if a.consumers.len() == before {
                    return Err(Error::not_found(format!(
                        "object {id} has no such consumer"
                    )));
                }
            }
        }
        record.updated_at = now_ms();
        changes
            .commit(vec![Write::PutManagedObject(record.clone())])
            .await?;
        Ok(ObjectInfo::from(&record))
    }

    /// Revokes an object (KMIP's Revoke): compromised, it is marked so; for any other
    /// reason it is suspended (KMIP's Deactivated). As KMIP and NIST SP 800-57 have
    /// it, either may still be read to process what it protected, never again be
    /// made active; cutting access is deleting it, or the kill switch above it.
    pub async fn revoke_object(
        &self,
        caller: &Caller,
        id: ObjectId,
        compromised: bool,
    ) -> Result<ObjectInfo> {
        let mut changes = self.lock_changes().await?;
        let mut record = self.authorized_object(caller, Op::UpdateObject, id).await?;
        let transition = if compromised {
            Transition::MarkCompromised
        } else {
            Transition::Suspend
        };
        record
            .lifecycle
            .apply(transition)
            .map_err(|e| Error::new(ErrorKind::InvalidState, format!("object {id}: {e}")))?;
        record.updated_at = now_ms();
        changes
            .commit(vec![Write::PutManagedObject(record.clone())])
            .await?;
        Ok(ObjectInfo::from(&record))
    }

    /// Deletes an object and its sealed payload; refused while a consumer is
    /// registered (the service using it must let go first, as Barbican requires).
    pub async fn delete_object(&self, caller: &Caller, id: ObjectId) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let record = self.authorized_object(caller, Op::DeleteObject, id).await?;
        if let Some(c) = record.attributes.consumers.first() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "object {id} is in use by {} {} {} (and {} other consumer(s)): remove its consumers first",
                    c.service,
                    c.resource_type,
                    c.resource_id,
                    record.attributes.consumers.len() - 1
                ),
            ));
        }
        changes.commit(vec![Write::DeleteManagedObject(id)]).await?;
        Ok(())
    }

    /// The system `op` acts in, once the caller may act in it. A system of another
    /// tenant is not found, as if it did not exist.
    pub(super) async fn object_system(
        &self,
        caller: &Caller,
        op: Op,
        id: SystemId,
    ) -> Result<SystemRecord> {
        let tenant = Self::authorize_in_own_tenant(caller, op)?;
        let system = self
            .store
            .system(id)
            .await?
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| Error::not_found(format!("system {id} does not exist")))?;
        authorize(&caller.principal, op, Target::system(tenant, system.id))?;
        caller.note_system(system.id);
        Ok(system)
    }

    /// The object `op` acts on, once the caller may ([`Service::authorized_object_record`]).
    /// A versioned secret is its key-value store's alone, so here it is not found.
    async fn authorized_object(
        &self,
        caller: &Caller,
        op: Op,
        id: ObjectId,
    ) -> Result<ManagedObjectRecord> {
        self.authorized_object_record(caller, op, id)
            .await?
            .filter(|r| r.kind != ObjectKind::VersionedSecret)
            .ok_or_else(|| Error::not_found(format!("object {id} does not exist")))
    }

    /// The object `op` acts on, if it exists, once the caller may: by the role
    /// table, then the system scope — which a read ACL naming the caller opens for
    /// reading — and, for reading, an ACL that closed the object to its system.
    /// An object of another tenant does not exist.
    pub(super) async fn authorized_object_record(
        &self,
        caller: &Caller,
        op: Op,
        id: ObjectId,
    ) -> Result<Option<ManagedObjectRecord>> {
        let principal = &caller.principal;
        authorize_op(principal, op)?;
        let tenant = Self::own_tenant(principal)?;
        let Some(record) = self
            .store
            .managed_object(id)
            .await?
            .filter(|r| r.tenant_id == tenant)
        else {
            return Ok(None);
        };
        let me = &principal.access_key_id;
        let listed = record.attributes.acl.users.iter().any(|u| u == me);
        let target = if reads(op) && listed {
            Target::tenant(tenant)
        } else {
            Target::system(tenant, record.system_id)
        };
        authorize(principal, op, target)?;
        caller.note_system(record.system_id);
        if reads(op) && !acl_admits(&record, principal) {
            return Err(Error::denied(format!(
                "{me} is not on the read ACL of object {id}, which is closed to its project"
            )));
        }
        Ok(Some(record))
    }

    /// An object a container is to link: the caller must be able to read it.
    async fn readable_object(&self, caller: &Caller, id: ObjectId) -> Result<()> {
        self.authorized_object(caller, Op::GetObject, id)
            .await
            .map(|_| ())
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound | ErrorKind::AccessDenied => {
                    Error::invalid(format!("a linked object {id} does not exist"))
                }
                _ => e,
            })
    }

    pub(super) fn new_record(
        &self,
        caller: &Caller,
        system: &SystemRecord,
        kind: ObjectKind,
        mut attributes: ObjectAttributes,
        now: UnixMillis,
    ) -> ManagedObjectRecord {
        attributes.creator = caller.principal.access_key_id.clone();
        attributes.acl = ObjectAcl::default();
        ManagedObjectRecord {
            id: ObjectId::new_random(),
            tenant_id: system.tenant_id,
            system_id: system.id,
            kind,
            lifecycle: Lifecycle::active(),
            attributes,
            payload: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Seals `payload` under the system's active key into `record`.
    pub(super) async fn seal_payload(
        &self,
        system: &SystemRecord,
        record: &mut ManagedObjectRecord,
        payload: &SecretBytes,
    ) -> Result<()> {
        let parent = self.wrapping_system_key(system, "objects").await?;
        let version = system.active_key_version;
        let aad = object_aad(record, version);
        record.payload = Some(SealedPayload {
            system_key_version: version,
            sealed: crypto::seal(parent.material()?, payload.expose_secret(), &aad),
        });
        Ok(())
    }

    /// Commits new objects, unless the system already holds as many as it may.
    async fn insert_objects(
        &self,
        system: &SystemRecord,
        records: Vec<ManagedObjectRecord>,
    ) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        self.check_capacity(system, records.len()).await?;
        changes
            .commit(records.into_iter().map(Write::PutManagedObject).collect())
            .await?;
        Ok(())
    }

    /// Refuses `adding` more objects to a system that would then hold more than
    /// [`MAX_OBJECTS_PER_SYSTEM`].
    pub(super) async fn check_capacity(&self, system: &SystemRecord, adding: usize) -> Result<()> {
        let held = self.store.managed_object_count(system.id).await?;
        if held + adding as u64 > MAX_OBJECTS_PER_SYSTEM {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "system {} holds {held} objects, the most one system may hold is {MAX_OBJECTS_PER_SYSTEM}",
                    system.name
                ),
            ));
        }
        Ok(())
    }
}

/// What an object's payload is bound to when sealed under `system_version`.
fn object_aad(record: &ManagedObjectRecord, system_version: u32) -> Vec<u8> {
    WrapBinding::ManagedObject {
        tenant: record.tenant_id,
        object: record.id,
        kind: record.kind,
        system: record.system_id,
        system_version,
    }
    .to_aad()
}
