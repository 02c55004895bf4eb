//! GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial: bring your
//! own key material into a key created with Origin EXTERNAL.

use kcm_core::service::MaterialImport;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{reply, Ctx, Request};
use crate::codec::{b64, blob, epoch_seconds};
use crate::error::AwsError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParametersForImport {
    key_id: String,
    wrapping_algorithm: String,
    wrapping_key_spec: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ParametersForImport {
    key_id: String,
    import_token: String,
    public_key: String,
    parameters_valid_to: f64,
}

/// GetParametersForImport.
pub async fn get_parameters_for_import(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: GetParametersForImport = body.parse()?;
    let (id, params) = ctx
        .service
        .key_import_parameters(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            &req.wrapping_algorithm,
            &req.wrapping_key_spec,
        )
        .await?;
    reply(&ParametersForImport {
        key_id: ctx.arn(id),
        import_token: b64(params.import_token.as_bytes()),
        public_key: b64(&params.public_key_der),
        parameters_valid_to: epoch_seconds(params.expires_at),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportKeyMaterial {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    import_token: Zeroizing<Vec<u8>>,
    #[serde(deserialize_with = "blob")]
    encrypted_key_material: Zeroizing<Vec<u8>>,
    expiration_model: Option<String>,
    valid_to: Option<f64>,
    import_type: Option<String>,
    key_material_description: Option<String>,
    key_material_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImportedKeyMaterial {
    key_id: String,
    key_material_id: String,
}

/// ImportKeyMaterial. `ImportType` `NEW_KEY_MATERIAL` brings a symmetric key the
/// material RotateKeyOnDemand rotates it to; the default is AWS's (new for a key
/// that never had material, else the key's own again).
pub async fn import_key_material(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ImportKeyMaterial = body.parse()?;
    let expires_at = expiry(req.expiration_model.as_deref(), req.valid_to)?;
    if req.key_material_id.is_some() {
        return Err(AwsError::unsupported(
            "KeyMaterialId (kcm reimports a key's current material, whose id DescribeKey \
             shows as CurrentKeyMaterialId; leave it out)",
        ));
    }
    // The shape admits these two values only.
    let kind = req.import_type.as_deref().map(|t| match t {
        "NEW_KEY_MATERIAL" => MaterialImport::New,
        _ => MaterialImport::Existing,
    });
    let _ = req.key_material_description;
    let token = std::str::from_utf8(&req.import_token).unwrap_or_default();
    let (info, version) = ctx
        .service
        .import_key_material(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            token,
            &req.encrypted_key_material,
            expires_at,
            kind,
        )
        .await?;
    reply(&ImportedKeyMaterial {
        key_id: ctx.arn(info.record.id),
        key_material_id: info.record.material_id(version),
    })
}

/// When imported material expires, from `ExpirationModel` and `ValidTo` (epoch
/// seconds): `KEY_MATERIAL_EXPIRES` needs a `ValidTo`, `KEY_MATERIAL_DOES_NOT_EXPIRE`
/// refuses one; without a model, a `ValidTo` means the material expires (AWS's
/// default model) and none means it does not.
fn expiry(model: Option<&str>, valid_to: Option<f64>) -> Result<Option<i64>, AwsError> {
    let at = |seconds: f64| {
        if seconds.is_finite() && seconds > 0.0 && seconds < 1e11 {
            Ok(Some((seconds * 1000.0) as i64))
        } else {
            Err(AwsError::validation(format!(
                "ValidTo {seconds} is not a date"
            )))
        }
    };
    match (model, valid_to) {
        (None | Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), None) => Ok(None),
        (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(_)) => Err(AwsError::validation(
            "ValidTo must be omitted when the key material does not expire",
        )),
        (None | Some("KEY_MATERIAL_EXPIRES"), Some(seconds)) => at(seconds),
        (Some("KEY_MATERIAL_EXPIRES"), None) => Err(AwsError::validation(
            "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES",
        )),
        (Some(other), _) => Err(AwsError::validation(format!(
            "ExpirationModel {other:?} is not KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteImportedKeyMaterial {
    key_id: String,
    key_material_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeletedKeyMaterial {
    key_id: String,
    key_material_id: String,
}

/// DeleteImportedKeyMaterial: the current material, or (by `KeyMaterialId`) the
/// new material waiting for a rotation.
pub async fn delete_imported_key_material(
    ctx: &Ctx<'_>,
    body: Request,
) -> Result<Vec<u8>, AwsError> {
    let req: DeleteImportedKeyMaterial = body.parse()?;
    let key = ctx.key(&req.key_id)?;
    let named = req.key_material_id.as_deref();
    let (key_id, deleted) = ctx
        .service
        .delete_imported_key_material(ctx.caller, &key, named)
        .await?;
    reply(&DeletedKeyMaterial {
        key_id: ctx.arn(key_id),
        key_material_id: deleted,
    })
}
