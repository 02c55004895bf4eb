//! Access keys: creation (secret shown once), listing, enabling, deletion, and the
//! credential lookup the front doors use to authenticate requests.

use std::sync::Arc;

use super::{now_ms, random_token, Service};
use crate::authz::{authorize, authorize_new_access_key, Caller, Op, OpSet, Principal, Target};
use crate::crypto::WrapBinding;
use crate::error::{Error, ErrorKind, Result};
use crate::keystore::KeystoreError;
use crate::model::*;
use crate::secret::{SecretBytes, SecretString};
use crate::store::Write;

/// What an access key of [`CredentialKind::Xks`] may call: the XKS proxy API.
pub const XKS_OPERATIONS: [Op; 4] = [
    Op::XksGetKeyMetadata,
    Op::XksEncrypt,
    Op::XksDecrypt,
    Op::XksGetHealthStatus,
];

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Meta key naming the service's credential root key.
/// The one answer to bearer credentials that do not authenticate, whether the
/// access key is unknown, disabled or given the wrong secret.
const BEARER_REFUSED: &str =
    "the bearer token is invalid: unknown or disabled access key, or wrong secret";
/// The one answer to a Vault token that does not authenticate, for any reason.
const VAULT_TOKEN_REFUSED: &str = "permission denied: the token is invalid";

pub(crate) const CREDENTIAL_ROOT_META: &str = "credential_root_key_id";
/// Meta key holding the credential key, wrapped by the credential root (hex).
pub(crate) const CREDENTIAL_KEY_META: &str = "credential_key";

/// An authenticated identity with the secret needed to check its signatures.
// `Debug` is derived: `SecretBytes` prints only its length.
#[derive(Debug)]
pub struct Credential {
    /// Who this access key is.
    pub principal: Principal,
    kind: CredentialKind,
    secret: SecretBytes,
}

impl Credential {
    /// The secret access key, for SigV4 verification.
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }
}

/// An access key as shown to callers (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyInfo {
    /// Access key id.
    pub id: String,
    /// What its secret signs.
    pub kind: CredentialKind,
    /// Tenant, if any.
    pub tenant_id: Option<TenantId>,
    /// Role.
    pub role: Role,
    /// Name of the system it is scoped to, if any.
    pub system: Option<String>,
    /// Free text.
    pub description: String,
    /// Whether it may be used.
    pub enabled: bool,
    /// The only operations it may call, when limited.
    pub operations: Option<Vec<String>>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Its ARN in key policies and grants (`arn:aws:iam::<account>:user/<id>`;
    /// `None` for the operator's keys, which belong to no account).
    pub arn: Option<String>,
}

/// A newly created access key: the only moment its secret is available.
#[derive(Debug)]
pub struct NewAccessKey {
    /// The key's public details.
    pub info: AccessKeyInfo,
    /// The secret access key; shown once, never stored (only a verifier is).
    pub secret: SecretString,
}

impl Service {
    /// The credential of kcm's own kind ([`CredentialKind::SigV4`]) for
    /// `access_key_id`, cached for at most the revocation bound.
    pub async fn credential(&self, access_key_id: &str) -> Result<Arc<Credential>> {
        self.credential_of_kind(access_key_id, CredentialKind::SigV4)
            .await
    }

    /// The credential of `kind` for `access_key_id`, cached for at most the
    /// revocation bound. A key of another kind is answered as an unknown one: an
    /// XKS key signs nothing on kcm's own doors, nor a kcm key on the XKS door.
    pub async fn credential_of_kind(
        &self,
        access_key_id: &str,
        kind: CredentialKind,
    ) -> Result<Arc<Credential>> {
        let unknown = || {
            Error::new(
                ErrorKind::UnknownAccessKey,
                "the security token included in the request is invalid: unknown or disabled access key",
            )
        };
        let credential = self.any_credential(access_key_id, unknown).await?;
        if credential.kind == kind {
            Ok(credential)
        } else {
            Err(unknown())
        }
    }

    async fn any_credential(
        &self,
        access_key_id: &str,
        unknown: impl Fn() -> Error,
    ) -> Result<Arc<Credential>> {
        if let Some(c) = self.credentials.get(access_key_id) {
            return Ok(c);
        }
        let record = self
            .store
            .access_key(access_key_id)
            .await?
            .filter(|r| r.enabled)
            .ok_or_else(&unknown)?;
        let account_id = match record.tenant_id {
            Some(t) => self.store.tenant(t).await?.ok_or_else(&unknown)?.account_id,
            None => String::new(),
        };
        let secret = self.recover_secret(&record).await?;
        let operations = match &record.operations {
            Some(names) => Some(OpSet::parse(names.iter().map(String::as_str))?),
            None => None,
        };
        let credential = Arc::new(Credential {
            principal: Principal {
                access_key_id: record.id.clone(),
                tenant_id: record.tenant_id,
                account_id,
                role: record.role,
                system_scope: record.system_id,
                operations,
            },
            kind: record.kind(),
            secret,
        });
        self.credentials
            .insert(record.id.clone(), Arc::clone(&credential));
        Ok(credential)
    }

    /// Authenticates `id:secret` bearer credentials (for scripts on the native API).
    ///
    /// An unknown or disabled access key and a wrong secret are one refusal, with
    /// one kind and one message: the answer does not tell a
    /// caller guessing ids which ones exist. Other errors (the store is down) pass.
    pub async fn authenticate_bearer(&self, id: &str, secret: &str) -> Result<Principal> {
        self.authenticate_secret(id, secret, CredentialKind::SigV4, BEARER_REFUSED)
            .await
    }

    /// The principal of access key `id` of `kind`, once `secret` is its secret
    /// (compared in constant time). An unknown, disabled or other-kind key and a
    /// wrong secret are one refusal, `refusal`; other errors (the store is down)
    /// pass.
    async fn authenticate_secret(
        &self,
        id: &str,
        secret: &str,
        kind: CredentialKind,
        refusal: &'static str,
    ) -> Result<Principal> {
        let refused = || Error::new(ErrorKind::UnknownAccessKey, refusal);
        let credential = match self.credential_of_kind(id, kind).await {
            Ok(credential) => credential,
            Err(e) if e.kind() == ErrorKind::UnknownAccessKey => return Err(refused()),
            Err(e) => return Err(e),
        };
        if credential.secret.ct_eq(secret.as_bytes()) {
            Ok(credential.principal.clone())
        } else {
            Err(refused())
        }
    }

    pub(crate) async fn credential_root(&self) -> Result<RootKeyRecord> {
        let id = self
            .store
            .meta(CREDENTIAL_ROOT_META)
            .await?
            .and_then(|s| RootKeyId::parse(&s))
            .ok_or_else(|| Error::internal("credential root key not configured"))?;
        self.store
            .root_key(id)
            .await?
            .ok_or_else(|| Error::internal("credential root key missing"))
    }

    /// A new credential key wrapped by `root`, and the write that stores it; the
    /// key also becomes this service's credential key. Used at first start, when
    /// the root is committed together with it.
    pub(crate) async fn new_credential_key(&self, root: &RootKeyRecord) -> Result<Write> {
        let key = SecretBytes::random(crate::crypto::KEY_LEN);
        let wrapped = self
            .keystore(&root.keystore)?
            .wrap(
                &root.handle,
                &key,
                &WrapBinding::CredentialKey { root: root.id }.to_aad(),
            )
            .await?;
        let _ = self.credential_key.set(key);
        Ok(Write::PutMeta {
            key: CREDENTIAL_KEY_META.into(),
            value: hex::encode(wrapped),
        })
    }

    /// Checks, at start, that this node's keystore opens the service's own key in
    /// the store (the credential key). A node started with another master key (a
    /// `master.key` of its own, a passphrase with another salt, another HSM token)
    /// would otherwise serve no signed request and, worse, wrap new keys that no
    /// other node can open. Fails only when the keystore says the key is not its
    /// own; a keystore that cannot be reached right now is `/ready`'s to report.
    pub async fn check_keystore_opens_store(&self) -> Result<()> {
        let Some(wrapped) = self.store.meta(CREDENTIAL_KEY_META).await? else {
            return Ok(()); // made on first use (a store from before derived secrets)
        };
        let root = self.credential_root().await?;
        match self.open_credential_key(&root, &wrapped).await? {
            Ok(key) => {
                let _ = self.credential_key.set(key);
                Ok(())
            }
            Err(e @ (KeystoreError::UnwrapFailed | KeystoreError::KeyUnusable(_))) => {
                Err(Error::new(
                    ErrorKind::KeystoreUnavailable,
                    format!(
                        "keystore {:?} cannot open the keys in this store ({e}): this node's \
                         master key (or HSM token) is not the one the store was made with. \
                         Every node of a cluster needs the same master key file (or, with a \
                         passphrase, the same passphrase and the same keystore-params.json)",
                        root.keystore
                    ),
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, keystore = %root.keystore, "could not check at start that the keystore opens the keys in the store");
                Ok(())
            }
        }
    }

    /// The credential key, from which access key secrets are derived: unwrapped once
    /// through the keystore. A store made before derived secrets gets one now.
    pub(crate) async fn credential_key(&self) -> Result<&SecretBytes> {
        self.credential_key
            .get_or_try_init(|| async {
                let root = self.credential_root().await?;
                let aad = WrapBinding::CredentialKey { root: root.id }.to_aad();
                let keystore = self.keystore(&root.keystore)?;
                let wrapped = match self.store.meta(CREDENTIAL_KEY_META).await? {
                    Some(hex_value) => hex_value,
                    None => {
                        let key = SecretBytes::random(crate::crypto::KEY_LEN);
                        let wrapped = hex::encode(keystore.wrap(&root.handle, &key, &aad).await?);
                        let insert = Write::InsertMeta {
                            key: CREDENTIAL_KEY_META.into(),
                            value: wrapped.clone(),
                        };
                        match self.store.commit(vec![insert]).await {
                            Ok(()) => return Ok(key),
                            // Another node made one first: use theirs.
                            Err(crate::store::StoreError::Conflict(_)) => self
                                .store
                                .meta(CREDENTIAL_KEY_META)
                                .await?
                                .ok_or_else(|| Error::internal("credential key vanished"))?,
                            Err(e) => return Err(e.into()),
                        }
                    }
                };
                Ok(self.open_credential_key(&root, &wrapped).await??)
            })
            .await
    }

    /// Unwraps the stored credential key (`wrapped_hex`) under `root` through its
    /// keystore. The keystore's own error is kept apart, so that a caller can tell
    /// "not this keystore's key" from "keystore unreachable".
    async fn open_credential_key(
        &self,
        root: &RootKeyRecord,
        wrapped_hex: &str,
    ) -> Result<std::result::Result<SecretBytes, KeystoreError>> {
        let aad = WrapBinding::CredentialKey { root: root.id }.to_aad();
        let wrapped = hex::decode(wrapped_hex)
            .map_err(|_| Error::internal("stored credential key is not hex"))?;
        Ok(self
            .keystore(&root.keystore)?
            .unwrap(&root.handle, &wrapped, &aad)
            .await)
    }

    /// The secret of `record`: derived from the credential key (and checked against
    /// the stored verifier), or for keys made before derived secrets, unsealed.
    async fn recover_secret(&self, record: &AccessKeyRecord) -> Result<SecretBytes> {
        match &record.secret {
            StoredSecret::Derived {
                kind,
                salt,
                verifier,
            } => {
                let secret = derive_secret(*kind, self.credential_key().await?, &record.id, salt);
                let expected = secret_verifier(&record.id, secret.expose_secret().as_bytes());
                if !bool::from(subtle::ConstantTimeEq::ct_eq(
                    expected.as_slice(),
                    verifier.as_slice(),
                )) {
                    return Err(Error::internal(format!(
                        "access key {}: the derived secret does not match its verifier (wrong credential key or altered record)",
                        record.id
                    )));
                }
                Ok(SecretBytes::copy_from(secret.expose_secret().as_bytes()))
            }
            StoredSecret::Sealed(sealed) => {
                let root = self.credential_root().await?;
                let aad = WrapBinding::AccessKeySecret {
                    tenant: record.tenant_id,
                    access_key_id: &record.id,
                    root: root.id,
                }
                .to_aad();
                Ok(self
                    .keystore(&root.keystore)?
                    .unwrap(&root.handle, sealed, &aad)
                    .await?)
            }
        }
    }

    /// Builds a new access key record of `kind`: its secret is derived from the
    /// credential key and a fresh salt, and only the salt and a verifier are stored.
    pub(crate) async fn mint_access_key(
        &self,
        kind: CredentialKind,
        tenant: Option<TenantId>,
        role: Role,
        system: Option<SystemId>,
        operations: Option<OpSet>,
        description: String,
    ) -> Result<(AccessKeyRecord, SecretString)> {
        let id = format!("KCM{}", random_token(ID_ALPHABET, 17));
        let mut salt = vec![0u8; 16];
        crate::crypto::fill_random(&mut salt);
        let secret = derive_secret(kind, self.credential_key().await?, &id, &salt);
        let verifier = secret_verifier(&id, secret.expose_secret().as_bytes());
        let record = AccessKeyRecord {
            id,
            tenant_id: tenant,
            role,
            system_id: system,
            secret: StoredSecret::Derived {
                kind,
                salt,
                verifier,
            },
            operations: operations
                .map(|set| set.iter().map(|op| op.as_str().to_string()).collect()),
            description,
            enabled: true,
            created_at: now_ms(),
        };
        Ok((record, secret))
    }

    pub(crate) async fn access_key_info(&self, record: &AccessKeyRecord) -> Result<AccessKeyInfo> {
        let system = match record.system_id {
            Some(id) => self.store.system(id).await?.map(|s| s.name),
            None => None,
        };
        let arn = match record.tenant_id {
            Some(t) => self
                .store
                .tenant(t)
                .await?
                .map(|t| crate::policy::principal::user_arn(&t.account_id, &record.id)),
            None => None,
        };
        Ok(AccessKeyInfo {
            id: record.id.clone(),
            kind: record.kind(),
            tenant_id: record.tenant_id,
            role: record.role,
            system,
            description: record.description.clone(),
            enabled: record.enabled,
            operations: record.operations.clone(),
            created_at: record.created_at,
            arn,
        })
    }

    /// Creates an access key in the caller's tenant, optionally scoped to a system
    /// and to a set of operations (by name: `Encrypt`, `Decrypt`, …). Its role,
    /// operations and system scope are each at most the caller's
    /// ([`authorize_new_access_key`]): no key mints a stronger one.
    pub async fn create_access_key(
        &self,
        caller: &Caller,
        role: Role,
        system: Option<&str>,
        operations: Option<&[String]>,
        description: String,
    ) -> Result<NewAccessKey> {
        self.create_access_key_of_kind(
            caller,
            CredentialKind::SigV4,
            role,
            system,
            operations,
            description,
        )
        .await
    }

    /// Creates a Vault token ([`CredentialKind::Vault`]) for the Vault-compatible
    /// API: a key-user (Transit's encryption and data keys, KV reads and writes) or
    /// key-admin (also creating, rotating and deleting Transit keys), or an auditor
    /// (reading Transit keys and KV metadata, no values) of one system,
    /// optionally limited to `operations`, and given nothing its creator does not
    /// hold. The token, `kcm.<id>.<secret>` ([`vault_token`]), is taken by the
    /// Vault door only.
    pub async fn create_vault_token(
        &self,
        caller: &Caller,
        system: &str,
        role: Role,
        operations: Option<&[String]>,
        description: String,
    ) -> Result<NewAccessKey> {
        if !matches!(role, Role::KeyUser | Role::KeyAdmin | Role::Auditor) {
            return Err(Error::invalid(format!(
                "a Vault token is a key-user, key-admin or auditor of one system, not a {}",
                role.as_str()
            )));
        }
        self.create_access_key_of_kind(
            caller,
            CredentialKind::Vault,
            role,
            Some(system),
            operations,
            description,
        )
        .await
    }

    async fn create_access_key_of_kind(
        &self,
        caller: &Caller,
        kind: CredentialKind,
        role: Role,
        system: Option<&str>,
        operations: Option<&[String]>,
        description: String,
    ) -> Result<NewAccessKey> {
        let tenant = Self::own_tenant_for(caller, Op::CreateAccessKey)?;
        if role == Role::SystemAdmin {
            return Err(Error::invalid(
                "role system-admin cannot be given to a tenant access key",
            ));
        }
        check_access_key_description(&description)?;
        let system_id = match system {
            Some(name) => Some(self.find_system(tenant, name).await?.id),
            None => None,
        };
        let operations = match operations {
            Some(names) => {
                let set = OpSet::parse(names.iter().map(String::as_str))?;
                if set.is_empty() {
                    return Err(Error::invalid(
                        "operations must name at least one operation (omit it for no limit)",
                    ));
                }
                Some(set)
            }
            None => None,
        };
        // The new key gives no more than its creator holds.
        authorize_new_access_key(&caller.principal, role, system_id, operations)?;
        let minted = self
            .mint_access_key(kind, Some(tenant), role, system_id, operations, description)
            .await?;
        self.store_new_access_key(minted).await
    }

    /// Authenticates a Vault token (`kcm.<id>.<secret>`): an enabled access key of
    /// the Vault kind and its secret; or a login's session token (`kcms.…`,
    /// [`Service::issue_vault_session`]). Whatever is wrong — not a token, unknown,
    /// disabled, another kind, the wrong secret — is one refusal; a store outage
    /// passes as itself.
    pub async fn authenticate_vault_token(&self, token: &str) -> Result<Principal> {
        if token.starts_with(super::SESSION_PREFIX) {
            return self.authenticate_vault_session(token).await;
        }
        let (id, secret) = parse_vault_token(token)
            .ok_or_else(|| Error::new(ErrorKind::UnknownAccessKey, VAULT_TOKEN_REFUSED))?;
        self.authenticate_secret(id, secret, CredentialKind::Vault, VAULT_TOKEN_REFUSED)
            .await
    }

    /// Stores a minted access key and hands it out, its secret the one time.
    async fn store_new_access_key(
        &self,
        (record, secret): (AccessKeyRecord, SecretString),
    ) -> Result<NewAccessKey> {
        self.store
            .commit(vec![Write::PutAccessKey(record.clone())])
            .await?;
        Ok(NewAccessKey {
            info: self.access_key_info(&record).await?,
            secret,
        })
    }

    /// Creates an access key for AWS KMS to sign its calls to the XKS proxy API
    /// with ([`CredentialKind::Xks`]): role key-user, scoped to `system` (one
    /// external key store of AWS KMS is one kcm system), limited to the XKS
    /// operations, and given nothing its creator does not hold. Such a key signs
    /// nothing on kcm's other doors. Rotating it is creating a second one for the
    /// same system, giving AWS KMS the new one (`UpdateCustomKeyStore`), then
    /// deleting the first.
    pub async fn create_xks_access_key(
        &self,
        caller: &Caller,
        system: &str,
        description: String,
    ) -> Result<NewAccessKey> {
        let tenant = Self::own_tenant_for(caller, Op::CreateAccessKey)?;
        check_access_key_description(&description)?;
        let system_id = self.find_system(tenant, system).await?.id;
        let mut operations = OpSet::EMPTY;
        for op in XKS_OPERATIONS {
            operations.insert(op);
        }
        authorize_new_access_key(
            &caller.principal,
            Role::KeyUser,
            Some(system_id),
            Some(operations),
        )?;
        let minted = self
            .mint_access_key(
                CredentialKind::Xks,
                Some(tenant),
                Role::KeyUser,
                Some(system_id),
                Some(operations),
                description,
            )
            .await?;
        self.store_new_access_key(minted).await
    }

    /// Access keys of the caller's tenant (the operator sees the operator's keys).
    pub async fn list_access_keys(&self, caller: &Caller) -> Result<Vec<AccessKeyInfo>> {
        match caller.principal.tenant_id {
            Some(t) => authorize(&caller.principal, Op::ListAccessKeys, Target::tenant(t))?,
            // The operator's own keys: judged as the operator's tenant management.
            None => authorize(&caller.principal, Op::ListTenants, Target::OPERATOR)?,
        }
        let mut out = Vec::new();
        for record in self.store.access_keys(caller.principal.tenant_id).await? {
            out.push(self.access_key_info(&record).await?);
        }
        Ok(out)
    }

    async fn own_access_key(&self, caller: &Caller, id: &str, op: Op) -> Result<AccessKeyRecord> {
        let tenant = Self::own_tenant_for(caller, op)?;
        self.store
            .access_key(id)
            .await?
            .filter(|r| r.tenant_id == Some(tenant))
            .ok_or_else(|| Error::not_found(format!("access key {id} does not exist")))
    }

    /// Enables or disables an access key of the caller's tenant.
    pub async fn set_access_key_enabled(
        &self,
        caller: &Caller,
        id: &str,
        enabled: bool,
    ) -> Result<AccessKeyInfo> {
        let mut changes = self.lock_changes().await?;
        let op = if enabled {
            Op::EnableAccessKey
        } else {
            Op::DisableAccessKey
        };
        let mut record = self.own_access_key(caller, id, op).await?;
        if !enabled && record.id == caller.principal.access_key_id {
            return Err(Error::invalid(
                "an access key cannot disable itself; use another tenant-admin key",
            ));
        }
        record.enabled = enabled;
        changes
            .commit(vec![Write::PutAccessKey(record.clone())])
            .await?;
        self.credentials.remove(&record.id);
        self.access_key_info(&record).await
    }

    /// Deletes an access key of the caller's tenant.
    pub async fn delete_access_key(&self, caller: &Caller, id: &str) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let record = self.own_access_key(caller, id, Op::DeleteAccessKey).await?;
        if record.id == caller.principal.access_key_id {
            return Err(Error::invalid(
                "an access key cannot delete itself; use another tenant-admin key",
            ));
        }
        changes
            .commit(vec![Write::DeleteAccessKey(record.id.clone())])
            .await?;
        self.credentials.remove(&record.id);
        Ok(())
    }
}

/// Refuses an access key description over 256 characters.
fn check_access_key_description(description: &str) -> Result<()> {
    if description.chars().count() > 256 {
        return Err(Error::invalid("description is longer than 256 characters"));
    }
    Ok(())
}

/// The secret of access key `id`: HMAC-SHA256 of the id and salt under the
/// credential key (labelled by `kind`, so that one kind's secret is not another's).
/// kcm's own are 40 characters of base64 (240 bits); the XKS door's, Base64 of all
/// 32 bytes with its padding, 44 characters, within the specification's 43 to 64.
fn derive_secret(
    kind: CredentialKind,
    credential_key: &SecretBytes,
    id: &str,
    salt: &[u8],
) -> SecretString {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, credential_key.expose_secret());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(match kind {
        CredentialKind::SigV4 => b"kcm-access-key-secret-v1\n",
        CredentialKind::Xks => b"kcm-xks-key-secret-v1\n",
        CredentialKind::Vault => b"kcm-vault-token-secret-v1\n",
    });
    ctx.update(id.as_bytes());
    ctx.update(b"\n");
    ctx.update(salt);
    let tag = ctx.sign();
    if kind == CredentialKind::Xks {
        use base64::Engine as _;
        return SecretString::new(base64::engine::general_purpose::STANDARD.encode(tag.as_ref()));
    }
    let mut out = String::with_capacity(40);
    // 30 bytes → 40 base64 characters; no padding.
    for chunk in tag.as_ref()[..30].chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(SECRET_ALPHABET[((n >> shift) & 63) as usize] as char);
        }
    }
    SecretString::new(out)
}

/// The one-way verifier stored for a secret: SHA-256 over a label, the id and it.
fn secret_verifier(id: &str, secret: &[u8]) -> Vec<u8> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"kcm-access-key-verifier-v1\n");
    ctx.update(id.as_bytes());
    ctx.update(b"\n");
    ctx.update(secret);
    ctx.finish().as_ref().to_vec()
}
