//! The one authorisation preamble: what a request names — a key id or alias, or the
//! key a ciphertext was made under — becomes an authorised service key here, and
//! nowhere else.
//!
//! The decision is [`Service::admit`], in this order (the first "no" wins):
//! 1. the role and the access key's operation limit ([`authorize_op`]), before
//!    anything is looked up, so a caller whose role forbids the operation learns
//!    nothing about what exists;
//! 2. the caller's tenant;
//! 3. the key itself: **another tenant's key, or a destroyed one, is answered exactly
//!    as a key that does not exist** — `NotFound` for a reference, `InvalidCiphertext`
//!    for a ciphertext, in the same words — so nothing about other tenants' keys
//!    leaks; a reference qualified with another account than the caller's (an ARN)
//!    names no key the caller can see, and is not found without being looked up;
//! 4. the key is noted for the request's audit record;
//! 5. [`authorize`] with the key's system, policy and grants;
//! 6. the lifecycle: what the operation uses the key for ([`Op::key_use`], one table
//!    in `authz.rs`) must be allowed by the key's state — and, for a cryptographic
//!    use, by every key above it.
//!
//! Two readers feed it. Cryptographic operations read the cached chain
//! ([`Service::authorized_key`]); management reads the current record from the
//! store ([`Service::authorized_record`]), because a change must not be based on a
//! record up to the revocation bound old, and because managing a key's metadata must
//! not need the keystore that holds its root.

use std::sync::Arc;

use super::chain::LoadedKey;
use super::{KeyRef, Service};
use crate::authz::{authorize, authorize_op, Caller, KeyNote, Op, Principal, Target};
use crate::crypto::CiphertextHeader;
use crate::error::{Error, ErrorKind, Result, Subject};
use crate::keyspec::{KeySpec, KeyUsage};
use crate::lifecycle::{KeyState, KeyUse};
use crate::model::{KeyId, ServiceKeyRecord, TenantId};
use crate::policy::{ConditionContext, KeyAccess, KeyFacts, RequestFacts};

/// How a request names the service key it acts on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyBy<'a> {
    /// By key id or alias.
    Ref(&'a KeyRef),
    /// By a ciphertext in kcm's format, which names the key it was made under.
    /// `named`, when the caller also named a key, must be that key.
    Ciphertext {
        /// The ciphertext.
        blob: &'a [u8],
        /// The key the caller said it was made under.
        named: Option<&'a KeyRef>,
    },
}

impl KeyBy<'_> {
    /// The answer for a key that does not exist — or that the caller may not know of.
    fn absent(self) -> Error {
        match self {
            KeyBy::Ref(key) => {
                let missing = Error::not_found(format!("key {key} does not exist"));
                match key.unqualified() {
                    KeyRef::Id(id) => missing.about(Subject::MissingKey {
                        id: *id,
                        account: key.account().map(str::to_string),
                    }),
                    _ => missing,
                }
            }
            KeyBy::Ciphertext { .. } => invalid_ciphertext(),
        }
    }
}

/// The answer for a reference that names nothing in the caller's tenant, in the words
/// of a missing key or a missing alias, whichever `key` names.
fn absent_ref(key: &KeyRef) -> Error {
    match key.unqualified() {
        KeyRef::Alias(name) => absent_alias_in(name, key.account().map(str::to_string)),
        _ => KeyBy::Ref(key).absent(),
    }
}

/// The refusal of a key named for a SYMMETRIC_DEFAULT ciphertext that is not a
/// SYMMETRIC_DEFAULT encryption key: the algorithm does not fit the key's spec (or its
/// usage), which AWS KMS answers with InvalidKeyUsageException.
fn not_a_symmetric_ciphertext_key(key: &LoadedKey) -> Error {
    if let Err(wrong_usage) = key.require_usage(KeyUsage::EncryptDecrypt) {
        return wrong_usage;
    }
    Error::new(
        ErrorKind::InvalidKeyUsage,
        format!(
            "key {} is an {} key and made no SYMMETRIC_DEFAULT ciphertext: decrypt with the \
             EncryptionAlgorithm the ciphertext was made with",
            key.record.id, key.record.spec
        ),
    )
}

/// The answer for an alias that does not exist in the caller's tenant.
fn absent_alias(name: &str) -> Error {
    absent_alias_in(name, None)
}

/// [`absent_alias`], for an alias named by an ARN of `account`.
fn absent_alias_in(name: &str, account: Option<String>) -> Error {
    Error::not_found(format!("alias {name} does not exist")).about(Subject::MissingAlias {
        name: name.to_string(),
        account,
    })
}

/// The one error of a ciphertext that is malformed, altered, made under a key the
/// caller cannot see, or whose encryption context does not match.
pub(crate) fn invalid_ciphertext() -> Error {
    Error::new(
        ErrorKind::InvalidCiphertext,
        "the ciphertext is invalid, was altered, or its encryption context does not match",
    )
}

impl Service {
    /// The caller's tenant; the operator's keys belong to none and use no keys.
    pub(crate) fn own_tenant(principal: &Principal) -> Result<TenantId> {
        principal.tenant_id.ok_or_else(|| {
            Error::denied(format!(
                "access key {} belongs to no tenant and cannot use or manage keys",
                principal.access_key_id
            ))
        })
    }

    /// The caller's own tenant, once `op` is authorised with it as the target: the
    /// preamble of every operation on the tenant as a whole (creating or listing
    /// its keys, aliases, systems and access keys). A caller of no tenant is told
    /// so before anything else.
    pub(crate) fn own_tenant_for(caller: &Caller, op: Op) -> Result<TenantId> {
        let tenant = Self::own_tenant(&caller.principal)?;
        authorize(&caller.principal, op, Target::tenant(tenant))?;
        Ok(tenant)
    }

    /// [`Self::own_tenant_for`] with the role and operation limit checked first
    /// (so a forbidden caller learns nothing, not even that it has no tenant).
    /// Returns the tenant.
    pub(crate) fn authorize_in_own_tenant(caller: &Caller, op: Op) -> Result<TenantId> {
        authorize_op(&caller.principal, op)?;
        Self::own_tenant_for(caller, op)
    }

    async fn alias_target(&self, tenant: TenantId, name: &str) -> Result<KeyId> {
        let cache_key = (tenant, name.to_string());
        if let Some(id) = self.aliases.get(&cache_key) {
            return Ok(*id);
        }
        let alias = self
            .store
            .alias(tenant, name)
            .await?
            .ok_or_else(|| absent_alias(name))?;
        self.aliases.insert(cache_key, Arc::new(alias.key_id));
        Ok(alias.key_id)
    }

    /// The id a reference names within the caller's tenant (not checking existence).
    /// A reference qualified with another account than the tenant's names no key the
    /// caller can see: it is answered as a missing key (or alias) of the caller's own,
    /// as AWS answers an ARN of another account, and nothing is looked up — so the
    /// answer is the same whether that account, or a key in it, exists.
    pub(crate) async fn key_id_of(
        &self,
        principal: &Principal,
        tenant: TenantId,
        key: &KeyRef,
    ) -> Result<KeyId> {
        if let KeyRef::InAccount { account, .. } = key {
            if *account != principal.account_id {
                return Err(absent_ref(key));
            }
        }
        match key.unqualified() {
            KeyRef::Id(id) => Ok(*id),
            KeyRef::Alias(name) => self.alias_target(tenant, name).await,
            KeyRef::InAccount { .. } => unreachable!("unqualified() removes every account"),
        }
    }

    /// The key `by` names, with its chain, authorised for `op` and usable for what
    /// `op` uses it for.
    pub(crate) async fn authorized_key(
        &self,
        caller: &Caller,
        op: Op,
        by: KeyBy<'_>,
    ) -> Result<Arc<LoadedKey>> {
        self.authorized_key_with(caller, op, by, RequestFacts::NONE)
            .await
    }

    /// [`Self::authorized_key`] for a request that says what `facts` say, which the
    /// key policy's conditions may ask about.
    pub(crate) async fn authorized_key_with(
        &self,
        caller: &Caller,
        op: Op,
        by: KeyBy<'_>,
        facts: RequestFacts<'_>,
    ) -> Result<Arc<LoadedKey>> {
        self.authorized_key_for(caller, op, op.key_use(), by, facts)
            .await
    }

    /// Runs `work` on the key `key` names once [`Self::authorized_key_with`] has
    /// admitted it for `op` with `facts`; the answer names the key, as every
    /// cryptographic response does.
    pub(crate) async fn with_authorized_key<T>(
        &self,
        caller: &Caller,
        op: Op,
        key: &KeyRef,
        facts: RequestFacts<'_>,
        work: impl FnOnce(&LoadedKey) -> Result<T>,
    ) -> Result<(KeyId, T)> {
        let loaded = self
            .authorized_key_with(caller, op, KeyBy::Ref(key), facts)
            .await?;
        let answer = work(&loaded)?;
        Ok((loaded.record.id, answer))
    }

    /// [`Self::authorized_key`] for a use other than `op`'s own: the destination of
    /// ReEncrypt, which `op` (named for its source) uses to encrypt.
    pub(crate) async fn authorized_key_for(
        &self,
        caller: &Caller,
        op: Op,
        key_use: Option<KeyUse>,
        by: KeyBy<'_>,
        facts: RequestFacts<'_>,
    ) -> Result<Arc<LoadedKey>> {
        authorize_op(&caller.principal, op)?;
        let tenant = Self::own_tenant(&caller.principal)?;
        // A ciphertext also says which version made it: the audit record names it.
        let (id, version) = match by {
            KeyBy::Ref(key) => (self.key_id_of(&caller.principal, tenant, key).await?, None),
            KeyBy::Ciphertext { blob, named } => {
                if let Some(named) = named {
                    if let Some(key) = self
                        .named_not_symmetric(caller, op, tenant, named, facts)
                        .await?
                    {
                        if let Some(key_use) = key_use {
                            key.check(key_use)?;
                        }
                        return Err(not_a_symmetric_ciphertext_key(&key));
                    }
                }
                let header = CiphertextHeader::parse(blob).ok_or_else(invalid_ciphertext)?;
                if let Some(named) = named {
                    let named_id = self.key_id_of(&caller.principal, tenant, named).await?;
                    if named_id != header.key_id {
                        // The named key must exist for the caller before "incorrect"
                        // may say anything about it.
                        self.found(caller, op, tenant, named_id, KeyBy::Ref(named), None, facts)
                            .await?;
                        return Err(Error::new(
                            ErrorKind::IncorrectKey,
                            format!("the ciphertext was not encrypted under key {named}"),
                        ));
                    }
                }
                (header.key_id, Some(header.key_version))
            }
        };
        let loaded = self
            .found(caller, op, tenant, id, by, version, facts)
            .await?;
        if let Some(key_use) = key_use {
            loaded.check(key_use)?;
        }
        Ok(loaded)
    }

    /// The key `named`, admitted for `op`, when a request names it for a ciphertext in
    /// kcm's symmetric format (SYMMETRIC_DEFAULT) though it is a key of the caller's
    /// tenant of another spec: such a key made no such ciphertext, whatever the
    /// ciphertext's bytes say (an RSA ciphertext's first byte is kcm's format byte one
    /// time in 256, and its next 16 then name a key). `None` when the name resolves to
    /// no such key: the ciphertext alone decides the answer then, so nothing is told
    /// about a key the caller cannot see.
    async fn named_not_symmetric(
        &self,
        caller: &Caller,
        op: Op,
        tenant: TenantId,
        named: &KeyRef,
        facts: RequestFacts<'_>,
    ) -> Result<Option<Arc<LoadedKey>>> {
        let Ok(id) = self.key_id_of(&caller.principal, tenant, named).await else {
            return Ok(None);
        };
        let Ok(peek) = self.load_key(id).await else {
            return Ok(None);
        };
        let record = &peek.record;
        if record.tenant_id != tenant
            || record.lifecycle.state().is_destroyed()
            || record.spec == KeySpec::SymmetricDefault
        {
            return Ok(None);
        }
        self.found(caller, op, tenant, id, KeyBy::Ref(named), None, facts)
            .await
            .map(Some)
    }

    /// Key `id` with its chain, admitted for `op`.
    #[allow(clippy::too_many_arguments)]
    async fn found(
        &self,
        caller: &Caller,
        op: Op,
        tenant: TenantId,
        id: KeyId,
        by: KeyBy<'_>,
        version: Option<u32>,
        facts: RequestFacts<'_>,
    ) -> Result<Arc<LoadedKey>> {
        let loaded = match self.load_key(id).await {
            Ok(loaded) => loaded,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(by.absent()),
            Err(e) => return Err(e),
        };
        self.admit(
            caller,
            op,
            tenant,
            &loaded.record,
            &loaded.access,
            by,
            version,
            facts,
        )?;
        Ok(loaded)
    }

    /// The current record of `key` from the store, authorised for `op`, whose own
    /// state allows what `op` uses it for: the start of every management change
    /// (under the change lock) and of every metadata read.
    pub(crate) async fn authorized_record(
        &self,
        caller: &Caller,
        op: Op,
        key: &KeyRef,
    ) -> Result<ServiceKeyRecord> {
        self.authorized_record_for(caller, op, op.key_use(), key)
            .await
    }

    /// [`Self::authorized_record`] for a use other than `op`'s own: the key an
    /// alias points at before UpdateAlias or DeleteAlias moves it, which the caller
    /// must be allowed to manage whatever its state.
    pub(crate) async fn authorized_record_for(
        &self,
        caller: &Caller,
        op: Op,
        key_use: Option<KeyUse>,
        key: &KeyRef,
    ) -> Result<ServiceKeyRecord> {
        let (record, _) = self
            .authorized_record_with_access(caller, op, key_use, key, RequestFacts::NONE)
            .await?;
        Ok(record)
    }

    /// [`Self::authorized_record_for`] in a request that says what `facts` say, with
    /// the key's policy and grants as they were judged: for CreateGrant and
    /// PutKeyPolicy, which ask what the caller holds on the key.
    pub(crate) async fn authorized_record_with_access(
        &self,
        caller: &Caller,
        op: Op,
        key_use: Option<KeyUse>,
        key: &KeyRef,
        facts: RequestFacts<'_>,
    ) -> Result<(ServiceKeyRecord, KeyAccess)> {
        let by = KeyBy::Ref(key);
        authorize_op(&caller.principal, op)?;
        let tenant = Self::own_tenant(&caller.principal)?;
        let id = self.key_id_of(&caller.principal, tenant, key).await?;
        let record = self
            .store
            .service_key(id)
            .await?
            .ok_or_else(|| by.absent())?;
        let access = if record.tenant_id == tenant {
            self.key_access(&record).await?
        } else {
            KeyAccess::default()
        };
        self.admit(caller, op, tenant, &record, &access, by, None, facts)?;
        if let Some(key_use) = key_use {
            require(&record, key_use)?;
        }
        Ok((record, access))
    }

    /// The decision on one key, once found (steps 3 to 5 of the module's list);
    /// `version` is the version the request names, for its audit record.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        caller: &Caller,
        op: Op,
        tenant: TenantId,
        record: &ServiceKeyRecord,
        access: &KeyAccess,
        by: KeyBy<'_>,
        version: Option<u32>,
        facts: RequestFacts<'_>,
    ) -> Result<()> {
        if record.tenant_id != tenant {
            return Err(by.absent());
        }
        if record.lifecycle.state().is_destroyed() {
            // Gone is gone: a destroyed key's ciphertext is answered as one naming a
            // key that never existed, word for word.
            return Err(by.absent());
        }
        if super::XKS_OPERATIONS.contains(&op)
            && caller
                .principal
                .system_scope
                .is_some_and(|system| system != record.system_id)
        {
            // To AWS KMS an external key store is one system: a key of another
            // system is not in it (the specification's KeyNotFoundException), and
            // an XKS call learns nothing of the tenant's other systems.
            return Err(by.absent());
        }
        caller.note_key(KeyNote::of(record, version));
        let context = self.condition_context(caller, record, by, facts);
        authorize(
            &caller.principal,
            op,
            Target::key(tenant, record.system_id, record.id, access).within(&context),
        )
    }

    /// What the key policy of `record` may ask about a request of `caller` naming
    /// the key `by` and saying `facts`.
    pub(crate) fn condition_context<'a>(
        &'a self,
        caller: &Caller,
        record: &ServiceKeyRecord,
        by: KeyBy<'a>,
        facts: RequestFacts<'a>,
    ) -> ConditionContext<'a> {
        let named = match by {
            KeyBy::Ref(key) => Some(key),
            KeyBy::Ciphertext { named, .. } => named,
        };
        ConditionContext {
            request: facts,
            connection: caller.connection,
            key: Some(KeyFacts {
                id: record.id,
                region: self.region(),
                spec: record.spec,
                usage: record.usage,
                origin: record.origin,
            }),
            request_alias: named.and_then(|k| match k.unqualified() {
                KeyRef::Alias(name) => Some(name.as_str()),
                _ => None,
            }),
            now: None,
        }
    }
}

/// Refuses `key_use` if the key's own state does not allow it.
pub(crate) fn require(record: &ServiceKeyRecord, key_use: KeyUse) -> Result<()> {
    let state = record.lifecycle.state();
    if state.allows(key_use) {
        Ok(())
    } else {
        Err(own_state_refusal(record.id, state))
    }
}

/// Why a key whose own state forbids an operation is refused: the one mapping from
/// a service key's state to the error its caller sees.
pub(crate) fn own_state_refusal(id: KeyId, state: KeyState) -> Error {
    let refusal = match state {
        KeyState::Disabled => Error::new(ErrorKind::KeyDisabled, format!("key {id} is disabled")),
        KeyState::Destroyed | KeyState::DestroyedCompromised => {
            Error::not_found(format!("key {id} has been deleted"))
        }
        KeyState::PreActive => Error::new(
            ErrorKind::InvalidState,
            format!("key {id} is pending import and cannot be used yet"),
        ),
        KeyState::Compromised => Error::new(
            ErrorKind::InvalidState,
            format!(
                "key {id} is marked compromised: it only decrypts and verifies, to recover data"
            ),
        ),
        state => Error::new(
            ErrorKind::InvalidState,
            format!("key {id} is {state} and does not allow this operation"),
        ),
    };
    refusal.about(Subject::KeyState(id, state))
}
