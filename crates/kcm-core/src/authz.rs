//! Principals and the authorisation decision — made here, in the core, and nowhere else.
//!
//! Every service method names the [`Op`] it performs and the tenant (and system, and
//! key) it touches, and calls [`authorize`] before it reads or changes anything. Front
//! doors only authenticate (prove which access key signed); they never decide.
//!
//! The decision, in order (the first "no" wins):
//! 1. the **role** must allow the operation's class ([`OpClass`]) (the role table);
//! 2. an access key limited to **a set of operations** must list this one;
//! 3. a key limited to **one system** cannot manage the tenant, nor touch other systems;
//! 4. nothing crosses **tenants**;
//! 5. on a service key with a **key policy** ([`crate::policy`]), a `Deny` statement
//!    matching the caller refuses; otherwise an `Allow` statement or an active
//!    **grant** must admit the caller. A key without a policy is governed by roles alone.
//!
//! **No privilege escalation.** What a principal creates never gives more than it
//! holds: a new access key's role, operation set and system scope are each at most
//! its creator's ([`authorize_new_access_key`]); a grant, or a key policy's `Allow`
//! statements, name only operations the principal may do itself on the key
//! ([`authorize_giving`], which asks [`authorize`] once per operation).

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::lifecycle::KeyUse;
use crate::model::{KeyId, Role, SystemId, TenantId};
use crate::policy::{ConditionContext, Connection, KeyAccess};

/// Who is calling: an authenticated access key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// The tenant it belongs to (`None` for the operator's system-admin).
    pub tenant_id: Option<TenantId>,
    /// The tenant's 12-digit account id (empty for system-admin).
    pub account_id: String,
    /// Its role.
    pub role: Role,
    /// When set, only this system's keys may be touched.
    pub system_scope: Option<SystemId>,
    /// When set, only these operations may be called.
    pub operations: Option<OpSet>,
}

/// A caller of one request: the principal, and what the core noted about the request
/// while serving it (the keys it touched), for the audit record the front door writes.
#[derive(Debug)]
pub struct Caller {
    /// Who signed the request.
    pub principal: Principal,
    /// Where the request came from (for key policies' `aws:SourceIp` and
    /// `aws:SecureTransport`), as its front door knows it.
    pub connection: Connection,
    notes: Mutex<Vec<KeyNote>>,
    /// The system a request on no key acted in (a managed object's), for the record.
    system: std::sync::OnceLock<SystemId>,
}

/// A key a request touched, as the audit record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyNote {
    /// The service key.
    pub id: KeyId,
    /// The version used, when one was.
    pub version: Option<u32>,
    /// The key's system.
    pub system: SystemId,
    /// Whether the key is flagged compromised.
    pub compromised: bool,
}

impl KeyNote {
    /// The note for `record`, used at `version` (if a version was used).
    pub(crate) fn of(record: &crate::model::ServiceKeyRecord, version: Option<u32>) -> Self {
        Self {
            id: record.id,
            version,
            system: record.system_id,
            compromised: record.lifecycle.state().is_compromised(),
        }
    }
}

impl Caller {
    /// A caller with nothing noted yet.
    pub fn new(principal: Principal) -> Self {
        Self {
            principal,
            connection: Connection::default(),
            notes: Mutex::new(Vec::new()),
            system: std::sync::OnceLock::new(),
        }
    }

    /// This caller, whose request came over `connection`.
    pub fn over(self, connection: Connection) -> Self {
        Self { connection, ..self }
    }

    /// Notes that the request touched `note.id` (a second note of the same key and
    /// version is dropped).
    pub(crate) fn note_key(&self, note: KeyNote) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        match notes.iter_mut().find(|n| n.id == note.id) {
            Some(n) if n.version.is_none() || n.version == note.version => *n = note,
            Some(_) | None => notes.push(note),
        }
    }

    /// Notes that the request acted in `system` without a key (on a managed
    /// object); the first system noted is the one recorded.
    pub(crate) fn note_system(&self, system: SystemId) {
        let _ = self.system.set(system);
    }

    /// The system the audit record names: the first noted key's, else the one
    /// object operation noted.
    pub fn noted_system(&self) -> Option<SystemId> {
        let notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        notes
            .first()
            .map(|n| n.system)
            .or_else(|| self.system.get().copied())
    }

    /// The keys noted so far.
    pub fn noted_keys(&self) -> Vec<KeyNote> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The class of operation a request does; roles are defined by which classes they
/// may do (the role table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// Read key metadata, aliases, tags, rotation status, policies, grants; list keys.
    ReadKeys,
    /// Create keys; change state, description, aliases, tags, rotation, policy, grants.
    ManageKeys,
    /// Cryptographic use: encrypt, decrypt, data keys, re-encrypt.
    UseKeys,
    /// Random bytes (GenerateRandom): needs no key, but is a data-plane call.
    GenerateRandom,
    /// Read the tenant's root keys, systems, access keys and keychain.
    ReadTenant,
    /// Create root keys, systems and access keys in the tenant; the kill switch.
    ManageTenant,
    /// Read the audit log (a tenant's, or the operator's own).
    ReadAudit,
    /// Create and list tenants (operator only).
    ManageTenants,
    /// Take a backup of the whole store (operator only).
    Backup,
}

/// Every class (for exhaustive tests).
pub const ALL_CLASSES: [OpClass; 9] = [
    OpClass::ReadKeys,
    OpClass::ManageKeys,
    OpClass::UseKeys,
    OpClass::GenerateRandom,
    OpClass::ReadTenant,
    OpClass::ManageTenant,
    OpClass::ReadAudit,
    OpClass::ManageTenants,
    OpClass::Backup,
];

/// The role table: which classes of operation each role may do (within its own tenant).
pub fn role_allows(role: Role, class: OpClass) -> bool {
    use OpClass::*;
    match role {
        Role::TenantAdmin => matches!(
            class,
            ReadKeys
                | ManageKeys
                | UseKeys
                | GenerateRandom
                | ReadTenant
                | ManageTenant
                | ReadAudit
        ),
        Role::KeyAdmin => matches!(class, ReadKeys | ManageKeys | ReadTenant),
        Role::KeyUser => matches!(class, ReadKeys | UseKeys | GenerateRandom),
        Role::Auditor => matches!(class, ReadKeys | ReadTenant | ReadAudit),
        Role::SystemAdmin => matches!(class, ManageTenants | ReadAudit | Backup),
    }
}

/// Whether role `holder` may do every class of operation role `other` may: then, and
/// only then, may a principal of role `holder` create an access key of role `other`.
/// Derived from the role table, so a new role or class needs no second table.
pub fn role_covers(holder: Role, other: Role) -> bool {
    ALL_CLASSES
        .iter()
        .all(|&class| !role_allows(other, class) || role_allows(holder, class))
}

impl Op {
    /// Whether a successful call may have changed what the store holds (a key, an
    /// alias, a grant, a managed object, an access key, a system, a tenant, …). A
    /// request whose change committed but whose audit record could not be written
    /// is answered with an error that says so, never with "nothing was changed".
    /// Reading, cryptographic use and random bytes change nothing; a backup only
    /// reads, but is counted as a change to stay on the safe side.
    pub fn changes_state(self) -> bool {
        match self.class() {
            OpClass::ManageKeys
            | OpClass::ManageTenant
            | OpClass::ManageTenants
            | OpClass::Backup => true,
            OpClass::UseKeys => matches!(
                self,
                Op::CreateObject | Op::PutObjectPayload | Op::UpdateObject | Op::DeleteObject
            ),
            OpClass::ReadKeys
            | OpClass::ReadTenant
            | OpClass::ReadAudit
            | OpClass::GenerateRandom => false,
        }
    }
}

/// Declares [`Op`] from one table: every operation of every front door, with its
/// stable name (the AWS operation name where AWS has one), its [`OpClass`], what it
/// uses the service key it acts on for ([`KeyUse`], `-` when it acts on no key or
/// only changes its state) and whether the AWS KMS API serves it (`aws`).
macro_rules! operations {
    ($($op:ident => $class:ident, $key_use:tt, $aws:tt;)*) => {
        /// One operation a caller can ask for, on any front door.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Op {
            $(
                #[doc = concat!("`", stringify!($op), "`.")]
                $op,
            )*
        }

        /// Every operation, in declaration order.
        pub const ALL_OPS: &[Op] = &[$(Op::$op,)*];

        impl Op {
            /// The stable name (`Encrypt`, `CreateSystem`, …): in audit records,
            /// access keys' operation lists, grants and key policies.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Op::$op => stringify!($op),)*
                }
            }

            /// The class the role table judges it by.
            pub fn class(self) -> OpClass {
                match self {
                    $(Op::$op => OpClass::$class,)*
                }
            }

            /// What the operation uses the key it acts on for, which that key's
            /// lifecycle state (and, for a cryptographic use, its chain's) must
            /// allow; `None` for operations on no key or on its state alone.
            pub fn key_use(self) -> Option<KeyUse> {
                match self {
                    $(Op::$op => operations!(@use $key_use),)*
                }
            }

            /// The name of the operation on the AWS KMS API (`X-Amz-Target:
            /// TrentService.<name>`), if that API serves it.
            pub fn aws_target(self) -> Option<&'static str> {
                match self {
                    $(Op::$op => operations!(@aws $aws, $op),)*
                }
            }
        }
    };
    (@use -) => { None };
    (@use $use_:ident) => { Some(KeyUse::$use_) };
    (@aws -, $op:ident) => { None };
    (@aws aws, $op:ident) => { Some(stringify!($op)) };
}

operations! {
    // operation                        class           key use         AWS API
    // Keys: reading.
    DescribeKey                         => ReadKeys,     Describe,       aws;
    ListKeys                            => ReadKeys,     -,              aws;
    ListAliases                         => ReadKeys,     Describe,       aws;
    ListResourceTags                    => ReadKeys,     Describe,       aws;
    GetKeyRotationStatus                => ReadKeys,     Describe,       aws;
    ListKeyRotations                    => ReadKeys,     Describe,       aws;
    GetKeyPolicy                        => ReadKeys,     Describe,       aws;
    ListKeyPolicies                     => ReadKeys,     Describe,       aws;
    ListGrants                          => ReadKeys,     Describe,       aws;
    ListRetirableGrants                 => ReadKeys,     -,              aws;
    // Keys: managing.
    CreateKey                           => ManageKeys,   -,              aws;
    UpdateKeyDescription                => ManageKeys,   UpdateMetadata, aws;
    EnableKey                           => ManageKeys,   -,              aws;
    DisableKey                          => ManageKeys,   -,              aws;
    ScheduleKeyDeletion                 => ManageKeys,   -,              aws;
    CancelKeyDeletion                   => ManageKeys,   -,              aws;
    MarkKeyCompromised                  => ManageKeys,   -,              -;
    DestroyCompromisedKey               => ManageKeys,   -,              -;
    CreateAlias                         => ManageKeys,   UpdateMetadata, aws;
    UpdateAlias                         => ManageKeys,   UpdateMetadata, aws;
    DeleteAlias                         => ManageKeys,   Describe,       aws;
    TagResource                         => ManageKeys,   UpdateMetadata, aws;
    UntagResource                       => ManageKeys,   UpdateMetadata, aws;
    EnableKeyRotation                   => ManageKeys,   Rotate,         aws;
    DisableKeyRotation                  => ManageKeys,   Rotate,         aws;
    RotateKeyOnDemand                   => ManageKeys,   Rotate,         aws;
    PutKeyPolicy                        => ManageKeys,   UpdateMetadata, aws;
    CreateGrant                         => ManageKeys,   UpdateMetadata, aws;
    RetireGrant                         => ManageKeys,   -,              aws;
    RevokeGrant                         => ManageKeys,   -,              aws;
    GetParametersForImport              => ManageKeys,   -,              aws;
    ImportKeyMaterial                   => ManageKeys,   -,              aws;
    DeleteImportedKeyMaterial           => ManageKeys,   -,              aws;
    // Keys: using. ReEncrypt names the use of its source; its destination is
    // used to encrypt.
    Encrypt                             => UseKeys,      Encrypt,        aws;
    Decrypt                             => UseKeys,      Decrypt,        aws;
    ReEncrypt                           => UseKeys,      Decrypt,        aws;
    GenerateDataKey                     => UseKeys,      Encrypt,        aws;
    GenerateDataKeyWithoutPlaintext     => UseKeys,      Encrypt,        aws;
    GenerateDataKeyPair                 => UseKeys,      Encrypt,        aws;
    GenerateDataKeyPairWithoutPlaintext => UseKeys,      Encrypt,        aws;
    Sign                                => UseKeys,      Sign,           aws;
    Verify                              => UseKeys,      Verify,         aws;
    GetPublicKey                        => UseKeys,      Verify,         aws;
    GenerateMac                         => UseKeys,      Sign,           aws;
    VerifyMac                           => UseKeys,      Verify,         aws;
    DeriveSharedSecret                  => UseKeys,      Decrypt,        aws;
    GenerateRandom                      => GenerateRandom, -,            aws;
    // The XKS proxy API, through which AWS KMS keeps its keys in kcm: the same uses
    // of a key as kcm's own operations, named apart so that the audit log, access
    // keys' operation lists and key policies can tell AWS KMS's calls from others.
    XksGetKeyMetadata                   => ReadKeys,     Describe,       -;
    XksEncrypt                          => UseKeys,      Encrypt,        -;
    XksDecrypt                          => UseKeys,      Decrypt,        -;
    XksGetHealthStatus                  => ReadKeys,     -,              -;
    // Managed objects (Barbican secrets and containers, KMIP objects), classed like
    // keys: reading a description is reading metadata; storing, reading back and
    // deleting a value is the data plane of its system; opening an object to other
    // readers is managing it.
    GetObject                           => ReadKeys,     -,              -;
    ListObjects                         => ReadKeys,     -,              -;
    CreateObject                        => UseKeys,      -,              -;
    PutObjectPayload                    => UseKeys,      -,              -;
    GetObjectPayload                    => UseKeys,      -,              -;
    // Computing with an object's material inside kcm (KMIP's Encrypt, Decrypt,
    // Sign, Signature Verify, MAC, MAC Verify): the material never leaves.
    UseObject                           => UseKeys,      -,              -;
    UpdateObject                        => UseKeys,      -,              -;
    DeleteObject                        => UseKeys,      -,              -;
    SetObjectAcl                        => ManageKeys,   -,              -;
    // The tenant.
    ListAccessKeys                      => ReadTenant,   -,              -;
    ListSystems                         => ReadTenant,   -,              -;
    GetSystem                           => ReadTenant,   -,              -;
    GetKeychain                         => ReadTenant,   -,              -;
    GetTenant                           => ReadTenant,   -,              -;
    ListRootKeys                        => ReadTenant,   -,              -;
    GetRootKey                          => ReadTenant,   -,              -;
    CreateAccessKey                     => ManageTenant, -,              -;
    EnableAccessKey                     => ManageTenant, -,              -;
    DisableAccessKey                    => ManageTenant, -,              -;
    DeleteAccessKey                     => ManageTenant, -,              -;
    CreateSystem                        => ManageTenant, -,              -;
    SwitchSystemRootKey                 => ManageTenant, -,              -;
    LinkSystem                          => ManageTenant, -,              -;
    UnlinkSystem                        => ManageTenant, -,              -;
    RotateSystemKey                     => ManageTenant, -,              -;
    RewrapSystemKeys                    => ManageTenant, -,              -;
    CreateRootKey                       => ManageTenant, -,              -;
    EnableRootKey                       => ManageTenant, -,              -;
    DisableRootKey                      => ManageTenant, -,              -;
    SuspendRootKey                      => ManageTenant, -,              -;
    MarkRootKeyCompromised              => ManageTenant, -,              -;
    RotateRootKey                       => ManageTenant, -,              -;
    GetRootKeyImportParameters          => ManageTenant, -,              -;
    ImportRootKey                       => ManageTenant, -,              -;
    ReferenceRootKey                    => ManageTenant, -,              -;
    // Audit.
    ListAuditRecords                    => ReadAudit,    -,              -;
    ListAuditCheckpoints                => ReadAudit,    -,              -;
    GetAuditSigningKey                  => ReadAudit,    -,              -;
    GetAuditHead                        => ReadAudit,    -,              -;
    // The operator.
    CreateTenant                        => ManageTenants, -,             -;
    ListTenants                         => ManageTenants, -,             -;
    GetBackup                           => Backup,       -,              -;
}

impl Op {
    /// Parses [`Op::as_str`] (an optional `kms:` prefix is accepted, as in AWS policies).
    pub fn parse(s: &str) -> Option<Op> {
        let s = s.strip_prefix("kms:").unwrap_or(s);
        ALL_OPS.iter().copied().find(|op| op.as_str() == s)
    }

    /// The operation an AWS KMS API request names in `X-Amz-Target` (without the
    /// `TrentService.` prefix), if that API serves it.
    pub fn from_aws_target(target: &str) -> Option<Op> {
        ALL_OPS
            .iter()
            .copied()
            .find(|op| op.aws_target() == Some(target))
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of operations, as a bit set (an access key's allowed operations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OpSet(u128);

const _: () = assert!(ALL_OPS.len() <= 128, "OpSet holds at most 128 operations");

impl OpSet {
    /// No operations.
    pub const EMPTY: OpSet = OpSet(0);

    /// Adds `op`.
    pub fn insert(&mut self, op: Op) {
        self.0 |= 1 << op as u8;
    }

    /// Whether `op` is in the set.
    pub fn contains(self, op: Op) -> bool {
        self.0 & (1 << op as u8) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The operations of `self` that are not in `other`.
    pub fn difference(self, other: OpSet) -> OpSet {
        OpSet(self.0 & !other.0)
    }

    /// The operations, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Op> {
        ALL_OPS.iter().copied().filter(move |op| self.contains(*op))
    }

    /// Parses a list of operation names; an unknown name is an error naming it.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<OpSet> {
        let mut set = OpSet::EMPTY;
        for name in names {
            let op = Op::parse(name).ok_or_else(|| {
                Error::invalid(format!(
                    "unknown operation {name:?}; operations are named as in the API, e.g. Encrypt, Decrypt, DescribeKey"
                ))
            })?;
            set.insert(op);
        }
        Ok(set)
    }
}

impl FromIterator<Op> for OpSet {
    fn from_iter<I: IntoIterator<Item = Op>>(iter: I) -> Self {
        let mut set = OpSet::EMPTY;
        for op in iter {
            set.insert(op);
        }
        set
    }
}

/// What a request touches: the tenant, the system and the key's access rules when a
/// key is involved.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// Tenant owning the resource (`None` for operator-level resources).
    pub tenant: Option<TenantId>,
    /// System of the key, if a key is involved.
    pub system: Option<SystemId>,
    /// The key's policy and grants, if a key is involved.
    pub key: Option<(KeyId, &'a KeyAccess)>,
    /// What the request says and where it came from, for the key policy's
    /// conditions and resources.
    pub context: &'a ConditionContext<'a>,
}

impl<'a> Target<'a> {
    /// The operator's own resources (tenants, the operator's audit chain, backups).
    pub const OPERATOR: Target<'static> = Target {
        tenant: None,
        system: None,
        key: None,
        context: &ConditionContext::NONE,
    };

    /// A tenant-level resource.
    pub fn tenant(tenant: TenantId) -> Target<'a> {
        Target {
            tenant: Some(tenant),
            system: None,
            key: None,
            context: &ConditionContext::NONE,
        }
    }

    /// A resource in a system of a tenant.
    pub fn system(tenant: TenantId, system: SystemId) -> Target<'a> {
        Target {
            tenant: Some(tenant),
            system: Some(system),
            key: None,
            context: &ConditionContext::NONE,
        }
    }

    /// A service key, with its policy and grants, in a request that says nothing its
    /// policy's conditions could ask about ([`Target::within`] says it).
    pub fn key(tenant: TenantId, system: SystemId, id: KeyId, access: &'a KeyAccess) -> Self {
        Target {
            tenant: Some(tenant),
            system: Some(system),
            key: Some((id, access)),
            context: &ConditionContext::NONE,
        }
    }

    /// This target, in the request `context` describes.
    pub fn within(self, context: &'a ConditionContext<'a>) -> Self {
        Target { context, ..self }
    }
}

/// The one authorisation decision (see the module documentation for the order).
/// Denials name the access key, and what refused it.
pub fn authorize(principal: &Principal, op: Op, target: Target<'_>) -> Result<()> {
    let id = &principal.access_key_id;
    authorize_op(principal, op)?;
    if principal.system_scope.is_some() && op.class() == OpClass::ManageTenant {
        // A key limited to one system must not mint keys or systems for the whole tenant.
        return Err(Error::denied(format!(
            "access key {id} is scoped to one system and cannot manage the tenant's root keys, systems or access keys"
        )));
    }
    if target.tenant != principal.tenant_id {
        // Another tenant's resources are invisible; callers turn this into NotFound
        // where AWS would, so existence does not leak. The operator's resources
        // (tenant `None`) are likewise closed to tenant principals.
        return Err(Error::denied(format!(
            "access key {id} cannot access resources of another tenant"
        )));
    }
    if let (Some(scope), Some(system)) = (principal.system_scope, target.system) {
        if scope != system {
            return Err(Error::denied(format!(
                "access key {id} is scoped to another system"
            )));
        }
    }
    if let Some((key, access)) = target.key {
        access.admits(principal, op, key, target.context)?;
    }
    Ok(())
}

/// The part of the decision that needs no target: the role table and the access
/// key's operation limit. Methods call it before they look anything up, so a caller
/// whose role forbids the operation learns nothing about what exists.
pub fn authorize_op(principal: &Principal, op: Op) -> Result<()> {
    let id = &principal.access_key_id;
    if !role_allows(principal.role, op.class()) {
        return Err(Error::denied(format!(
            "access key {id} with role {} is not allowed to {} ({op})",
            principal.role,
            class_phrase(op.class())
        )));
    }
    if let Some(allowed) = principal.operations {
        if !allowed.contains(op) {
            return Err(Error::denied(format!(
                "access key {id} is limited to a set of operations that does not include {op}"
            )));
        }
    }
    Ok(())
}

/// No privilege escalation through access keys: `creator` may create an access key
/// of `role`, scoped to `system` and limited to `operations` (`None`: every
/// operation) only if each is at most its own — its role covers `role`
/// ([`role_covers`]); if it is limited, `operations` is a subset of its limit (no
/// limit would exceed it); if it is scoped, `system` is its own system. The denial
/// names the part that exceeded.
pub fn authorize_new_access_key(
    creator: &Principal,
    role: Role,
    system: Option<SystemId>,
    operations: Option<OpSet>,
) -> Result<()> {
    let id = &creator.access_key_id;
    if !role_covers(creator.role, role) {
        return Err(Error::denied(format!(
            "access key {id} cannot create an access key with role {role}: that role exceeds its own role {}",
            creator.role
        )));
    }
    if let Some(held) = creator.operations {
        let Some(asked) = operations else {
            return Err(Error::denied(format!(
                "access key {id} cannot create an access key without an operation limit: it is limited itself, and no limit means every operation, which exceeds its own operations"
            )));
        };
        let excess = asked.difference(held);
        if !excess.is_empty() {
            return Err(Error::denied(format!(
                "access key {id} cannot create an access key whose operations exceed its own: {} {} not among them",
                op_list(excess),
                if excess.iter().count() == 1 { "is" } else { "are" }
            )));
        }
    }
    if let Some(scope) = creator.system_scope {
        if system != Some(scope) {
            return Err(Error::denied(format!(
                "access key {id} cannot create an access key whose system scope exceeds its own: it must be scoped to the same system"
            )));
        }
    }
    Ok(())
}

/// No privilege escalation through grants and key policies: every operation in
/// `given` must be one `principal` may do itself on `target` — [`authorize`] is asked
/// for each. `what` says what would give them ("grant", "allow in a key policy"); the
/// denial names the operations beyond the principal's own and why the first is.
pub fn authorize_giving(
    principal: &Principal,
    given: OpSet,
    target: Target<'_>,
    what: &str,
) -> Result<()> {
    let mut excess = OpSet::EMPTY;
    let mut first_reason = None;
    for op in given.iter() {
        if let Err(e) = authorize(principal, op, target) {
            excess.insert(op);
            first_reason.get_or_insert(e);
        }
    }
    match first_reason {
        None => Ok(()),
        Some(reason) => Err(Error::denied(format!(
            "access key {} cannot {what} operations beyond its own: {} ({})",
            principal.access_key_id,
            op_list(excess),
            reason.message()
        ))),
    }
}

/// `Encrypt, Decrypt`: the operations of `set`, for messages.
fn op_list(set: OpSet) -> String {
    set.iter().map(Op::as_str).collect::<Vec<_>>().join(", ")
}

fn class_phrase(class: OpClass) -> &'static str {
    match class {
        OpClass::ReadKeys => "read key metadata",
        OpClass::ManageKeys => "manage keys",
        OpClass::UseKeys => "use keys for cryptographic operations",
        OpClass::GenerateRandom => "generate random bytes",
        OpClass::ReadTenant => "read the tenant's root keys, systems, access keys and keychain",
        OpClass::ManageTenant => "manage the tenant's root keys, systems and access keys",
        OpClass::ReadAudit => "read the audit log",
        OpClass::ManageTenants => "manage tenants",
        OpClass::Backup => "back up the whole store",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ALL_ROLES;

    fn principal(role: Role, tenant: Option<TenantId>, scope: Option<SystemId>) -> Principal {
        Principal {
            access_key_id: "KCMTEST".into(),
            tenant_id: tenant,
            account_id: String::new(),
            role,
            system_scope: scope,
            operations: None,
        }
    }

    #[test]
    fn role_table_every_role_times_every_class() {
        #[rustfmt::skip]
        let expected: [(Role, [bool; 9]); 5] = [
            //                  ReadKeys ManageKeys UseKeys Random ReadTenant ManageTenant ReadAudit ManageTenants Backup
            (Role::TenantAdmin, [true,   true,      true,   true,  true,      true,        true,     false,        false]),
            (Role::KeyAdmin,    [true,   true,      false,  false, true,      false,       false,    false,        false]),
            (Role::KeyUser,     [true,   false,     true,   true,  false,     false,       false,    false,        false]),
            (Role::Auditor,     [true,   false,     false,  false, true,      false,       true,     false,        false]),
            (Role::SystemAdmin, [false,  false,     false,  false, false,     false,       true,     true,         true]),
        ];
        assert_eq!(expected.len(), ALL_ROLES.len());
        for (role, row) in expected {
            for (class, allowed) in ALL_CLASSES.iter().zip(row) {
                assert_eq!(role_allows(role, *class), allowed, "{role} × {class:?}");
            }
        }
    }

    #[test]
    fn role_cover_every_role_times_every_role() {
        #[rustfmt::skip]
        let expected: [(Role, [bool; 5]); 5] = [
            //  holder covers:  tenant-admin key-admin key-user auditor system-admin
            (Role::TenantAdmin, [true,        true,     true,    true,   false]),
            (Role::KeyAdmin,    [false,       true,     false,   false,  false]),
            (Role::KeyUser,     [false,       false,    true,    false,  false]),
            (Role::Auditor,     [false,       false,    false,   true,   false]),
            (Role::SystemAdmin, [false,       false,    false,   false,  true]),
        ];
        let others = [
            Role::TenantAdmin,
            Role::KeyAdmin,
            Role::KeyUser,
            Role::Auditor,
            Role::SystemAdmin,
        ];
        assert_eq!(others.len(), ALL_ROLES.len());
        for (holder, row) in expected {
            for (other, covers) in others.iter().zip(row) {
                assert_eq!(
                    role_covers(holder, *other),
                    covers,
                    "{holder} covers {other}"
                );
            }
        }
    }

    #[test]
    fn a_new_access_key_is_at_most_its_creator_in_role_operations_and_scope() {
        let t = TenantId::new_random();
        let (s1, s2) = (SystemId::new_random(), SystemId::new_random());
        let ops = |names: &[&str]| Some(OpSet::parse(names.iter().copied()).unwrap());
        let denied = |r: Result<()>, part: &str| {
            let err = r.unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::AccessDenied);
            assert!(err.message().contains(part), "{part}: {err}");
        };
        let admin = principal(Role::TenantAdmin, Some(t), None);
        for role in [
            Role::TenantAdmin,
            Role::KeyAdmin,
            Role::KeyUser,
            Role::Auditor,
        ] {
            assert!(authorize_new_access_key(&admin, role, None, None).is_ok());
            assert!(authorize_new_access_key(&admin, role, Some(s1), ops(&["Encrypt"])).is_ok());
        }
        let key_admin = principal(Role::KeyAdmin, Some(t), None);
        denied(
            authorize_new_access_key(&key_admin, Role::TenantAdmin, None, None),
            "role",
        );
        // Limited: a subset only; no limit is every operation.
        let mut limited = admin.clone();
        limited.operations = ops(&["CreateAccessKey", "Encrypt"]);
        let new = |set| authorize_new_access_key(&limited, Role::KeyUser, None, set);
        assert!(new(ops(&["Encrypt"])).is_ok());
        assert!(new(ops(&["Encrypt", "CreateAccessKey"])).is_ok());
        denied(new(None), "operation limit");
        denied(
            new(ops(&["Encrypt", "Decrypt"])),
            "operations exceed its own: Decrypt is",
        );
        // Scoped: its own system only.
        let scoped = principal(Role::TenantAdmin, Some(t), Some(s1));
        assert!(authorize_new_access_key(&scoped, Role::KeyUser, Some(s1), None).is_ok());
        denied(
            authorize_new_access_key(&scoped, Role::KeyUser, None, None),
            "system scope",
        );
        denied(
            authorize_new_access_key(&scoped, Role::KeyUser, Some(s2), None),
            "system scope",
        );
    }

    #[test]
    fn nothing_is_given_beyond_what_the_giver_may_do() {
        let t = TenantId::new_random();
        let s = SystemId::new_random();
        let target = Target::system(t, s);
        let given = OpSet::parse(["Encrypt", "DescribeKey", "ScheduleKeyDeletion"]).unwrap();
        let admin = principal(Role::TenantAdmin, Some(t), None);
        assert!(authorize_giving(&admin, given, target, "grant").is_ok());
        let err = authorize_giving(
            &principal(Role::KeyAdmin, Some(t), None),
            given,
            target,
            "grant",
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::AccessDenied);
        assert!(
            err.message()
                .contains("cannot grant operations beyond its own: Encrypt (")
                && err.message().contains("role key-admin"),
            "{err}"
        );
        let mut limited = admin.clone();
        limited.operations = Some(OpSet::parse(["CreateGrant", "DescribeKey"]).unwrap());
        let err = authorize_giving(&limited, given, target, "grant").unwrap_err();
        assert!(
            err.message()
                .contains("beyond its own: ScheduleKeyDeletion, Encrypt ("),
            "{err}"
        );
        assert!(authorize_giving(&limited, OpSet::EMPTY, target, "grant").is_ok());
    }

    #[test]
    fn every_op_has_a_unique_name_that_parses_back() {
        let mut names = std::collections::HashSet::new();
        for op in ALL_OPS {
            assert!(names.insert(op.as_str()), "duplicate name {op}");
            assert_eq!(Op::parse(op.as_str()), Some(*op));
            assert_eq!(Op::parse(&format!("kms:{op}")), Some(*op));
        }
        assert_eq!(Op::parse("Encrypt*"), None);
    }

    #[test]
    fn op_sets_hold_exactly_what_was_put_in() {
        let set = OpSet::parse(["Encrypt", "kms:Decrypt"]).unwrap();
        assert!(set.contains(Op::Encrypt) && set.contains(Op::Decrypt));
        assert_eq!(set.iter().count(), 2);
        assert!(ALL_OPS
            .iter()
            .filter(|op| !matches!(op, Op::Encrypt | Op::Decrypt))
            .all(|op| !set.contains(*op)));
        let err = OpSet::parse(["Encrypt", "Fly"]).unwrap_err();
        assert!(err.message().contains("\"Fly\""));
    }

    #[test]
    fn operation_limited_keys_may_call_only_their_operations() {
        let t = TenantId::new_random();
        let mut p = principal(Role::KeyUser, Some(t), None);
        p.operations = Some(OpSet::parse(["Decrypt"]).unwrap());
        assert!(authorize(&p, Op::Decrypt, Target::tenant(t)).is_ok());
        let err = authorize(&p, Op::Encrypt, Target::tenant(t)).unwrap_err();
        assert!(err.message().contains("Encrypt"), "{err}");
        // The role still bounds the set: listing an operation does not grant it.
        p.operations = Some(OpSet::parse(["CreateKey"]).unwrap());
        assert!(authorize(&p, Op::CreateKey, Target::tenant(t)).is_err());
    }

    #[test]
    fn tenant_and_system_boundaries() {
        let t1 = TenantId::new_random();
        let t2 = TenantId::new_random();
        let s1 = SystemId::new_random();
        let s2 = SystemId::new_random();
        let admin = principal(Role::TenantAdmin, Some(t1), None);
        assert!(authorize(&admin, Op::Encrypt, Target::system(t1, s1)).is_ok());
        assert!(authorize(&admin, Op::Encrypt, Target::system(t2, s1)).is_err());
        assert!(authorize(&admin, Op::ListAuditRecords, Target::OPERATOR).is_err());
        let scoped = principal(Role::KeyUser, Some(t1), Some(s1));
        assert!(authorize(&scoped, Op::Encrypt, Target::system(t1, s1)).is_ok());
        assert!(authorize(&scoped, Op::Encrypt, Target::system(t1, s2)).is_err());
        let scoped_admin = principal(Role::TenantAdmin, Some(t1), Some(s1));
        assert!(authorize(&scoped_admin, Op::CreateSystem, Target::tenant(t1)).is_err());
        assert!(authorize(&scoped_admin, Op::DisableKey, Target::system(t1, s1)).is_ok());
        let operator = principal(Role::SystemAdmin, None, None);
        assert!(authorize(&operator, Op::CreateTenant, Target::OPERATOR).is_ok());
        assert!(authorize(&operator, Op::ListAuditRecords, Target::OPERATOR).is_ok());
        assert!(authorize(&operator, Op::ListAuditRecords, Target::tenant(t1)).is_err());
        assert!(authorize(&operator, Op::Encrypt, Target::system(t1, s1)).is_err());
        assert!(authorize(&operator, Op::DescribeKey, Target::tenant(t1)).is_err());
    }
}
