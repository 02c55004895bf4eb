//! GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, and the grant operations CreateGrant,
//! ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant. Policies are in AWS's
//! key-policy language (see `kcm_core::policy`); grantees are access key ids.

use kcm_core::policy::{GrantConstraints, GrantRecord};
use kcm_core::service::{CreateGrantRequest, GrantPage, GrantRef};
use serde::{Deserialize, Serialize};

use super::{check_limit, empty, reply, Ctx, PageEnd, Request};
use crate::codec::epoch_seconds;
use crate::error::AwsError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetKeyPolicy {
    key_id: String,
    policy_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetKeyPolicyResponse {
    policy: String,
    policy_name: &'static str,
}

/// GetKeyPolicy.
pub async fn get_key_policy(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: GetKeyPolicy = body.parse()?;
    let policy = ctx
        .service
        .get_key_policy(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            req.policy_name.as_deref(),
        )
        .await?;
    reply(&GetKeyPolicyResponse {
        policy,
        policy_name: kcm_core::policy::POLICY_NAME,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutKeyPolicy {
    key_id: String,
    policy_name: Option<String>,
    policy: String,
    #[serde(default)]
    bypass_policy_lockout_safety_check: bool,
}

/// PutKeyPolicy.
pub async fn put_key_policy(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: PutKeyPolicy = body.parse()?;
    ctx.service
        .put_key_policy(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            req.policy_name.as_deref(),
            &req.policy,
            req.bypass_policy_lockout_safety_check,
        )
        .await?;
    empty()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeyPolicies {
    key_id: String,
    limit: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeyPoliciesResponse {
    policy_names: Vec<String>,
    #[serde(flatten)]
    page_end: PageEnd,
}

/// ListKeyPolicies.
pub async fn list_key_policies(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ListKeyPolicies = body.parse()?;
    check_limit(req.limit, 1000)?;
    let policy_names = ctx
        .service
        .list_key_policies(ctx.caller, &ctx.key(&req.key_id)?)
        .await?;
    reply(&ListKeyPoliciesResponse {
        policy_names,
        // kcm has one policy per key: the list always fits one page.
        page_end: PageEnd::at(None),
    })
}

/// Grant operation names as AWS spells them, to kcm's (ReEncrypt is one operation).
fn grant_operations(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = match name.as_str() {
            "ReEncryptFrom" | "ReEncryptTo" => "ReEncrypt".to_string(),
            _ => name,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// kcm's operation names back to AWS's.
fn aws_operations(grant: &GrantRecord) -> Vec<&'static str> {
    let mut out = Vec::new();
    for op in grant.operations.iter() {
        match op.as_str() {
            "ReEncrypt" => out.extend(["ReEncryptFrom", "ReEncryptTo"]),
            name => out.push(name),
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrant {
    key_id: String,
    /// Optional in AWS's shape (a service principal may stand in for it, which kcm
    /// does not take), so required here.
    grantee_principal: Option<String>,
    operations: Vec<String>,
    retiring_principal: Option<String>,
    #[serde(default)]
    constraints: GrantConstraints,
    name: Option<String>,
    /// Grants take effect at once in kcm, so tokens are not needed; accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    grant_tokens: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantResponse {
    grant_id: String,
    grant_token: String,
}

/// CreateGrant.
pub async fn create_grant(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: CreateGrant = body.parse()?;
    let grantee = req
        .grantee_principal
        .ok_or_else(|| AwsError::validation("GranteePrincipal is required"))?;
    let grant = ctx
        .service
        .create_grant(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            CreateGrantRequest {
                grantee,
                operations: grant_operations(req.operations),
                retiring_principal: req.retiring_principal,
                name: req.name,
                constraints: req.constraints,
            },
        )
        .await?;
    reply(&CreateGrantResponse {
        grant_id: grant.id,
        grant_token: grant.token,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GrantListEntry {
    key_id: String,
    grant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    creation_date: f64,
    grantee_principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retiring_principal: Option<String>,
    issuing_account: String,
    operations: Vec<&'static str>,
    #[serde(skip_serializing_if = "GrantConstraints::is_empty")]
    constraints: GrantConstraints,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsResponse {
    grants: Vec<GrantListEntry>,
    #[serde(flatten)]
    page_end: PageEnd,
}

fn grant_list(ctx: &Ctx<'_>, page: GrantPage) -> Result<Vec<u8>, AwsError> {
    let account = &ctx.caller.principal.account_id;
    reply(&ListGrantsResponse {
        page_end: PageEnd::at(page.next_marker),
        grants: page
            .grants
            .iter()
            .map(|g| GrantListEntry {
                key_id: ctx.arn(g.key_id),
                grant_id: g.id.clone(),
                name: g.name.clone(),
                creation_date: epoch_seconds(g.created_at),
                grantee_principal: g.grantee.clone(),
                retiring_principal: g.retiring_principal.clone(),
                issuing_account: format!("arn:aws:iam::{account}:root"),
                operations: aws_operations(g),
                constraints: g.constraints.clone(),
            })
            .collect(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrants {
    key_id: String,
    grant_id: Option<String>,
    grantee_principal: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

/// ListGrants.
pub async fn list_grants(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ListGrants = body.parse()?;
    let limit = check_limit(req.limit, 100)?;
    let key = ctx.key(&req.key_id)?;
    let (grant, grantee) = (req.grant_id.as_deref(), req.grantee_principal.as_deref());
    let marker = req.marker.as_deref();
    let page = ctx
        .service
        .list_grants(ctx.caller, &key, grant, grantee, limit, marker);
    grant_list(ctx, page.await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRetirableGrants {
    /// Optional in AWS's shape (as CreateGrant's grantee), required here.
    retiring_principal: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

/// ListRetirableGrants.
pub async fn list_retirable_grants(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ListRetirableGrants = body.parse()?;
    let limit = check_limit(req.limit, 100)?;
    let retiring = req
        .retiring_principal
        .as_ref()
        .ok_or_else(|| AwsError::validation("RetiringPrincipal is required"))?;
    let marker = req.marker.as_deref();
    let page = ctx
        .service
        .list_retirable_grants(ctx.caller, retiring, limit, marker);
    grant_list(ctx, page.await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetireGrant {
    grant_token: Option<String>,
    key_id: Option<String>,
    grant_id: Option<String>,
}

/// RetireGrant.
pub async fn retire_grant(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: RetireGrant = body.parse()?;
    let grant = match (req.grant_token, req.key_id, req.grant_id) {
        (Some(token), None, None) => GrantRef::Token(token),
        (None, Some(key), Some(grant_id)) => GrantRef::Id {
            key: ctx.key(&key)?,
            grant_id,
        },
        _ => {
            return Err(AwsError::validation(
                "give either GrantToken, or KeyId and GrantId",
            ))
        }
    };
    ctx.service.retire_grant(ctx.caller, &grant).await?;
    empty()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeGrant {
    key_id: String,
    grant_id: String,
}

/// RevokeGrant.
pub async fn revoke_grant(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: RevokeGrant = body.parse()?;
    ctx.service
        .revoke_grant(ctx.caller, &ctx.key(&req.key_id)?, &req.grant_id)
        .await?;
    empty()
}
