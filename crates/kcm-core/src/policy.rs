//! Key policies and grants: who, beyond their role, may do what with one key.
//!
//! A **key policy** is a small JSON document (the AWS key-policy idea, kept small):
//!
//! ```json
//! {
//!   "Version": "kcm-2026-11",
//!   "Statement": [
//!     { "Sid": "apps", "Effect": "Allow",
//!       "Principal": ["KCMAPPKEY…", "role:key-admin"],
//!       "Action": ["Encrypt", "Decrypt", "DescribeKey"] },
//!     { "Sid": "no-deletes", "Effect": "Deny", "Principal": "*",
//!       "Action": "ScheduleKeyDeletion" }
//!   ]
//! }
//! ```
//!
//! - `Principal` is one string or a list: an access key id, `role:<role>`, or `*`.
//! - `Action` is one string or a list of operation names (`Encrypt`, `kms:Decrypt`),
//!   `*` or `kms:*`.
//! - A key **without** a policy is governed by roles alone. A key **with** one admits
//!   a caller only if no `Deny` statement matches and an `Allow` statement or an
//!   active grant does. Roles stay the ceiling: a policy or grant never lets a
//!   principal do what its role does not allow.
//! - So that a policy can never lock a tenant out of its own key, a tenant-admin may
//!   always read and replace the policy (`GetKeyPolicy`, `PutKeyPolicy`).
//! - **A policy gives no more than its writer holds.** Every operation an `Allow`
//!   statement names (among the operations on keys, the only ones a policy is asked
//!   about) must be one the writer may do itself on the key — judged by
//!   [`crate::authz::authorize`] with the key's policy and grants in force. A
//!   tenant-admin is judged by its role, operation limit and system scope alone: it
//!   may always replace the policy, so the one in force bounds it only until it does,
//!   and judging it by that one could lock the tenant out of its own key for good. A
//!   `Deny` statement takes away, so it may name anything. A key created with a
//!   policy has none in force yet: its creator is judged by role, operation limit and
//!   system scope.
//!
//! A **grant** lets one access key (the grantee) use one key for listed operations,
//! without editing the policy; it is retired by its retiring principal or grantee, or
//! revoked by a key manager. Its operations must each be one its creator may do itself
//! on the key, policy and grants included.

use serde::{Deserialize, Serialize};

use crate::authz::{Op, OpClass, OpSet, Principal, ALL_OPS};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{KeyId, Role, TenantId, UnixMillis};

/// The only policy name (as in AWS).
pub const POLICY_NAME: &str = "default";
/// The policy language version this server writes and accepts.
pub const POLICY_VERSION: &str = "kcm-2026-11";
/// Largest policy document accepted, in bytes (as AWS).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;
/// Largest number of active grants on one key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// Operations a grant may name (as AWS: the key's use, and grant management).
pub const GRANTABLE: &[Op] = &[
    Op::Encrypt,
    Op::Decrypt,
    Op::ReEncrypt,
    Op::GenerateDataKey,
    Op::GenerateDataKeyWithoutPlaintext,
    Op::GenerateDataKeyPair,
    Op::GenerateDataKeyPairWithoutPlaintext,
    Op::Sign,
    Op::Verify,
    Op::GetPublicKey,
    Op::GenerateMac,
    Op::VerifyMac,
    Op::DeriveSharedSecret,
    Op::DescribeKey,
    Op::CreateGrant,
    Op::RetireGrant,
];

fn malformed(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::MalformedPolicy, message)
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Admits matching callers.
    Allow,
    /// Refuses matching callers, whatever else admits them.
    Deny,
}

/// Who a statement is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalMatch {
    /// Everyone (in the key's tenant).
    Any,
    /// Every access key with this role.
    Role(Role),
    /// One access key.
    AccessKey(String),
}

impl PrincipalMatch {
    fn parse(s: &str) -> Result<Self> {
        if s == "*" {
            return Ok(PrincipalMatch::Any);
        }
        if let Some(role) = s.strip_prefix("role:") {
            return Role::parse(role).map(PrincipalMatch::Role).ok_or_else(|| {
                malformed(format!(
                    "policy principal {s:?} names an unknown role; roles are tenant-admin, key-admin, key-user, auditor"
                ))
            });
        }
        if s.len() == 20 && s.starts_with("KCM") && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(PrincipalMatch::AccessKey(s.to_string()));
        }
        Err(malformed(format!(
            "policy principal {s:?} is not \"*\", \"role:<role>\" or an access key id (KCM…, 20 characters)"
        )))
    }

    fn matches(&self, principal: &Principal) -> bool {
        match self {
            PrincipalMatch::Any => true,
            PrincipalMatch::Role(role) => principal.role == *role,
            PrincipalMatch::AccessKey(id) => principal.access_key_id == *id,
        }
    }
}

/// One statement of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// Optional label, named in denials.
    pub sid: Option<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// Who it is about (any of these).
    pub principals: Vec<PrincipalMatch>,
    /// What it is about.
    pub operations: OpSet,
}

impl Statement {
    fn matches(&self, principal: &Principal, op: Op) -> bool {
        self.operations.contains(op) && self.principals.iter().any(|p| p.matches(principal))
    }

    fn label(&self, index: usize) -> String {
        match &self.sid {
            Some(sid) => format!("statement {sid:?}"),
            None => format!("statement {}", index + 1),
        }
    }
}

/// A parsed key policy, with the document it came from (returned as written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The statements, in document order.
    pub statements: Vec<Statement>,
    /// The JSON document as the caller wrote it.
    pub document: String,
}

/// The wire form, strict: unknown fields are errors naming the field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDocument {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Statement")]
    statement: Vec<StatementDocument>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementDocument {
    #[serde(rename = "Sid", default)]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: Effect,
    #[serde(rename = "Principal")]
    principal: OneOrMany,
    #[serde(rename = "Action")]
    action: OneOrMany,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl KeyPolicy {
    /// Parses and validates a policy document; errors name what is wrong.
    pub fn parse(document: &str) -> Result<Self> {
        if document.len() > MAX_POLICY_BYTES {
            return Err(malformed(format!(
                "the policy is {} bytes; at most {MAX_POLICY_BYTES} are allowed",
                document.len()
            )));
        }
        let doc: PolicyDocument = serde_json::from_str(document)
            .map_err(|e| malformed(format!("the policy is not a valid kcm key policy: {e}")))?;
        if doc.version != POLICY_VERSION {
            return Err(malformed(format!(
                "policy Version must be {POLICY_VERSION:?}, got {:?}",
                doc.version
            )));
        }
        if doc.statement.is_empty() {
            return Err(malformed("the policy has no statements"));
        }
        let mut statements = Vec::with_capacity(doc.statement.len());
        for s in &doc.statement {
            let principals = s
                .principal
                .items()
                .into_iter()
                .map(PrincipalMatch::parse)
                .collect::<Result<Vec<_>>>()?;
            if principals.is_empty() {
                return Err(malformed("a policy statement has an empty Principal list"));
            }
            let actions = s.action.items();
            let operations = if actions.iter().any(|a| *a == "*" || *a == "kms:*") {
                ALL_OPS.iter().copied().collect()
            } else {
                OpSet::parse(actions).map_err(|e| malformed(e.message()))?
            };
            if operations.is_empty() {
                return Err(malformed("a policy statement has an empty Action list"));
            }
            statements.push(Statement {
                sid: s.sid.clone(),
                effect: s.effect,
                principals,
                operations,
            });
        }
        Ok(KeyPolicy {
            statements,
            document: document.to_string(),
        })
    }

    /// What the policy gives: the operations on keys its `Allow` statements name. A
    /// policy is asked only about operations on its key (classes read, manage and use
    /// keys), so other names give nothing; a `Deny` only takes away.
    pub fn allowed_operations(&self) -> OpSet {
        self.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .flat_map(|s| s.operations.iter())
            .filter(|op| {
                matches!(
                    op.class(),
                    OpClass::ReadKeys | OpClass::ManageKeys | OpClass::UseKeys
                )
            })
            .collect()
    }

    /// The policy `GetKeyPolicy` shows for a key that has none: it admits every
    /// principal of the tenant to everything its role allows.
    pub fn role_based_document() -> String {
        format!(
            "{{\"Version\":\"{POLICY_VERSION}\",\"Statement\":[{{\"Sid\":\"RolesDecide\",\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\"}}]}}"
        )
    }
}

/// Whether `principal` may read and replace any key policy of its tenant whatever
/// the policy says (a tenant-admin), so that no policy locks the tenant out of its own
/// key. Such a principal is bounded, when it writes a policy, by its role, operation
/// limit and system scope alone: see the module documentation.
pub fn always_replaces_policy(principal: &Principal) -> bool {
    principal.role == Role::TenantAdmin
}

/// A grant: `grantee` may use `key_id` for `operations`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    /// Grant id (64 hex characters).
    pub id: String,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The key.
    pub key_id: KeyId,
    /// Access key id admitted.
    pub grantee: String,
    /// Access key id that may retire it, if any.
    pub retiring_principal: Option<String>,
    /// What the grantee may do.
    pub operations: OpSet,
    /// Optional name (idempotency: the same name and parameters return the same grant).
    pub name: Option<String>,
    /// Access key id that created it.
    pub issuing_principal: String,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A key's access rules: its policy, if any, and its active grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyAccess {
    /// The key policy (`None`: roles alone decide).
    pub policy: Option<KeyPolicy>,
    /// Active grants.
    pub grants: Vec<GrantRecord>,
}

impl KeyAccess {
    /// Whether the policy and grants admit `principal` to `op` on `key`; the error
    /// names what refused.
    pub fn admits(&self, principal: &Principal, op: Op, key: KeyId) -> Result<()> {
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let id = &principal.access_key_id;
        if always_replaces_policy(principal) && matches!(op, Op::GetKeyPolicy | Op::PutKeyPolicy) {
            return Ok(());
        }
        if let Some((i, deny)) = policy
            .statements
            .iter()
            .enumerate()
            .find(|(_, s)| s.effect == Effect::Deny && s.matches(principal, op))
        {
            return Err(Error::denied(format!(
                "access key {id} is denied {op} on key {key} by {} of the key policy",
                deny.label(i)
            )));
        }
        let allowed = policy
            .statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.matches(principal, op))
            || self
                .grants
                .iter()
                .any(|g| g.grantee == *id && g.operations.contains(op));
        if allowed {
            Ok(())
        } else {
            Err(Error::denied(format!(
                "access key {id} is not allowed {op} on key {key} by its key policy or any grant"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(id: &str, role: Role) -> Principal {
        Principal {
            access_key_id: id.into(),
            tenant_id: None,
            account_id: String::new(),
            role,
            system_scope: None,
            operations: None,
        }
    }

    const APP: &str = "KCMAPPAAAAAAAAAAAAAA";
    const OTHER: &str = "KCMOTHERAAAAAAAAAAAA";

    /// The key user the policies of these tests name (and grants go to).
    fn app_user() -> Principal {
        principal(APP, Role::KeyUser)
    }

    /// A key user no policy or grant of these tests names.
    fn other_user() -> Principal {
        principal(OTHER, Role::KeyUser)
    }

    fn policy(json: &str) -> KeyAccess {
        KeyAccess {
            policy: Some(KeyPolicy::parse(json).unwrap()),
            grants: vec![],
        }
    }

    /// A grant to `APP`, issued by `OTHER`, of `op` on `key`.
    fn grant_to_app(key: KeyId, op: Op) -> GrantRecord {
        GrantRecord {
            id: "g".into(),
            tenant_id: TenantId::new_random(),
            key_id: key,
            grantee: APP.into(),
            retiring_principal: None,
            operations: [op].into_iter().collect(),
            name: None,
            issuing_principal: OTHER.into(),
            created_at: 0,
        }
    }

    #[test]
    fn no_policy_means_roles_decide() {
        let access = KeyAccess::default();
        assert!(access
            .admits(&app_user(), Op::Encrypt, KeyId::new_random())
            .is_ok());
    }

    #[test]
    fn allow_admits_only_the_named_principals_and_operations() {
        let access = policy(&format!(
            r#"{{"Version":"{POLICY_VERSION}","Statement":[{{"Effect":"Allow","Principal":"{APP}","Action":["kms:Encrypt","Decrypt"]}}]}}"#
        ));
        let key = KeyId::new_random();
        assert!(access.admits(&app_user(), Op::Encrypt, key).is_ok());
        assert!(access
            .admits(&app_user(), Op::GenerateDataKey, key)
            .is_err());
        let err = access.admits(&other_user(), Op::Encrypt, key).unwrap_err();
        assert!(err.message().contains("not allowed Encrypt"), "{err}");
    }

    #[test]
    fn deny_wins_over_allow_and_grants() {
        let mut access = policy(&format!(
            r#"{{"Version":"{POLICY_VERSION}","Statement":[
                {{"Effect":"Allow","Principal":"*","Action":"*"}},
                {{"Sid":"nodecrypt","Effect":"Deny","Principal":"role:key-user","Action":"Decrypt"}}]}}"#
        ));
        access
            .grants
            .push(grant_to_app(KeyId::new_random(), Op::Decrypt));
        let key = KeyId::new_random();
        let err = access.admits(&app_user(), Op::Decrypt, key).unwrap_err();
        assert!(err.message().contains("\"nodecrypt\""), "{err}");
        assert!(access
            .admits(&principal(APP, Role::KeyAdmin), Op::Decrypt, key)
            .is_ok());
    }

    #[test]
    fn grants_admit_their_grantee_for_their_operations() {
        let mut access = policy(&format!(
            r#"{{"Version":"{POLICY_VERSION}","Statement":[{{"Effect":"Allow","Principal":"role:key-admin","Action":"*"}}]}}"#
        ));
        let key = KeyId::new_random();
        assert!(access.admits(&app_user(), Op::Encrypt, key).is_err());
        access.grants.push(grant_to_app(key, Op::Encrypt));
        assert!(access.admits(&app_user(), Op::Encrypt, key).is_ok());
        assert!(access.admits(&app_user(), Op::Decrypt, key).is_err());
        assert!(access.admits(&other_user(), Op::Encrypt, key).is_err());
    }

    #[test]
    fn tenant_admins_can_always_fix_the_policy() {
        let access = policy(&format!(
            r#"{{"Version":"{POLICY_VERSION}","Statement":[{{"Effect":"Deny","Principal":"*","Action":"*"}}]}}"#
        ));
        let key = KeyId::new_random();
        let admin = principal(APP, Role::TenantAdmin);
        assert!(access.admits(&admin, Op::PutKeyPolicy, key).is_ok());
        assert!(access.admits(&admin, Op::GetKeyPolicy, key).is_ok());
        assert!(access.admits(&admin, Op::Encrypt, key).is_err());
    }

    #[test]
    fn a_policy_gives_the_key_operations_its_allow_statements_name() {
        let p = KeyPolicy::parse(&format!(
            r#"{{"Version":"{POLICY_VERSION}","Statement":[
                {{"Effect":"Allow","Principal":"*","Action":["Encrypt","DescribeKey","CreateSystem"]}},
                {{"Effect":"Deny","Principal":"*","Action":"Decrypt"}}]}}"#
        ))
        .unwrap();
        // CreateSystem acts on no key, and a Deny gives nothing.
        let given: Vec<Op> = p.allowed_operations().iter().collect();
        assert_eq!(given, [Op::DescribeKey, Op::Encrypt]);
        // `*` gives every operation on keys, and nothing else.
        let all = KeyPolicy::parse(&KeyPolicy::role_based_document())
            .unwrap()
            .allowed_operations();
        for op in ALL_OPS {
            let on_keys = matches!(
                op.class(),
                OpClass::ReadKeys | OpClass::ManageKeys | OpClass::UseKeys
            );
            assert_eq!(all.contains(*op), on_keys, "{op}");
        }
    }

    #[test]
    fn bad_documents_are_refused_naming_the_problem() {
        let v = POLICY_VERSION;
        for (doc, needle) in [
            ("not json".to_string(), "not a valid kcm key policy"),
            (
                r#"{"Version":"2012-10-17","Statement":[]}"#.to_string(),
                "Version must be",
            ),
            (
                format!(r#"{{"Version":"{v}","Statement":[]}}"#),
                "no statements",
            ),
            (
                format!(
                    r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"*","Action":"Fly"}}]}}"#
                ),
                "\"Fly\"",
            ),
            (
                format!(
                    r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"bob","Action":"*"}}]}}"#
                ),
                "\"bob\"",
            ),
            (
                format!(
                    r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"role:king","Action":"*"}}]}}"#
                ),
                "unknown role",
            ),
            (
                format!(
                    r#"{{"Version":"{v}","Statement":[{{"Effect":"Maybe","Principal":"*","Action":"*"}}]}}"#
                ),
                "Maybe",
            ),
            (
                format!(
                    r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"*","Action":"*","Condition":{{}}}}]}}"#
                ),
                "Condition",
            ),
        ] {
            let err = KeyPolicy::parse(&doc).unwrap_err();
            assert!(err.message().contains(needle), "{doc}: {err}");
        }
        assert!(KeyPolicy::parse(&KeyPolicy::role_based_document()).is_ok());
    }
}
