//! Records into statement parameters, in the column order of [`crate::cols`], and
//! the stored forms both stores share (so a snapshot of one restores into the
//! other). A value the schema cannot hold as written (an integer past
//! `i64::MAX`, an operation name that could not be read back) is
//! [`StoreError::Unencodable`], raised before anything reaches the database.

use std::borrow::Cow;
use std::collections::BTreeMap;

use kcm_core::authz::OpSet;
use kcm_core::model::*;
use kcm_core::policy::GrantRecord;
use kcm_core::store::{StoreError, StoreResult};

/// One statement parameter, typed by its column: a store binds it with its own
/// driver (a NULL keeps its type, because PostgreSQL types every parameter).
///
/// Text is borrowed from the record where it can be; ids and JSON are formatted
/// into owned text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param<'a> {
    /// A text column.
    Text(Option<Cow<'a, str>>),
    /// A 64-bit integer column.
    Integer(Option<i64>),
    /// A byte-string column.
    Blob(Option<&'a [u8]>),
    /// A boolean column (SQLite stores it as the integer 0 or 1).
    Boolean(Option<bool>),
}

impl<'a> Param<'a> {
    fn str(s: &'a str) -> Self {
        Param::Text(Some(Cow::Borrowed(s)))
    }

    fn opt_str(s: Option<&'a str>) -> Self {
        Param::Text(s.map(Cow::Borrowed))
    }

    fn string(s: String) -> Self {
        Param::Text(Some(Cow::Owned(s)))
    }

    fn display(v: impl ToString) -> Self {
        Self::string(v.to_string())
    }

    fn opt_display(v: Option<impl ToString>) -> Self {
        Param::Text(v.map(|v| Cow::Owned(v.to_string())))
    }

    fn int(v: impl Into<i64>) -> Self {
        Param::Integer(Some(v.into()))
    }

    fn bytes(b: &'a [u8]) -> Self {
        Param::Blob(Some(b))
    }

    /// The text of a text parameter (`Some(None)` for a NULL one); `None` if it is
    /// of another type. For stores that bind a column of many rows as one array.
    pub fn as_text(&self) -> Option<Option<&str>> {
        match self {
            Param::Text(s) => Some(s.as_deref()),
            _ => None,
        }
    }

    /// The value of an integer parameter, as [`Param::as_text`].
    pub fn as_integer(&self) -> Option<Option<i64>> {
        match self {
            Param::Integer(v) => Some(*v),
            _ => None,
        }
    }
}

/// An unsigned integer as the signed 64-bit column that holds it; past
/// `i64::MAX` it cannot be stored.
fn int<T: TryInto<i64> + Copy + std::fmt::Display>(v: T, what: &str) -> StoreResult<i64> {
    v.try_into()
        .map_err(|_| StoreError::Unencodable(format!("{what} {v} is larger than 2^63-1")))
}

/// A `seq` bound of a query: every stored `seq` fits an `i64` (a larger one is refused), so a
/// larger bound is past all of them rather than an error.
pub fn seq_bound(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A `LIMIT` as both databases take it (a signed 64-bit integer); a larger one
/// is as good as no limit.
pub fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A string map (a key's tags, a system's labels) as a JSON object.
fn tags_json(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).expect("a string map always serialises")
}

/// A managed object's attributes as their JSON column.
fn object_attributes_json(attributes: &ObjectAttributes) -> String {
    serde_json::to_string(attributes).expect("object attributes always serialise")
}

/// A stored secret's columns: `(sealed_secret, secret_salt, secret_verifier)`. A
/// derived secret seals nothing: its `sealed_secret` (NOT NULL, from the time every
/// secret was sealed) holds its kind instead — empty for kcm's own SigV4 secrets,
/// which were the only kind when the column was repurposed, [`XKS_KIND_MARK`] for
/// the XKS door's. (The kind is also bound into the derivation, so a changed mark
/// yields a secret its verifier refuses.)
fn secret_columns(secret: &StoredSecret) -> (&[u8], Option<&[u8]>, Option<&[u8]>) {
    match secret {
        StoredSecret::Derived {
            kind,
            salt,
            verifier,
        } => {
            let mark: &[u8] = match kind {
                CredentialKind::SigV4 => &[],
                CredentialKind::Xks => XKS_KIND_MARK,
                CredentialKind::Vault => VAULT_KIND_MARK,
            };
            (mark, Some(salt), Some(verifier))
        }
        StoredSecret::Sealed(sealed) => (sealed, None, None),
    }
}

/// What `sealed_secret` holds for a derived secret of the XKS kind.
pub const XKS_KIND_MARK: &[u8] = b"xks";

/// What `sealed_secret` holds for a derived secret of the Vault token kind.
pub const VAULT_KIND_MARK: &[u8] = b"vault";

/// An access key's operation limit: `None` stays NULL (unlimited), a list becomes
/// its names joined by commas (the empty list: the empty string).
///
/// A name that is empty or contains a comma could not be read back as written, so
/// it fails the write instead.
fn operation_names(ops: Option<&[String]>) -> StoreResult<Option<String>> {
    let Some(ops) = ops else { return Ok(None) };
    if let Some(bad) = ops.iter().find(|op| op.is_empty() || op.contains(',')) {
        return Err(StoreError::Unencodable(format!(
            "operation name {bad:?} is empty or contains a comma, so it could not be read back"
        )));
    }
    Ok(Some(ops.join(",")))
}

/// An operation set as its operation names joined by commas (never the bit
/// pattern, whose positions may change between releases).
fn op_set_names(ops: OpSet) -> String {
    let mut out = String::new();
    for op in ops.iter() {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(op.as_str());
    }
    out
}

/// The `chain` column value of an audit chain: `''` for the operator's, else the
/// tenant id (text, so one primary key `(chain, seq)` serves every chain).
pub fn chain_key(chain: AuditChain) -> String {
    chain.map(|t| t.to_string()).unwrap_or_default()
}

/// An audit record's keys as a JSON array.
fn audit_keys_json(keys: &[AuditKey]) -> String {
    serde_json::to_string(keys).expect("audit keys always serialise")
}

/// The `key_ids` column of an audit record: the key ids wrapped and separated by
/// commas (`,id1,id2,`; `,` for none), so a search for `',' || id || ','` inside it
/// finds one key without parsing the JSON.
fn audit_key_ids(keys: &[AuditKey]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(1 + keys.len() * 37);
    out.push(',');
    for k in keys {
        let _ = write!(out, "{},", k.id);
    }
    out
}

/// A tenant's parameters ([`crate::cols::TENANT_COLS`]).
pub fn tenant(t: &TenantRecord) -> [Param<'_>; 6] {
    [
        Param::display(t.id),
        Param::str(&t.name),
        Param::str(&t.account_id),
        Param::display(t.default_root_key_id),
        Param::display(t.default_system_id),
        Param::int(t.created_at),
    ]
}

/// An access key's parameters ([`crate::cols::ACCESS_KEY_COLS`]).
pub fn access_key(k: &AccessKeyRecord) -> StoreResult<[Param<'_>; 11]> {
    let (sealed, salt, verifier) = secret_columns(&k.secret);
    Ok([
        Param::str(&k.id),
        Param::opt_display(k.tenant_id),
        Param::str(k.role.as_str()),
        Param::opt_display(k.system_id),
        Param::bytes(sealed),
        Param::str(&k.description),
        Param::Boolean(Some(k.enabled)),
        Param::int(k.created_at),
        Param::Blob(salt),
        Param::Blob(verifier),
        Param::Text(operation_names(k.operations.as_deref())?.map(Cow::Owned)),
    ])
}

/// A root key's parameters ([`crate::cols::ROOT_KEY_COLS`]).
pub fn root_key(k: &RootKeyRecord) -> [Param<'_>; 8] {
    [
        Param::display(k.id),
        Param::opt_display(k.tenant_id),
        Param::str(&k.keystore),
        Param::bytes(&k.handle),
        Param::str(k.origin.as_str()),
        Param::str(k.lifecycle.state().as_str()),
        Param::str(&k.description),
        Param::int(k.created_at),
    ]
}

/// A system's parameters ([`crate::cols::SYSTEM_COLS`]).
pub fn system(s: &SystemRecord) -> [Param<'_>; 9] {
    [
        Param::display(s.id),
        Param::display(s.tenant_id),
        Param::str(&s.name),
        Param::str(&s.kind),
        Param::str(&s.description),
        Param::int(s.active_key_version),
        Param::int(s.created_at),
        Param::str(&s.region),
        Param::string(tags_json(&s.labels)),
    ]
}

/// A system key version's parameters ([`crate::cols::SYSTEM_KEY_COLS`]).
pub fn system_key(k: &SystemKeyRecord) -> [Param<'_>; 6] {
    [
        Param::display(k.system_id),
        Param::int(k.version),
        Param::display(k.root_key_id),
        Param::bytes(&k.wrapped),
        Param::str(k.lifecycle.state().as_str()),
        Param::int(k.created_at),
    ]
}

/// A service key's parameters ([`crate::cols::SERVICE_KEY_COLS`]).
pub fn service_key(k: &ServiceKeyRecord) -> [Param<'_>; 17] {
    [
        Param::display(k.id),
        Param::display(k.tenant_id),
        Param::display(k.system_id),
        Param::str(&k.description),
        Param::str(k.usage.as_str()),
        Param::str(k.spec.as_str()),
        Param::str(k.origin.as_str()),
        Param::str(k.lifecycle.state().as_str()),
        Param::int(k.created_at),
        Param::Integer(k.deletion_at),
        Param::Integer(k.rotation.map(|r| i64::from(r.period_days))),
        Param::Integer(k.rotation.map(|r| r.next_rotation_at)),
        Param::int(k.primary_version),
        Param::string(tags_json(&k.tags)),
        Param::opt_str(k.policy.as_deref()),
        Param::opt_str(k.import_check.as_deref()),
        Param::Integer(k.material_expires_at),
    ]
}

/// A key version's parameters ([`crate::cols::KEY_VERSION_COLS`]).
pub fn key_version(v: &KeyVersionRecord) -> [Param<'_>; 7] {
    [
        Param::display(v.key_id),
        Param::int(v.version),
        Param::int(v.system_key_version),
        Param::bytes(&v.wrapped),
        Param::str(v.origin.as_str()),
        Param::int(v.created_at),
        Param::opt_str(v.import_check.as_deref()),
    ]
}

/// An alias's parameters ([`crate::cols::ALIAS_COLS`]).
pub fn alias(a: &AliasRecord) -> [Param<'_>; 5] {
    [
        Param::display(a.tenant_id),
        Param::str(&a.name),
        Param::display(a.key_id),
        Param::int(a.created_at),
        Param::int(a.updated_at),
    ]
}

/// A grant's parameters ([`crate::cols::GRANT_COLS`]); its constraints as JSON,
/// NULL when it has none.
pub fn grant(g: &GrantRecord) -> [Param<'_>; 10] {
    // Maps of strings always encode as JSON.
    let constraints = (!g.constraints.is_empty())
        .then(|| serde_json::to_string(&g.constraints).expect("string maps encode as JSON"));
    [
        Param::str(&g.id),
        Param::display(g.tenant_id),
        Param::display(g.key_id),
        Param::str(&g.grantee),
        Param::opt_str(g.retiring_principal.as_deref()),
        Param::string(op_set_names(g.operations)),
        Param::opt_str(g.name.as_deref()),
        Param::str(&g.issuing_principal),
        Param::int(g.created_at),
        Param::Text(constraints.map(Cow::Owned)),
    ]
}

/// An audit record's parameters ([`crate::cols::AUDIT_RECORD_WRITTEN_COLS`]).
pub fn audit_record(r: &AuditRecord) -> StoreResult<[Param<'_>; 18]> {
    Ok([
        Param::string(chain_key(r.tenant)),
        Param::int(int(r.seq, "audit seq")?),
        Param::int(r.time),
        Param::str(&r.principal),
        Param::opt_str(r.role.map(|role| role.as_str())),
        Param::str(&r.front_door),
        Param::str(&r.operation),
        Param::string(audit_keys_json(&r.keys)),
        Param::string(audit_key_ids(&r.keys)),
        Param::opt_display(r.system),
        Param::str(r.outcome.as_str()),
        Param::opt_str(r.error.as_deref()),
        Param::str(&r.request_id),
        Param::opt_str(r.source.as_deref()),
        Param::str(&r.prev_hash),
        Param::str(&r.hash),
        Param::opt_str(r.client_request_id.as_deref()),
        Param::Text(r.detail.as_ref().map(|d| {
            Cow::Owned(serde_json::to_string(d).expect("a string map always serialises"))
        })),
    ])
}

/// An audit checkpoint's parameters ([`crate::cols::AUDIT_CHECKPOINT_COLS`]).
pub fn audit_checkpoint(c: &AuditCheckpoint) -> StoreResult<[Param<'_>; 5]> {
    Ok([
        Param::string(chain_key(c.tenant)),
        Param::int(int(c.seq, "audit checkpoint seq")?),
        Param::str(&c.hash),
        Param::int(c.time),
        Param::str(&c.signature),
    ])
}

/// A managed object's parameters ([`crate::cols::MANAGED_OBJECT_COLS`]): the
/// attributes as one JSON object, the payload as its system key version and sealed
/// bytes (both NULL without a payload).
pub fn managed_object(o: &ManagedObjectRecord) -> [Param<'_>; 10] {
    let payload = o.payload.as_ref();
    [
        Param::display(o.id),
        Param::display(o.tenant_id),
        Param::display(o.system_id),
        Param::str(o.kind.as_str()),
        Param::str(o.lifecycle.state().as_str()),
        Param::int(o.created_at),
        Param::int(o.updated_at),
        Param::string(object_attributes_json(&o.attributes)),
        Param::Integer(payload.map(|p| i64::from(p.system_key_version))),
        Param::Blob(payload.map(|p| p.sealed.as_slice())),
    ]
}
