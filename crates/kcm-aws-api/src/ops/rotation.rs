//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations.

use serde::{Deserialize, Serialize};

use super::{check_limit, empty, reply, Ctx, PageEnd, Request};
use crate::codec::epoch_seconds;
use crate::error::AwsError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnableKeyRotation {
    key_id: String,
    rotation_period_in_days: Option<i64>,
}

/// EnableKeyRotation.
pub async fn enable_key_rotation(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: EnableKeyRotation = body.parse()?;
    let period = req
        .rotation_period_in_days
        .map(|d| {
            u32::try_from(d).map_err(|_| {
                AwsError::validation(format!(
                    "RotationPeriodInDays must be between 90 and 2560, got {d}"
                ))
            })
        })
        .transpose()?;
    ctx.service
        .enable_key_rotation(ctx.caller, &ctx.key(&req.key_id)?, period)
        .await?;
    empty()
}

/// DisableKeyRotation.
pub async fn disable_key_rotation(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    ctx.service.disable_key_rotation(ctx.caller, &key).await?;
    empty()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RotationStatusResponse {
    key_rotation_enabled: bool,
    key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_period_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_rotation_date: Option<f64>,
}

/// GetKeyRotationStatus.
pub async fn get_key_rotation_status(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    let status = ctx.service.key_rotation_status(ctx.caller, &key).await?;
    reply(&RotationStatusResponse {
        key_rotation_enabled: status.enabled,
        key_id: ctx.arn(status.key_id),
        rotation_period_in_days: status.period_days,
        next_rotation_date: status.next_rotation_at.map(epoch_seconds),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RotateResponse {
    key_id: String,
}

/// RotateKeyOnDemand.
pub async fn rotate_key_on_demand(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    let id = ctx.service.rotate_key_on_demand(ctx.caller, &key).await?;
    reply(&RotateResponse {
        key_id: id.to_string(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeyRotations {
    key_id: String,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RotationEntry {
    key_id: String,
    /// The material the rotation made current.
    key_material_id: String,
    rotation_date: f64,
    rotation_type: &'static str,
    /// The key version the rotation made (a kcm extension: GetPublicKey's
    /// `KcmKeyVersion` takes it; AWS SDKs ignore members they do not know).
    kcm_key_version: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeyRotationsResponse {
    rotations: Vec<RotationEntry>,
    #[serde(flatten)]
    page_end: PageEnd,
}

/// ListKeyRotations.
pub async fn list_key_rotations(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ListKeyRotations = body.parse()?;
    let (rotations, next_marker) = ctx
        .service
        .list_key_rotations(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            check_limit(req.limit, 1000)?,
            req.marker.as_deref(),
        )
        .await?;
    reply(&ListKeyRotationsResponse {
        rotations: rotations
            .into_iter()
            .map(|r| RotationEntry {
                key_id: r.key_id.to_string(),
                key_material_id: r.key_id.material_id(r.version),
                rotation_date: epoch_seconds(r.rotated_at),
                kcm_key_version: r.version,
                rotation_type: match r.origin {
                    kcm_core::model::VersionOrigin::AutomaticRotation => "AUTOMATIC",
                    _ => "ON_DEMAND",
                },
            })
            .collect(),
        page_end: PageEnd::at(next_marker),
    })
}
