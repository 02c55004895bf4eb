//! Rows into records. Each decoder reads the columns of its list in [`crate::cols`]
//! by position; anything unexpected (a NULL where a value is required, a value of
//! another type, an integer out of range, a name kcm does not know, JSON that does
//! not parse) is [`StoreError::Corrupt`] naming the field, never a panic and never
//! a default.

use kcm_core::authz::OpSet;
use kcm_core::keyspec::{KeyOrigin, KeySpec, KeyUsage};
use kcm_core::lifecycle::{KeyState, Lifecycle};
use kcm_core::model::*;
use kcm_core::policy::{GrantConstraints, GrantRecord};
use kcm_core::store::{StoreError, StoreResult};

use crate::row::{CellError, Row};

/// The shape of every decoder here, for stores that take one as an argument
/// (`fn all<T>(…, decode: Decoder<T>)`).
pub type Decoder<T> = fn(&dyn Row) -> StoreResult<T>;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

fn cell<T>(got: Result<Option<T>, CellError>, what: &str) -> StoreResult<Option<T>> {
    got.map_err(|e| corrupt(what, e))
}

fn required<T>(value: Option<T>, what: &str) -> StoreResult<T> {
    value.ok_or_else(|| corrupt(what, "NULL where a value is required"))
}

fn opt_text(row: &dyn Row, idx: usize, what: &str) -> StoreResult<Option<String>> {
    cell(row.text(idx), what)
}

fn text(row: &dyn Row, idx: usize, what: &str) -> StoreResult<String> {
    required(opt_text(row, idx, what)?, what)
}

fn opt_int(row: &dyn Row, idx: usize, what: &str) -> StoreResult<Option<i64>> {
    cell(row.integer(idx), what)
}

fn int(row: &dyn Row, idx: usize, what: &str) -> StoreResult<i64> {
    required(opt_int(row, idx, what)?, what)
}

fn opt_blob(row: &dyn Row, idx: usize, what: &str) -> StoreResult<Option<Vec<u8>>> {
    cell(row.blob(idx), what)
}

fn blob(row: &dyn Row, idx: usize, what: &str) -> StoreResult<Vec<u8>> {
    required(opt_blob(row, idx, what)?, what)
}

fn boolean(row: &dyn Row, idx: usize, what: &str) -> StoreResult<bool> {
    required(cell(row.boolean(idx), what)?, what)
}

/// An unsigned integer kcm keeps in a signed 64-bit column; a negative value (or,
/// for `u32`, one past `u32::MAX`) was never written by kcm.
fn unsigned<T: TryFrom<i64>>(v: i64, what: &str) -> StoreResult<T> {
    T::try_from(v).map_err(|_| corrupt(what, format!("{v} is out of range")))
}

fn opt_u32(row: &dyn Row, idx: usize, what: &str) -> StoreResult<Option<u32>> {
    opt_int(row, idx, what)?
        .map(|v| unsigned(v, what))
        .transpose()
}

fn u32(row: &dyn Row, idx: usize, what: &str) -> StoreResult<u32> {
    unsigned(int(row, idx, what)?, what)
}

fn u64(row: &dyn Row, idx: usize, what: &str) -> StoreResult<u64> {
    unsigned(int(row, idx, what)?, what)
}

fn unrecognised(what: &str, s: &str) -> StoreError {
    corrupt(what, format!("unrecognised value {s:?}"))
}

fn parsed<T>(
    row: &dyn Row,
    idx: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> StoreResult<T> {
    let s = text(row, idx, what)?;
    parse(&s).ok_or_else(|| unrecognised(what, &s))
}

fn opt_parsed<T>(
    row: &dyn Row,
    idx: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> StoreResult<Option<T>> {
    opt_text(row, idx, what)?
        .map(|s| parse(&s).ok_or_else(|| unrecognised(what, &s)))
        .transpose()
}

fn lifecycle(row: &dyn Row, idx: usize) -> StoreResult<Lifecycle> {
    parsed(row, idx, "key state", KeyState::parse).map(Lifecycle::stored)
}

/// An audit chain as its `chain` column holds it (see [`crate::encode::chain_key`]).
fn chain(row: &dyn Row, idx: usize) -> StoreResult<AuditChain> {
    let s = text(row, idx, "audit chain")?;
    if s.is_empty() {
        return Ok(None);
    }
    TenantId::parse(&s)
        .map(Some)
        .ok_or_else(|| unrecognised("audit chain", &s))
}

/// Decodes a tenant ([`crate::cols::TENANT_COLS`]).
pub fn tenant(row: &dyn Row) -> StoreResult<TenantRecord> {
    Ok(TenantRecord {
        id: parsed(row, 0, "tenant id", TenantId::parse)?,
        name: text(row, 1, "tenant name")?,
        account_id: text(row, 2, "account id")?,
        default_root_key_id: parsed(row, 3, "root key id", RootKeyId::parse)?,
        default_system_id: parsed(row, 4, "system id", SystemId::parse)?,
        created_at: int(row, 5, "created_at")?,
    })
}

/// Decodes an access key ([`crate::cols::ACCESS_KEY_COLS`]): a salt and a verifier make
/// a derived secret, neither a sealed one (see [`crate::encode::access_key`]);
/// a NULL operation list is no limit, the empty string the empty list.
pub fn access_key(row: &dyn Row) -> StoreResult<AccessKeyRecord> {
    let sealed = blob(row, 4, "sealed secret")?;
    let salt = opt_blob(row, 8, "secret salt")?;
    let verifier = opt_blob(row, 9, "secret verifier")?;
    let secret = match (salt, verifier) {
        (Some(salt), Some(verifier)) => {
            let kind = match sealed.as_slice() {
                [] => CredentialKind::SigV4,
                mark if mark == crate::encode::XKS_KIND_MARK => CredentialKind::Xks,
                mark if mark == crate::encode::VAULT_KIND_MARK => CredentialKind::Vault,
                _ => {
                    return Err(corrupt(
                        "access key secret",
                        "a derived secret with an unknown kind",
                    ))
                }
            };
            StoredSecret::Derived {
                kind,
                salt,
                verifier,
            }
        }
        (None, None) => StoredSecret::Sealed(sealed),
        _ => {
            return Err(corrupt(
                "access key secret",
                "salt and verifier not both set",
            ))
        }
    };
    let operations = opt_text(row, 10, "operations")?.map(|s| match s.as_str() {
        "" => Vec::new(),
        s => s.split(',').map(str::to_owned).collect(),
    });
    Ok(AccessKeyRecord {
        id: text(row, 0, "access key id")?,
        tenant_id: opt_parsed(row, 1, "tenant id", TenantId::parse)?,
        role: parsed(row, 2, "role", Role::parse)?,
        system_id: opt_parsed(row, 3, "system id", SystemId::parse)?,
        secret,
        operations,
        description: text(row, 5, "description")?,
        enabled: boolean(row, 6, "enabled")?,
        created_at: int(row, 7, "created_at")?,
    })
}

/// Decodes a root key ([`crate::cols::ROOT_KEY_COLS`]).
pub fn root_key(row: &dyn Row) -> StoreResult<RootKeyRecord> {
    Ok(RootKeyRecord {
        id: parsed(row, 0, "root key id", RootKeyId::parse)?,
        tenant_id: opt_parsed(row, 1, "tenant id", TenantId::parse)?,
        keystore: text(row, 2, "keystore")?,
        handle: blob(row, 3, "handle")?,
        origin: parsed(row, 4, "root key origin", RootKeyOrigin::parse)?,
        lifecycle: lifecycle(row, 5)?,
        description: text(row, 6, "description")?,
        created_at: int(row, 7, "created_at")?,
    })
}

/// Decodes a system ([`crate::cols::SYSTEM_COLS`]).
pub fn system(row: &dyn Row) -> StoreResult<SystemRecord> {
    Ok(SystemRecord {
        id: parsed(row, 0, "system id", SystemId::parse)?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        name: text(row, 2, "system name")?,
        kind: text(row, 3, "kind")?,
        description: text(row, 4, "description")?,
        active_key_version: u32(row, 5, "active key version")?,
        created_at: int(row, 6, "created_at")?,
        region: text(row, 7, "region")?,
        labels: parsed(row, 8, "system labels", |s| serde_json::from_str(s).ok())?,
    })
}

/// Decodes a system key version ([`crate::cols::SYSTEM_KEY_COLS`]).
pub fn system_key(row: &dyn Row) -> StoreResult<SystemKeyRecord> {
    Ok(SystemKeyRecord {
        system_id: parsed(row, 0, "system id", SystemId::parse)?,
        version: u32(row, 1, "version")?,
        root_key_id: parsed(row, 2, "root key id", RootKeyId::parse)?,
        wrapped: blob(row, 3, "wrapped")?,
        lifecycle: lifecycle(row, 4)?,
        created_at: int(row, 5, "created_at")?,
    })
}

/// Decodes a service key ([`crate::cols::SERVICE_KEY_COLS`]): a rotation schedule is
/// its period and next date together, or neither.
pub fn service_key(row: &dyn Row) -> StoreResult<ServiceKeyRecord> {
    let period = opt_u32(row, 10, "rotation period")?;
    let next = opt_int(row, 11, "next rotation")?;
    let rotation = match (period, next) {
        (Some(period_days), Some(next_rotation_at)) => Some(RotationSchedule {
            period_days,
            next_rotation_at,
        }),
        (None, None) => None,
        _ => return Err(corrupt("rotation", "period and next rotation not both set")),
    };
    let tags = text(row, 13, "tags")?;
    Ok(ServiceKeyRecord {
        id: parsed(row, 0, "key id", KeyId::parse)?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        system_id: parsed(row, 2, "system id", SystemId::parse)?,
        description: text(row, 3, "description")?,
        usage: parsed(row, 4, "key usage", KeyUsage::parse)?,
        spec: parsed(row, 5, "key spec", KeySpec::parse)?,
        origin: parsed(row, 6, "key origin", KeyOrigin::parse)?,
        lifecycle: lifecycle(row, 7)?,
        created_at: int(row, 8, "created_at")?,
        deletion_at: opt_int(row, 9, "deletion_at")?,
        rotation,
        primary_version: u32(row, 12, "primary version")?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt("tags", e))?,
        policy: opt_text(row, 14, "policy")?,
        import_check: opt_text(row, 15, "import check")?,
        material_expires_at: opt_int(row, 16, "material_expires_at")?,
    })
}

/// Decodes a key version ([`crate::cols::KEY_VERSION_COLS`]).
pub fn key_version(row: &dyn Row) -> StoreResult<KeyVersionRecord> {
    Ok(KeyVersionRecord {
        key_id: parsed(row, 0, "key id", KeyId::parse)?,
        version: u32(row, 1, "version")?,
        system_key_version: u32(row, 2, "system key version")?,
        wrapped: blob(row, 3, "wrapped")?,
        origin: parsed(row, 4, "version origin", VersionOrigin::parse)?,
        created_at: int(row, 5, "created_at")?,
        import_check: opt_text(row, 6, "import check")?,
    })
}

/// Decodes an alias ([`crate::cols::ALIAS_COLS`]).
pub fn alias(row: &dyn Row) -> StoreResult<AliasRecord> {
    Ok(AliasRecord {
        tenant_id: parsed(row, 0, "tenant id", TenantId::parse)?,
        name: text(row, 1, "alias name")?,
        key_id: parsed(row, 2, "key id", KeyId::parse)?,
        created_at: int(row, 3, "created_at")?,
        updated_at: int(row, 4, "updated_at")?,
    })
}

/// Decodes a grant ([`crate::cols::GRANT_COLS`]); its operations are names (see
/// [`crate::encode::grant`]), and a name kcm does not know is corrupt.
pub fn grant(row: &dyn Row) -> StoreResult<GrantRecord> {
    let names = text(row, 5, "grant operations")?;
    let operations = if names.is_empty() {
        OpSet::EMPTY
    } else {
        OpSet::parse(names.split(',')).map_err(|e| corrupt("grant operations", e))?
    };
    Ok(GrantRecord {
        id: text(row, 0, "grant id")?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        key_id: parsed(row, 2, "key id", KeyId::parse)?,
        grantee: text(row, 3, "grantee")?,
        retiring_principal: opt_text(row, 4, "retiring principal")?,
        operations,
        name: opt_text(row, 6, "grant name")?,
        issuing_principal: text(row, 7, "issuing principal")?,
        created_at: int(row, 8, "created_at")?,
        constraints: match opt_text(row, 9, "grant constraints")? {
            None => GrantConstraints::default(),
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| corrupt("grant constraints", e))?
            }
        },
    })
}

/// Decodes an audit record ([`crate::cols::AUDIT_RECORD_COLS`]).
pub fn audit_record(row: &dyn Row) -> StoreResult<AuditRecord> {
    let keys = text(row, 7, "audit keys")?;
    Ok(AuditRecord {
        tenant: chain(row, 0)?,
        seq: u64(row, 1, "seq")?,
        time: int(row, 2, "time")?,
        principal: text(row, 3, "principal")?,
        role: opt_parsed(row, 4, "role", Role::parse)?,
        front_door: text(row, 5, "front door")?,
        operation: text(row, 6, "operation")?,
        keys: serde_json::from_str(&keys).map_err(|e| corrupt("audit keys", e))?,
        system: opt_parsed(row, 8, "system id", SystemId::parse)?,
        outcome: parsed(row, 9, "audit outcome", AuditOutcome::parse)?,
        error: opt_text(row, 10, "error")?,
        request_id: text(row, 11, "request id")?,
        source: opt_text(row, 12, "source")?,
        client_request_id: opt_text(row, 15, "client request id")?,
        detail: opt_text(row, 16, "audit detail")?
            .map(|d| serde_json::from_str(&d).map_err(|e| corrupt("audit detail", e)))
            .transpose()?,
        prev_hash: text(row, 13, "prev hash")?,
        hash: text(row, 14, "hash")?,
    })
}

/// Decodes an audit checkpoint ([`crate::cols::AUDIT_CHECKPOINT_COLS`]).
pub fn audit_checkpoint(row: &dyn Row) -> StoreResult<AuditCheckpoint> {
    Ok(AuditCheckpoint {
        tenant: chain(row, 0)?,
        seq: u64(row, 1, "seq")?,
        hash: text(row, 2, "hash")?,
        time: int(row, 3, "time")?,
        signature: text(row, 4, "signature")?,
    })
}

/// Decodes a managed object ([`crate::cols::MANAGED_OBJECT_COLS`]): the attributes
/// from their JSON column; a payload is its system key version and sealed bytes
/// together, or neither.
pub fn managed_object(row: &dyn Row) -> StoreResult<ManagedObjectRecord> {
    let version = opt_u32(row, 8, "payload system key version")?;
    let sealed = opt_blob(row, 9, "sealed payload")?;
    let payload = match (version, sealed) {
        (Some(system_key_version), Some(sealed)) => Some(SealedPayload {
            system_key_version,
            sealed,
        }),
        (None, None) => None,
        _ => {
            return Err(corrupt(
                "object payload",
                "system key version and sealed payload not both set",
            ))
        }
    };
    let attributes = text(row, 7, "object attributes")?;
    Ok(ManagedObjectRecord {
        id: parsed(row, 0, "object id", ObjectId::parse)?,
        tenant_id: parsed(row, 1, "tenant id", TenantId::parse)?,
        system_id: parsed(row, 2, "system id", SystemId::parse)?,
        kind: parsed(row, 3, "object kind", ObjectKind::parse)?,
        lifecycle: lifecycle(row, 4)?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| corrupt("object attributes", e))?,
        payload,
        created_at: int(row, 5, "created_at")?,
        updated_at: int(row, 6, "updated_at")?,
    })
}

/// Decodes an audit chain (first column) and its last `seq` (second).
pub fn audit_chain(row: &dyn Row) -> StoreResult<(AuditChain, u64)> {
    Ok((chain(row, 0)?, u64(row, 1, "seq")?))
}

/// Decodes a `seq` (first column) and `hash` (second): a chain's tail.
pub fn seq_and_hash(row: &dyn Row) -> StoreResult<(u64, String)> {
    Ok((u64(row, 0, "seq")?, text(row, 1, "hash")?))
}

/// Decodes a bare key id (first column).
pub fn key_id(row: &dyn Row) -> StoreResult<KeyId> {
    parsed(row, 0, "key id", KeyId::parse)
}

/// Decodes a row count (first column, `COUNT(*)`).
pub fn count(row: &dyn Row) -> StoreResult<u64> {
    u64(row, 0, "count")
}

/// Decodes a single text column (a setting's value, an audit chain's key).
pub fn first_text(row: &dyn Row) -> StoreResult<String> {
    text(row, 0, "value")
}

/// Decodes a single integer column that may be NULL (an aggregate over no rows).
pub fn first_opt_int(row: &dyn Row) -> StoreResult<Option<i64>> {
    opt_int(row, 0, "value")
}
