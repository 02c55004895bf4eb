//! CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion.

use kcm_core::service::CreateKeyRequest;
use serde::{Deserialize, Serialize};

use super::{check_limit, empty, reply, Ctx, KeyMetadataResponse, PageEnd, Request};
use crate::error::AwsError;
use crate::ops::tags::{tags_to_map, Tag};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKey {
    #[serde(default)]
    description: String,
    key_usage: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    origin: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    policy: Option<String>,
    #[serde(default)]
    multi_region: bool,
    #[serde(default)]
    bypass_policy_lockout_safety_check: bool,
    custom_key_store_id: Option<String>,
}

/// CreateKey.
pub async fn create_key(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: CreateKey = body.parse()?;
    if req.multi_region {
        return Err(AwsError::unsupported("a multi-Region key"));
    }
    if req.custom_key_store_id.is_some() {
        return Err(AwsError::unsupported("CustomKeyStoreId"));
    }
    if req.key_spec.is_some() && req.customer_master_key_spec.is_some() {
        return Err(AwsError::validation(
            "specify KeySpec or CustomerMasterKeySpec, not both",
        ));
    }
    let info = ctx
        .service
        .create_key(
            ctx.caller,
            CreateKeyRequest {
                description: req.description,
                key_usage: req.key_usage,
                key_spec: req.key_spec.or(req.customer_master_key_spec),
                origin: req.origin,
                tags: tags_to_map(req.tags)?,
                policy: req.policy,
                bypass_policy_lockout_safety_check: req.bypass_policy_lockout_safety_check,
            },
        )
        .await?;
    reply(&KeyMetadataResponse::new(ctx.region(), &info))
}

/// DescribeKey.
pub async fn describe_key(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    let info = ctx.service.describe_key(ctx.caller, &key).await?;
    reply(&KeyMetadataResponse::new(ctx.region(), &info))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Paging {
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyListEntry {
    key_id: String,
    key_arn: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeysResponse {
    keys: Vec<KeyListEntry>,
    #[serde(flatten)]
    page_end: PageEnd,
}

/// ListKeys.
pub async fn list_keys(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: Paging = body.parse()?;
    let page = ctx
        .service
        .list_keys(
            ctx.caller,
            check_limit(req.limit, 1000)?,
            req.marker.as_deref(),
        )
        .await?;
    reply(&ListKeysResponse {
        keys: page
            .keys
            .iter()
            .map(|id| KeyListEntry {
                key_id: id.to_string(),
                key_arn: ctx.arn(*id),
            })
            .collect(),
        page_end: PageEnd::at(page.next_marker),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateKeyDescription {
    key_id: String,
    description: String,
}

/// UpdateKeyDescription.
pub async fn update_key_description(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: UpdateKeyDescription = body.parse()?;
    ctx.service
        .update_key_description(ctx.caller, &ctx.key(&req.key_id)?, req.description)
        .await?;
    empty()
}

/// EnableKey.
pub async fn enable_key(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    ctx.service.enable_key(ctx.caller, &key).await?;
    empty()
}

/// DisableKey.
pub async fn disable_key(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    ctx.service.disable_key(ctx.caller, &key).await?;
    empty()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleKeyDeletion {
    key_id: String,
    pending_window_in_days: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleKeyDeletionResponse {
    key_id: String,
    deletion_date: Option<f64>,
    key_state: &'static str,
    pending_window_in_days: i64,
}

/// ScheduleKeyDeletion.
pub async fn schedule_key_deletion(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ScheduleKeyDeletion = body.parse()?;
    let days = req.pending_window_in_days.unwrap_or(30);
    let days_u32 = u32::try_from(days).map_err(|_| {
        AwsError::validation(format!(
            "PendingWindowInDays must be between 7 and 30, got {days}"
        ))
    })?;
    let info = ctx
        .service
        .schedule_key_deletion(ctx.caller, &ctx.key(&req.key_id)?, Some(days_u32))
        .await?;
    reply(&ScheduleKeyDeletionResponse {
        key_id: ctx.arn(info.record.id),
        deletion_date: info.record.deletion_at.map(crate::codec::epoch_seconds),
        key_state: super::aws_key_state(info.record.lifecycle.state()),
        pending_window_in_days: days,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdResponse {
    key_id: String,
}

/// CancelKeyDeletion.
pub async fn cancel_key_deletion(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    let info = ctx.service.cancel_key_deletion(ctx.caller, &key).await?;
    reply(&KeyIdResponse {
        key_id: ctx.arn(info.record.id),
    })
}
