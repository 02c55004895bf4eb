//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use kcm_core::service::{is_reserved_alias, KeyRef, RESERVED_ALIAS_PREFIX};
use serde::{Deserialize, Serialize};

use super::{check_limit, empty, reply, Ctx, PageEnd, Request};
use crate::error::AwsError;
use crate::ids;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasTarget {
    alias_name: String,
    target_key_id: String,
}

impl AliasTarget {
    /// The alias name and the key it is to name (a key id or ARN, not an alias).
    fn parse(ctx: &Ctx<'_>, body: Request) -> Result<(String, KeyRef), AwsError> {
        let req: AliasTarget = body.parse()?;
        refuse_reserved(&req.alias_name)?;
        let target = ids::parse_key_id_only(&req.target_key_id, ctx.region())?;
        Ok((req.alias_name, target))
    }
}

/// AWS answers an alias under `alias/aws/` (its managed keys') with
/// NotAuthorizedException, whoever asks; the core refuses it too, for every door.
fn refuse_reserved(name: &str) -> Result<(), AwsError> {
    if is_reserved_alias(name) {
        return Err(AwsError::bad_request(
            "NotAuthorizedException",
            format!(
                "{name}: aliases beginning with {RESERVED_ALIAS_PREFIX} are reserved for AWS managed keys; choose another name"
            ),
        ));
    }
    Ok(())
}

/// CreateAlias.
pub async fn create_alias(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let (name, target) = AliasTarget::parse(ctx, body)?;
    ctx.service.create_alias(ctx.caller, &name, &target).await?;
    empty()
}

/// UpdateAlias.
pub async fn update_alias(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let (name, target) = AliasTarget::parse(ctx, body)?;
    ctx.service.update_alias(ctx.caller, &name, &target).await?;
    empty()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteAlias {
    alias_name: String,
}

/// DeleteAlias.
pub async fn delete_alias(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: DeleteAlias = body.parse()?;
    refuse_reserved(&req.alias_name)?;
    ctx.service
        .delete_alias(ctx.caller, &req.alias_name)
        .await?;
    empty()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliases {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AliasEntry {
    alias_name: String,
    alias_arn: String,
    target_key_id: String,
    creation_date: f64,
    last_updated_date: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliasesResponse {
    aliases: Vec<AliasEntry>,
    #[serde(flatten)]
    page_end: PageEnd,
}

/// ListAliases.
pub async fn list_aliases(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ListAliases = body.parse()?;
    let key = ctx.optional_key(req.key_id.as_deref())?;
    let (aliases, next_marker) = ctx
        .service
        .list_aliases(
            ctx.caller,
            key.as_ref(),
            check_limit(req.limit, 100)?,
            req.marker.as_deref(),
        )
        .await?;
    let account = &ctx.caller.principal.account_id;
    reply(&ListAliasesResponse {
        aliases: aliases
            .into_iter()
            .map(|a| AliasEntry {
                alias_arn: ids::alias_arn(ctx.region(), account, &a.name),
                alias_name: a.name,
                target_key_id: a.key_id.to_string(),
                creation_date: crate::codec::epoch_seconds(a.created_at),
                last_updated_date: crate::codec::epoch_seconds(a.updated_at),
            })
            .collect(),
        page_end: PageEnd::at(next_marker),
    })
}
