//! Key policies and grants: who, beyond their role, may do what with one key.
//!
//! A **key policy** is a JSON document in AWS's key-policy language:
//!
//! ```json
//! {
//!   "Version": "2012-10-17",
//!   "Id": "orders",
//!   "Statement": [
//!     { "Sid": "Admins", "Effect": "Allow",
//!       "Principal": {"AWS": "arn:aws:iam::111122223333:role/key-admin"},
//!       "Action": "kms:*", "Resource": "*" },
//!     { "Sid": "App", "Effect": "Allow",
//!       "Principal": {"AWS": "arn:aws:iam::111122223333:user/KCMAPPKEY…"},
//!       "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
//!       "Condition": {"StringEquals": {"kms:EncryptionContext:app": "orders"}} },
//!     { "Sid": "NoDeletes", "Effect": "Deny", "Principal": "*",
//!       "Action": "kms:ScheduleKeyDeletion", "Resource": "*" }
//!   ]
//! }
//! ```
//!
//! - `Statement` is one statement or a list; each has `Effect`, `Principal` or
//!   `NotPrincipal`, `Action` or `NotAction` (`kms:` names, `*` and `?` wildcards, no
//!   regard to case), `Resource` or `NotResource` (`*`, or patterns of the key's ARN)
//!   and optionally `Sid` and `Condition` ([`condition`]). Principals are IAM ARNs:
//!   [`principal`] says which name a kcm tenant, role or access key.
//! - kcm's earlier small form (`"Version": "kcm-2026-11"`, principals `role:<role>`
//!   and bare access key ids, no `Resource`) still parses, so stored policies of that
//!   form keep their meaning; GetKeyPolicy returns every document as written.
//! - **Evaluation, as AWS's:** a `Deny` statement that applies refuses, whatever else
//!   admits; otherwise an `Allow` statement or an active grant must admit. A
//!   statement applies when its principal, action, resource and every condition match.
//! - A key **without** a policy has AWS's default one
//!   ([`KeyPolicy::default_document`]): the account root may do `kms:*` — in kcm, the
//!   roles decide. Roles stay the ceiling either way: a policy or grant never lets a
//!   principal do what its role does not allow.
//! - So that a policy can never lock a tenant out of its own key, a tenant-admin may
//!   always read and replace the policy (`GetKeyPolicy`, `PutKeyPolicy`). AWS's own
//!   **lockout check** holds on top: a policy that would not let its writer replace
//!   it again is refused unless the request bypasses the check
//!   ([`KeyPolicy::lets_update`]).
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

pub mod condition;
mod document;
pub mod principal;

use serde::{Deserialize, Serialize};

use crate::authz::{Op, OpClass, OpSet, Principal, ALL_OPS};
use crate::error::{Error, ErrorKind, Result};
use crate::glob::{self, Wildcards};
use crate::model::{KeyId, Role, TenantId, UnixMillis};
use condition::Condition;
pub use condition::{ConditionContext, Connection, KeyFacts, RequestFacts};
use principal::PrincipalMatch;

/// The only policy name (as in AWS).
pub const POLICY_NAME: &str = "default";
/// The policy language version kcm writes: AWS's current one.
pub const POLICY_VERSION: &str = "2012-10-17";
/// kcm's earlier small policy language, still read (see the module documentation).
pub const KCM_POLICY_VERSION: &str = "kcm-2026-11";
/// Largest policy document accepted, in bytes (as AWS).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;
/// Largest number of active grants on one key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;
/// AWS's words when a policy would lock its writer out.
pub const LOCKOUT_MESSAGE: &str =
    "The new key policy will not allow you to update the key policy in the future.";

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

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Admits matching callers.
    Allow,
    /// Refuses matching callers, whatever else admits them.
    Deny,
}

/// One statement of a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// Optional label, named in denials.
    pub sid: Option<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// Who it is about (any of these), or with `principals_negated` who it is not.
    principals: Vec<PrincipalMatch>,
    principals_negated: bool,
    /// What it is about, or with `actions_negated` what it is not.
    operations: OpSet,
    actions_negated: bool,
    /// Which resources (patterns of the key's ARN; `*` the key itself), negated or
    /// not; `None` in kcm's earlier form, which has no `Resource`: the key itself.
    resources: Option<(Vec<String>, bool)>,
    /// Conditions, all of which must hold.
    conditions: Vec<Condition>,
}

impl Statement {
    /// Whether the statement applies to `principal` doing `op` in `ctx`.
    fn applies(&self, principal: &Principal, op: Op, ctx: &ConditionContext<'_>) -> bool {
        self.names_operation(op)
            && self.principals.iter().any(|p| p.matches(principal)) != self.principals_negated
            && self.names_key(principal, ctx)
            && self.conditions.iter().all(|c| c.holds(principal, ctx))
    }

    fn names_operation(&self, op: Op) -> bool {
        self.operations.contains(op) != self.actions_negated
    }

    /// Whether `Resource` names the key `ctx` is about (in the caller's account: a
    /// key policy governs only keys of its own tenant).
    fn names_key(&self, principal: &Principal, ctx: &ConditionContext<'_>) -> bool {
        let Some((patterns, negated)) = &self.resources else {
            return true;
        };
        let arn = ctx.key.map(|k| k.arn(&principal.account_id));
        let named = patterns.iter().any(|p| {
            p == "*"
                || arn
                    .as_deref()
                    .is_some_and(|arn| glob::matches(p, arn, Wildcards::StarAndQuestionMark))
        });
        named != *negated
    }

    /// The operations the statement names.
    fn named_operations(&self) -> OpSet {
        if self.actions_negated {
            ALL_OPS
                .iter()
                .copied()
                .filter(|op| !self.operations.contains(*op))
                .collect()
        } else {
            self.operations
        }
    }

    fn label(&self, index: usize) -> String {
        match &self.sid {
            Some(sid) => format!("statement {sid:?}"),
            None => format!("statement {}", index + 1),
        }
    }
}

/// A parsed key policy, with the document it came from (returned as written).
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    /// The statements, in document order.
    pub statements: Vec<Statement>,
    /// The JSON document as the caller wrote it.
    pub document: String,
}

/// Two policies are the same when their documents are.
impl PartialEq for KeyPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.document == other.document
    }
}

impl Eq for KeyPolicy {}

impl KeyPolicy {
    /// Parses and validates a policy document; errors name what is wrong.
    pub fn parse(document: &str) -> Result<Self> {
        document::parse(document)
    }

    /// What the policy gives: the operations on keys its `Allow` statements name. A
    /// policy is asked only about operations on its key (classes read, manage and use
    /// keys), so other names give nothing; a `Deny` only takes away.
    pub fn allowed_operations(&self) -> OpSet {
        self.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .flat_map(|s| s.named_operations().iter())
            .filter(|op| {
                matches!(
                    op.class(),
                    OpClass::ReadKeys | OpClass::ManageKeys | OpClass::UseKeys
                )
            })
            .collect()
    }

    /// The policy decision alone (no grants, no exemption): `Err` names the
    /// statement that denies, `Ok(false)` when no statement allows.
    fn decide(
        &self,
        principal: &Principal,
        op: Op,
        ctx: &ConditionContext<'_>,
    ) -> Result<bool, String> {
        if let Some((i, deny)) = self
            .statements
            .iter()
            .enumerate()
            .find(|(_, s)| s.effect == Effect::Deny && s.applies(principal, op, ctx))
        {
            return Err(deny.label(i));
        }
        Ok(self
            .statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.applies(principal, op, ctx)))
    }

    /// AWS's lockout safety check: whether this policy lets `principal` replace it
    /// (`PutKeyPolicy`) in a request like `ctx`.
    pub fn lets_update(&self, principal: &Principal, ctx: &ConditionContext<'_>) -> bool {
        self.decide(principal, Op::PutKeyPolicy, ctx) == Ok(true)
    }

    /// Refuses, with AWS's words, a policy that would not let `principal` replace it
    /// in a request like `ctx` ([`Self::lets_update`]), unless `bypass` (AWS's
    /// `BypassPolicyLockoutSafetyCheck`).
    pub fn check_lockout(
        &self,
        principal: &Principal,
        ctx: &ConditionContext<'_>,
        bypass: bool,
    ) -> Result<()> {
        if bypass || self.lets_update(principal, ctx) {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::MalformedPolicy, LOCKOUT_MESSAGE))
        }
    }

    /// AWS's default key policy, which a key created without one has: the account
    /// root may do everything — in kcm, every principal of the tenant what its role
    /// allows. Formatted as AWS returns it.
    pub fn default_document(account: &str) -> String {
        format!(
            "{{\n  \"Version\" : \"{POLICY_VERSION}\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"{}\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}",
            principal::account_root_arn(account)
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
    /// AWS's grant constraints on the encryption context.
    pub constraints: GrantConstraints,
}

impl GrantRecord {
    /// Whether the grant admits `principal` to `op` in the request `ctx` describes:
    /// it names the principal (an access key id, or an IAM ARN of the tenant, a role
    /// or an access key), allows `op`, and its constraints hold.
    pub fn admits(&self, principal: &Principal, op: Op, ctx: &ConditionContext<'_>) -> bool {
        self.operations.contains(op)
            && names(&self.grantee, principal)
            && self.constraints.hold(ctx.request.encryption_context)
    }
}

/// Whether a grant's grantee or retiring principal `name` (as CreateGrant was given
/// it: an access key id or an IAM ARN) names `principal`.
pub fn names(name: &str, principal: &Principal) -> bool {
    if name == principal.access_key_id {
        return true;
    }
    PrincipalMatch::parse_aws(name).is_ok_and(|m| m.matches(principal))
}

/// AWS's grant constraints: a grant so constrained allows an operation that takes an
/// encryption context (every cryptographic operation with a symmetric key) only when
/// the request's context equals `encryption_context_equals`, and includes every pair
/// of `encryption_context_subset`. Keys are compared without regard to case, values
/// exactly (as AWS). Other operations are not constrained.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GrantConstraints {
    /// The context the request's must equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<std::collections::BTreeMap<String, String>>,
    /// Pairs the request's context must include.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<std::collections::BTreeMap<String, String>>,
}

impl GrantConstraints {
    /// No constraint.
    pub fn is_empty(&self) -> bool {
        self.encryption_context_equals.is_none() && self.encryption_context_subset.is_none()
    }

    /// Whether the constraints hold for a request whose encryption context is
    /// `context` (`None`: an operation that takes none, which they do not constrain).
    pub fn hold(&self, context: Option<&std::collections::BTreeMap<String, String>>) -> bool {
        let Some(context) = context else {
            return true;
        };
        let value_of = |key: &str| {
            context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        };
        let includes = |pairs: &std::collections::BTreeMap<String, String>| {
            pairs.iter().all(|(k, v)| value_of(k) == Some(v))
        };
        self.encryption_context_equals
            .as_ref()
            .is_none_or(|equals| equals.len() == context.len() && includes(equals))
            && self.encryption_context_subset.as_ref().is_none_or(includes)
    }
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
    /// Whether the policy and grants admit `principal` to `op` on `key`, in the
    /// request `ctx` describes; the error names what refused.
    pub fn admits(
        &self,
        principal: &Principal,
        op: Op,
        key: KeyId,
        ctx: &ConditionContext<'_>,
    ) -> Result<()> {
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let id = &principal.access_key_id;
        if always_replaces_policy(principal) && matches!(op, Op::GetKeyPolicy | Op::PutKeyPolicy) {
            return Ok(());
        }
        let allowed = match policy.decide(principal, op, ctx) {
            Err(statement) => {
                return Err(Error::denied(format!(
                    "access key {id} is denied {op} on key {key} by {statement} of the key policy"
                )))
            }
            Ok(allowed) => allowed,
        };
        if allowed || self.grants.iter().any(|g| g.admits(principal, op, ctx)) {
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
            constraints: GrantConstraints::default(),
        }
    }

    #[test]
    fn no_policy_means_roles_decide() {
        let access = KeyAccess::default();
        assert!(access
            .admits(
                &app_user(),
                Op::Encrypt,
                KeyId::new_random(),
                &ConditionContext::NONE
            )
            .is_ok());
    }

    #[test]
    fn allow_admits_only_the_named_principals_and_operations() {
        let access = policy(&format!(
            r#"{{"Version":"{KCM_POLICY_VERSION}","Statement":[{{"Effect":"Allow","Principal":"{APP}","Action":["kms:Encrypt","Decrypt"]}}]}}"#
        ));
        let key = KeyId::new_random();
        assert!(access
            .admits(&app_user(), Op::Encrypt, key, &ConditionContext::NONE)
            .is_ok());
        assert!(access
            .admits(
                &app_user(),
                Op::GenerateDataKey,
                key,
                &ConditionContext::NONE
            )
            .is_err());
        let err = access
            .admits(&other_user(), Op::Encrypt, key, &ConditionContext::NONE)
            .unwrap_err();
        assert!(err.message().contains("not allowed Encrypt"), "{err}");
    }

    #[test]
    fn deny_wins_over_allow_and_grants() {
        let mut access = policy(&format!(
            r#"{{"Version":"{KCM_POLICY_VERSION}","Statement":[
                {{"Effect":"Allow","Principal":"*","Action":"*"}},
                {{"Sid":"nodecrypt","Effect":"Deny","Principal":"role:key-user","Action":"Decrypt"}}]}}"#
        ));
        access
            .grants
            .push(grant_to_app(KeyId::new_random(), Op::Decrypt));
        let key = KeyId::new_random();
        let err = access
            .admits(&app_user(), Op::Decrypt, key, &ConditionContext::NONE)
            .unwrap_err();
        assert!(err.message().contains("\"nodecrypt\""), "{err}");
        assert!(access
            .admits(
                &principal(APP, Role::KeyAdmin),
                Op::Decrypt,
                key,
                &ConditionContext::NONE
            )
            .is_ok());
    }

    #[test]
    fn grants_admit_their_grantee_for_their_operations() {
        let mut access = policy(&format!(
            r#"{{"Version":"{KCM_POLICY_VERSION}","Statement":[{{"Effect":"Allow","Principal":"role:key-admin","Action":"*"}}]}}"#
        ));
        let key = KeyId::new_random();
        assert!(access
            .admits(&app_user(), Op::Encrypt, key, &ConditionContext::NONE)
            .is_err());
        access.grants.push(grant_to_app(key, Op::Encrypt));
        assert!(access
            .admits(&app_user(), Op::Encrypt, key, &ConditionContext::NONE)
            .is_ok());
        assert!(access
            .admits(&app_user(), Op::Decrypt, key, &ConditionContext::NONE)
            .is_err());
        assert!(access
            .admits(&other_user(), Op::Encrypt, key, &ConditionContext::NONE)
            .is_err());
    }

    #[test]
    fn tenant_admins_can_always_fix_the_policy() {
        let access = policy(&format!(
            r#"{{"Version":"{KCM_POLICY_VERSION}","Statement":[{{"Effect":"Deny","Principal":"*","Action":"*"}}]}}"#
        ));
        let key = KeyId::new_random();
        let admin = principal(APP, Role::TenantAdmin);
        assert!(access
            .admits(&admin, Op::PutKeyPolicy, key, &ConditionContext::NONE)
            .is_ok());
        assert!(access
            .admits(&admin, Op::GetKeyPolicy, key, &ConditionContext::NONE)
            .is_ok());
        assert!(access
            .admits(&admin, Op::Encrypt, key, &ConditionContext::NONE)
            .is_err());
    }

    #[test]
    fn a_policy_gives_the_key_operations_its_allow_statements_name() {
        let p = KeyPolicy::parse(&format!(
            r#"{{"Version":"{KCM_POLICY_VERSION}","Statement":[
                {{"Effect":"Allow","Principal":"*","Action":["Encrypt","DescribeKey","CreateSystem"]}},
                {{"Effect":"Deny","Principal":"*","Action":"Decrypt"}}]}}"#
        ))
        .unwrap();
        // CreateSystem acts on no key, and a Deny gives nothing.
        let given: Vec<Op> = p.allowed_operations().iter().collect();
        assert_eq!(given, [Op::DescribeKey, Op::Encrypt]);
        // `*` gives every operation on keys, and nothing else.
        let all = KeyPolicy::parse(&KeyPolicy::default_document("111122223333"))
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
        let v = KCM_POLICY_VERSION;
        for (doc, needle) in [
            ("not json".to_string(), "not valid JSON"),
            (
                r#"{"Version":"2012-10-18","Statement":[]}"#.to_string(),
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
                    r#"{{"Version":"{v}","Statement":[{{"Effect":"Allow","Principal":"*","Action":"*","Conditions":{{}}}}]}}"#
                ),
                "\"Conditions\"",
            ),
        ] {
            let err = KeyPolicy::parse(&doc).unwrap_err();
            assert!(err.message().contains(needle), "{doc}: {err}");
        }
        assert!(KeyPolicy::parse(&KeyPolicy::default_document("111122223333")).is_ok());
    }

    /// A principal of account `ACCOUNT`.
    fn in_account(id: &str, role: Role) -> Principal {
        Principal {
            account_id: ACCOUNT.into(),
            ..principal(id, role)
        }
    }

    const ACCOUNT: &str = "111122223333";

    fn aws_policy(statements: &str) -> KeyAccess {
        policy(&format!(
            r#"{{"Version":"2012-10-17","Id":"t","Statement":[{statements}]}}"#
        ))
    }

    fn key_facts(id: KeyId) -> KeyFacts<'static> {
        KeyFacts {
            id,
            region: "eu-west-1",
            spec: crate::keyspec::KeySpec::SymmetricDefault,
            usage: crate::keyspec::KeyUsage::EncryptDecrypt,
            origin: crate::keyspec::KeyOrigin::AwsKms,
        }
    }

    #[test]
    fn the_default_policy_lets_every_principal_of_the_account_do_what_its_role_allows() {
        let access = policy(&KeyPolicy::default_document(ACCOUNT));
        let key = KeyId::new_random();
        for role in [Role::KeyUser, Role::KeyAdmin, Role::Auditor] {
            let p = in_account(APP, role);
            for op in [Op::Encrypt, Op::PutKeyPolicy, Op::ScheduleKeyDeletion] {
                assert!(access.admits(&p, op, key, &ConditionContext::NONE).is_ok());
            }
        }
        // Another account's principal is not the root of this one.
        assert!(access
            .admits(
                &principal(APP, Role::KeyUser),
                Op::Encrypt,
                key,
                &ConditionContext::NONE
            )
            .is_err());
        let p = KeyPolicy::parse(&KeyPolicy::default_document(ACCOUNT)).unwrap();
        assert!(p.lets_update(&in_account(APP, Role::KeyUser), &ConditionContext::NONE));
    }

    #[test]
    fn aws_statements_match_roles_users_actions_with_wildcards_and_resources() {
        let key = KeyId::new_random();
        let other_key = KeyId::new_random();
        let access = aws_policy(&format!(
            r#"{{"Sid":"Use","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::{ACCOUNT}:role/key-user"]}},
                "Action":["kms:Encrypt","KMS:generatedatakey*"],"Resource":"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{key}"}},
               {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/{OTHER}"}},
                "NotAction":"kms:Decrypt","Resource":"*"}},
               {{"Sid":"Logs","Effect":"Allow","Principal":{{"Service":"logs.amazonaws.com"}},"Action":"kms:*","Resource":"*"}}"#
        ));
        let user = in_account(APP, Role::KeyUser);
        let ctx = ConditionContext {
            key: Some(key_facts(key)),
            ..ConditionContext::NONE
        };
        let elsewhere = ConditionContext {
            key: Some(key_facts(other_key)),
            ..ConditionContext::NONE
        };
        assert!(access.admits(&user, Op::Encrypt, key, &ctx).is_ok());
        assert!(access
            .admits(&user, Op::GenerateDataKeyWithoutPlaintext, key, &ctx)
            .is_ok());
        assert!(access.admits(&user, Op::Decrypt, key, &ctx).is_err());
        // The Resource names one key: the same statement on another key is silent.
        assert!(access
            .admits(&user, Op::Encrypt, other_key, &elsewhere)
            .is_err());
        let admin = in_account(OTHER, Role::KeyAdmin);
        assert!(access
            .admits(&admin, Op::ScheduleKeyDeletion, key, &ctx)
            .is_ok());
        assert!(access.admits(&admin, Op::Decrypt, key, &ctx).is_err());
        // The statements give what they name, NotAction's complement included.
        let given = access.policy.as_ref().unwrap().allowed_operations();
        assert!(given.contains(Op::ScheduleKeyDeletion) && given.contains(Op::Decrypt));
    }

    #[test]
    fn not_principal_and_conditions_narrow_a_statement() {
        let key = KeyId::new_random();
        let access = aws_policy(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}},
               {{"Sid":"OnlyOrders","Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:iam::{ACCOUNT}:role/key-admin"}},
                "Action":"kms:Decrypt","Resource":"*",
                "Condition":{{"StringNotEquals":{{"kms:EncryptionContext:app":"orders"}}}}}}"#
        ));
        let orders = [("app".to_string(), "orders".to_string())]
            .into_iter()
            .collect();
        let billing = [("app".to_string(), "billing".to_string())]
            .into_iter()
            .collect();
        let with = |ec| ConditionContext {
            request: RequestFacts {
                encryption_context: Some(ec),
                ..RequestFacts::NONE
            },
            ..ConditionContext::NONE
        };
        let user = in_account(APP, Role::KeyUser);
        assert!(access
            .admits(&user, Op::Decrypt, key, &with(&orders))
            .is_ok());
        let err = access
            .admits(&user, Op::Decrypt, key, &with(&billing))
            .unwrap_err();
        assert!(err.message().contains("\"OnlyOrders\""), "{err}");
        // No context at all: StringNotEquals holds on an absent key, so the Deny applies.
        assert!(access
            .admits(&user, Op::Decrypt, key, &ConditionContext::NONE)
            .is_err());
        // The key admin is not the statement's principal.
        let admin = in_account(APP, Role::KeyAdmin);
        assert!(access
            .admits(&admin, Op::Decrypt, key, &with(&billing))
            .is_ok());
    }

    #[test]
    fn the_lockout_check_asks_whether_the_writer_could_replace_the_policy() {
        let p = |statements: &str| {
            KeyPolicy::parse(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
            ))
            .unwrap()
        };
        let admin = in_account(APP, Role::KeyAdmin);
        let ctx = ConditionContext::NONE;
        let only_users = p(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:role/key-user"}},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert!(!only_users.lets_update(&admin, &ctx));
        let root = p(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{ACCOUNT}"}},"Action":"kms:Put*","Resource":"*"}}"#
        ));
        assert!(root.lets_update(&admin, &ctx));
        let denied = p(
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
               {"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*"}"#,
        );
        assert!(!denied.lets_update(&admin, &ctx));
    }

    #[test]
    fn aws_documents_are_refused_naming_what_is_wrong() {
        let doc =
            |statement: &str| format!(r#"{{"Version":"2012-10-17","Statement":{statement}}}"#);
        for (document, needle) in [
            (
                doc(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*"}"#),
                "no Resource",
            ),
            (
                doc(
                    r#"{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"kms:*","Resource":"*"}"#,
                ),
                "both Principal and NotPrincipal",
            ),
            (
                doc(r#"{"Effect":"Allow","Principal":"*","Resource":"*"}"#),
                "no Action",
            ),
            (
                doc(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#),
                "\"s3:GetObject\"",
            ),
            (
                doc(r#"{"Effect":"Allow","Principal":"*","Action":"kms:Fly","Resource":"*"}"#),
                "\"kms:Fly\"",
            ),
            (
                doc(
                    r#"{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"kms:*","Resource":"*"}"#,
                ),
                "\"Federated\"",
            ),
            (
                doc(
                    r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/Admin"},"Action":"kms:*","Resource":"*"}"#,
                ),
                "role/Admin",
            ),
            (
                doc(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"key/1"}"#),
                "\"key/1\"",
            ),
            (
                doc(
                    r#"{"Sid":"c","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:Weather":"sunny"}}}"#,
                ),
                "statement \"c\": condition key \"kms:Weather\"",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#.to_string(),
                "\"Extra\"",
            ),
            (r#"{"Version":"2012-10-17"}"#.to_string(), "no Statement"),
            (r#"[1]"#.to_string(), "JSON object"),
        ] {
            let err = KeyPolicy::parse(&document).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::MalformedPolicy);
            assert!(err.message().contains(needle), "{document}: {err}");
        }
        // One statement as an object, no Version (AWS's 2008 language), wildcards.
        assert!(KeyPolicy::parse(
            r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Schedule*","Resource":"arn:aws:kms:*:*:key/*"}}"#
        )
        .is_ok());
    }

    #[test]
    fn grants_name_their_grantee_by_id_or_arn_and_hold_their_constraints() {
        let key = KeyId::new_random();
        let user = in_account(APP, Role::KeyUser);
        let context = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        fn with(ec: &std::collections::BTreeMap<String, String>) -> ConditionContext<'_> {
            ConditionContext {
                request: RequestFacts {
                    encryption_context: Some(ec),
                    ..RequestFacts::NONE
                },
                ..ConditionContext::NONE
            }
        }
        for grantee in [
            APP.to_string(),
            format!("arn:aws:iam::{ACCOUNT}:user/{APP}"),
            format!("arn:aws:iam::{ACCOUNT}:role/key-user"),
        ] {
            let g = GrantRecord {
                grantee: grantee.clone(),
                ..grant_to_app(key, Op::Encrypt)
            };
            assert!(
                g.admits(&user, Op::Encrypt, &ConditionContext::NONE),
                "{grantee}"
            );
            assert!(!g.admits(
                &in_account(OTHER, Role::KeyAdmin),
                Op::Encrypt,
                &ConditionContext::NONE
            ));
        }
        let equals = GrantRecord {
            constraints: GrantConstraints {
                encryption_context_equals: Some(context(&[("App", "orders")])),
                encryption_context_subset: None,
            },
            ..grant_to_app(key, Op::Encrypt)
        };
        assert!(equals.admits(&user, Op::Encrypt, &with(&context(&[("app", "orders")]))));
        assert!(!equals.admits(&user, Op::Encrypt, &with(&context(&[("app", "Orders")]))));
        assert!(!equals.admits(
            &user,
            Op::Encrypt,
            &with(&context(&[("app", "orders"), ("x", "y")]))
        ));
        assert!(!equals.admits(&user, Op::Encrypt, &with(&context(&[]))));
        // An operation that takes no encryption context is not constrained.
        assert!(equals.admits(&user, Op::Encrypt, &ConditionContext::NONE));
        let subset = GrantRecord {
            constraints: GrantConstraints {
                encryption_context_equals: None,
                encryption_context_subset: Some(context(&[("app", "orders")])),
            },
            ..grant_to_app(key, Op::Encrypt)
        };
        assert!(subset.admits(
            &user,
            Op::Encrypt,
            &with(&context(&[("app", "orders"), ("x", "y")]))
        ));
        assert!(!subset.admits(&user, Op::Encrypt, &with(&context(&[("x", "y")]))));
        let json = serde_json::to_string(&subset.constraints).unwrap();
        assert_eq!(json, r#"{"EncryptionContextSubset":{"app":"orders"}}"#);
        assert_eq!(
            serde_json::from_str::<GrantConstraints>(&json).unwrap(),
            subset.constraints
        );
    }
}
