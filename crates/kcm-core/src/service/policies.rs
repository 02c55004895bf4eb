//! Key policies and grants (see [`crate::policy`] for what they mean): reading and
//! replacing a key's policy, and creating, listing, retiring and revoking grants.

use super::resolve::KeyBy;
use super::{now_ms, KeyRef, Service};
use crate::authz::{authorize_giving, authorize_op, Caller, Op, OpSet, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::model::*;
use crate::policy::principal::{user_arn, PrincipalMatch};
use crate::policy::{
    self, always_replaces_policy, GrantConstraints, GrantRecord, KeyAccess, KeyPolicy,
    RequestFacts, GRANTABLE, MAX_GRANTS_PER_KEY, POLICY_NAME,
};
use crate::store::Write;

/// Prefix of the grant tokens this server issues.
const GRANT_TOKEN_PREFIX: &str = "kcm-grant-token-v1.";

/// Parameters of [`Service::create_grant`].
#[derive(Clone, Debug, Default)]
pub struct CreateGrantRequest {
    /// Who the grant admits: an access key id, or an IAM ARN of the tenant's account
    /// (`root`, `role/<role>`, `user/<access key id>`; see [`crate::policy::principal`]).
    pub grantee: String,
    /// Operations (names) it admits.
    pub operations: Vec<String>,
    /// Who may retire it, in the same forms as `grantee`.
    pub retiring_principal: Option<String>,
    /// Optional name; creating the same named grant again returns the existing one.
    pub name: Option<String>,
    /// Constraints on the encryption context of the operations it allows.
    pub constraints: GrantConstraints,
}

/// Largest grant constraint, in bytes of keys and values (as an encryption context).
const MAX_CONSTRAINT_BYTES: usize = 8192;

/// A grant as created: its id and the token naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGrant {
    /// Grant id.
    pub id: String,
    /// Grant token (usable with RetireGrant).
    pub token: String,
}

/// A page of grants.
#[derive(Clone, Debug)]
pub struct GrantPage {
    /// Grants on this page.
    pub grants: Vec<GrantRecord>,
    /// Marker for the next page, if any.
    pub next_marker: Option<String>,
}

/// How RetireGrant names the grant.
#[derive(Clone, Debug)]
pub enum GrantRef {
    /// By the token CreateGrant returned.
    Token(String),
    /// By key and grant id.
    Id {
        /// The key.
        key: KeyRef,
        /// The grant id.
        grant_id: String,
    },
}

/// The token for grant `id`.
pub fn grant_token(id: &str) -> String {
    format!("{GRANT_TOKEN_PREFIX}{id}")
}

fn check_policy_name(name: Option<&str>) -> Result<()> {
    match name {
        None | Some(POLICY_NAME) => Ok(()),
        Some(other) => Err(Error::not_found(format!(
            "key policy {other:?} does not exist; the only policy name is {POLICY_NAME:?}"
        ))),
    }
}

impl Service {
    /// The key's policy document (for a key without one, the role-based default).
    pub async fn get_key_policy(
        &self,
        caller: &Caller,
        key: &KeyRef,
        name: Option<&str>,
    ) -> Result<String> {
        let record = self
            .authorized_record(caller, Op::GetKeyPolicy, key)
            .await?;
        check_policy_name(name)?;
        Ok(record
            .policy
            .unwrap_or_else(|| KeyPolicy::default_document(&caller.principal.account_id)))
    }

    /// The names of the key's policies (always `default`).
    pub async fn list_key_policies(&self, caller: &Caller, key: &KeyRef) -> Result<Vec<String>> {
        self.authorized_record(caller, Op::ListKeyPolicies, key)
            .await?;
        Ok(vec![POLICY_NAME.to_string()])
    }

    /// Replaces the key's policy. Takes effect on every node within the revocation bound.
    /// The policy may allow only operations the caller may do itself on the key (see
    /// [`crate::policy`]: a tenant-admin is judged without the policy in force), and
    /// must let the caller replace it again unless `bypass_lockout` (AWS's lockout
    /// safety check).
    pub async fn put_key_policy(
        &self,
        caller: &Caller,
        key: &KeyRef,
        name: Option<&str>,
        document: &str,
        bypass_lockout: bool,
    ) -> Result<()> {
        check_policy_name(name)?;
        let policy = KeyPolicy::parse(document)?;
        let op = Op::PutKeyPolicy;
        let mut changes = self.lock_changes().await?;
        let (mut record, in_force) = self
            .authorized_record_with_access(caller, op, op.key_use(), key, RequestFacts::NONE)
            .await?;
        let context = self.condition_context(caller, &record, KeyBy::Ref(key), RequestFacts::NONE);
        // A tenant-admin may replace any policy, so the one in force does not bound it.
        let bound = if always_replaces_policy(&caller.principal) {
            KeyAccess::default()
        } else {
            in_force
        };
        authorize_giving(
            &caller.principal,
            policy.allowed_operations(),
            Target::key(record.tenant_id, record.system_id, record.id, &bound).within(&context),
            "allow in a key policy",
        )?;
        policy.check_lockout(&caller.principal, &context, bypass_lockout)?;
        record.policy = Some(policy.document);
        changes
            .commit(vec![Write::PutServiceKey(record.clone())])
            .await?;
        self.keys.remove(&record.id);
        Ok(())
    }

    /// Creates a grant on `key` (or returns the existing grant of the same name and
    /// parameters). Its operations must each be one the caller may do itself on the
    /// key, policy and grants included.
    pub async fn create_grant(
        &self,
        caller: &Caller,
        key: &KeyRef,
        req: CreateGrantRequest,
    ) -> Result<NewGrant> {
        let op = Op::CreateGrant;
        let mut changes = self.lock_changes().await?;
        let facts = RequestFacts::grant(&req.operations);
        let (record, access) = self
            .authorized_record_with_access(caller, op, op.key_use(), key, facts)
            .await?;
        let context = self.condition_context(caller, &record, KeyBy::Ref(key), facts);
        let operations = OpSet::parse(req.operations.iter().map(String::as_str))?;
        if operations.is_empty() {
            return Err(Error::invalid(
                "Operations must name at least one operation",
            ));
        }
        if let Some(op) = operations.iter().find(|op| !GRANTABLE.contains(op)) {
            return Err(Error::invalid(format!(
                "{op} cannot be granted; grantable operations are {}",
                GRANTABLE
                    .iter()
                    .map(|o| o.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        authorize_giving(
            &caller.principal,
            operations,
            Target::key(record.tenant_id, record.system_id, record.id, &access).within(&context),
            "grant",
        )?;
        self.grant_principal(caller, record.tenant_id, &req.grantee, "GranteePrincipal")
            .await?;
        if let Some(retiring) = &req.retiring_principal {
            self.grant_principal(caller, record.tenant_id, retiring, "RetiringPrincipal")
                .await?;
        }
        check_constraints(&req.constraints)?;
        if let Some(name) = &req.name {
            if name.is_empty()
                || name.len() > 256
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c))
            {
                return Err(Error::invalid(
                    "Name must be 1–256 characters of letters, digits and : / _ -",
                ));
            }
        }
        let existing = self.store.grants(record.id).await?;
        if let Some(name) = &req.name {
            if let Some(same) = existing.iter().find(|g| {
                g.name.as_deref() == Some(name)
                    && g.grantee == req.grantee
                    && g.retiring_principal == req.retiring_principal
                    && g.operations == operations
                    && g.constraints == req.constraints
            }) {
                return Ok(NewGrant {
                    id: same.id.clone(),
                    token: grant_token(&same.id),
                });
            }
        }
        if existing.len() >= MAX_GRANTS_PER_KEY {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!("key {} already has {MAX_GRANTS_PER_KEY} grants", record.id),
            ));
        }
        let mut raw = [0u8; 32];
        crate::crypto::fill_random(&mut raw);
        let grant = GrantRecord {
            id: hex::encode(raw),
            tenant_id: record.tenant_id,
            key_id: record.id,
            grantee: req.grantee,
            retiring_principal: req.retiring_principal,
            operations,
            name: req.name,
            issuing_principal: caller.principal.access_key_id.clone(),
            created_at: now_ms(),
            constraints: req.constraints,
        };
        let new = NewGrant {
            id: grant.id.clone(),
            token: grant_token(&grant.id),
        };
        changes.commit(vec![Write::PutGrant(grant)]).await?;
        self.keys.remove(&record.id);
        Ok(new)
    }

    /// A grant's grantee or retiring principal must name principals of the tenant:
    /// one of its access keys (by id or `user/` ARN), a role or the account root.
    async fn grant_principal(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: &str,
        field: &str,
    ) -> Result<()> {
        let account = &caller.principal.account_id;
        let access_key = match name.starts_with("arn:") {
            false => name.to_string(),
            true => match PrincipalMatch::parse_aws(name)
                .map_err(|e| Error::invalid(format!("{field}: {}", e.message())))?
            {
                PrincipalMatch::Account(a)
                | PrincipalMatch::Role {
                    account: Some(a), ..
                } if a == *account => return Ok(()),
                PrincipalMatch::AccessKey {
                    account: Some(a),
                    id,
                } if a == *account => id,
                _ => {
                    return Err(Error::invalid(format!(
                        "{field} {name:?} is not a principal of this tenant's account {account}"
                    )))
                }
            },
        };
        match self.store.access_key(&access_key).await? {
            Some(k) if k.tenant_id == Some(tenant) => Ok(()),
            _ => Err(Error::invalid(format!(
                "{field} {name:?} is not an access key of this tenant, nor an IAM ARN of its account \
                 (arn:aws:iam::{account}:root, :role/<role>, :user/<access key id>)"
            ))),
        }
    }

    /// Grants of `key`, optionally one grant or one grantee's; paged like AWS.
    pub async fn list_grants(
        &self,
        caller: &Caller,
        key: &KeyRef,
        grant_id: Option<&str>,
        grantee: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<GrantPage> {
        let record = self.authorized_record(caller, Op::ListGrants, key).await?;
        let limit = super::keys::page_limit(limit, 100, 50)?;
        let grants: Vec<GrantRecord> = self
            .store
            .grants(record.id)
            .await?
            .into_iter()
            .filter(|g| grant_id.is_none_or(|id| g.id == id))
            .filter(|g| grantee.is_none_or(|p| g.grantee == p))
            .collect();
        page(grants, limit, marker)
    }

    /// Grants of the caller's tenant that `retiring_principal` may retire.
    pub async fn list_retirable_grants(
        &self,
        caller: &Caller,
        retiring_principal: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<GrantPage> {
        let tenant = Self::own_tenant_for(caller, Op::ListRetirableGrants)?;
        let limit = super::keys::page_limit(limit, 100, 50)?;
        // A principal may be named by access key id or by its ARN: both forms find it.
        let mut grants = self
            .store
            .grants_retirable_by(tenant, retiring_principal)
            .await?;
        let account = &caller.principal.account_id;
        let user_prefix = user_arn(account, "");
        let other_form = match retiring_principal.strip_prefix(&user_prefix) {
            Some(id) => Some(id.to_string()),
            None if !retiring_principal.starts_with("arn:") => {
                Some(user_arn(account, retiring_principal))
            }
            None => None,
        };
        if let Some(other_form) = other_form {
            grants.extend(self.store.grants_retirable_by(tenant, &other_form).await?);
            grants.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        }
        if let Some(scope) = caller.principal.system_scope {
            // A system-scoped caller sees only grants on its system's keys.
            let mut visible = Vec::with_capacity(grants.len());
            for g in grants {
                if let Some(k) = self.store.service_key(g.key_id).await? {
                    if k.system_id == scope {
                        visible.push(g);
                    }
                }
            }
            grants = visible;
        }
        page(grants, limit, marker)
    }

    /// Retires a grant. Its retiring principal, or its grantee when the grant
    /// includes RetireGrant, may do so whatever their role (it only takes rights
    /// away); anyone else needs to be allowed RetireGrant on the key.
    pub async fn retire_grant(&self, caller: &Caller, grant: &GrantRef) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let tenant = Self::own_tenant(&caller.principal)?;
        let found = match grant {
            GrantRef::Token(token) => {
                let id = token.strip_prefix(GRANT_TOKEN_PREFIX).ok_or_else(|| {
                    Error::invalid("GrantToken is not a grant token issued by this server")
                })?;
                self.store.grant(id).await?
            }
            GrantRef::Id { key, grant_id } => {
                // A key reference that names nothing (an alias that does not exist,
                // an ARN of another account) has no grants: the answer below, with
                // the role judged first.
                match self.key_id_of(&caller.principal, tenant, key).await {
                    Ok(key_id) => self
                        .store
                        .grant(grant_id)
                        .await?
                        .filter(|g| g.key_id == key_id),
                    Err(e) if e.kind() == ErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                }
            }
        };
        let Some(grant) = found.filter(|g| g.tenant_id == tenant) else {
            // Say "denied" before "not found" to callers whose role could never
            // retire someone else's grant, so they learn nothing about what exists.
            authorize_op(&caller.principal, Op::RetireGrant)?;
            return Err(Error::not_found("the grant does not exist"));
        };
        let me = &caller.principal;
        let named = grant
            .retiring_principal
            .as_deref()
            .is_some_and(|r| policy::names(r, me))
            || (policy::names(&grant.grantee, me) && grant.operations.contains(Op::RetireGrant));
        let limited_out = caller
            .principal
            .operations
            .is_some_and(|ops| !ops.contains(Op::RetireGrant));
        if !named || limited_out {
            self.authorized_record(caller, Op::RetireGrant, &KeyRef::Id(grant.key_id))
                .await?;
        }
        changes
            .commit(vec![Write::DeleteGrant(grant.id.clone())])
            .await?;
        self.keys.remove(&grant.key_id);
        Ok(())
    }

    /// Revokes a grant of `key` (a key manager's action).
    pub async fn revoke_grant(&self, caller: &Caller, key: &KeyRef, grant_id: &str) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let record = self.authorized_record(caller, Op::RevokeGrant, key).await?;
        let grant = self
            .store
            .grant(grant_id)
            .await?
            .filter(|g| g.key_id == record.id)
            .ok_or_else(|| {
                Error::not_found(format!("grant {grant_id} does not exist on key {key}"))
            })?;
        changes.commit(vec![Write::DeleteGrant(grant.id)]).await?;
        self.keys.remove(&record.id);
        Ok(())
    }
}

/// Refuses grant constraints beyond what an encryption context may be.
fn check_constraints(constraints: &GrantConstraints) -> Result<()> {
    for (field, pairs) in [
        (
            "EncryptionContextEquals",
            &constraints.encryption_context_equals,
        ),
        (
            "EncryptionContextSubset",
            &constraints.encryption_context_subset,
        ),
    ] {
        let Some(pairs) = pairs else { continue };
        if pairs.keys().any(|k| k.is_empty()) {
            return Err(Error::invalid(format!(
                "Constraints.{field} has an empty key"
            )));
        }
        let size: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_CONSTRAINT_BYTES {
            return Err(Error::invalid(format!(
                "Constraints.{field} is {size} bytes; at most {MAX_CONSTRAINT_BYTES} are allowed"
            )));
        }
    }
    Ok(())
}

/// One page of `grants` after `marker` (the id of the last grant of the previous page).
fn page(grants: Vec<GrantRecord>, limit: usize, marker: Option<&str>) -> Result<GrantPage> {
    let start = match marker {
        None => 0,
        Some(m) => {
            grants.iter().position(|g| g.id == m).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidMarker,
                    format!("marker {m:?} is not valid"),
                )
            })? + 1
        }
    };
    let rest = &grants[start.min(grants.len())..];
    let next_marker = (rest.len() > limit).then(|| rest[limit - 1].id.clone());
    Ok(GrantPage {
        grants: rest.iter().take(limit).cloned().collect(),
        next_marker,
    })
}
