//! GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial: bring your
//! own key material into a key created with Origin EXTERNAL.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{empty, parse, reply, Ctx};
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
pub async fn get_parameters_for_import(ctx: &Ctx<'_>, body: &[u8]) -> Result<Vec<u8>, AwsError> {
    let req: GetParametersForImport = parse(body)?;
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
}

/// ImportKeyMaterial.
pub async fn import_key_material(ctx: &Ctx<'_>, body: &[u8]) -> Result<Vec<u8>, AwsError> {
    let req: ImportKeyMaterial = parse(body)?;
    let unsupported = AwsError::unsupported;
    match req.expiration_model.as_deref() {
        None | Some("KEY_MATERIAL_DOES_NOT_EXPIRE") if req.valid_to.is_none() => {}
        None | Some("KEY_MATERIAL_DOES_NOT_EXPIRE") => {
            return Err(AwsError::validation(
                "ValidTo must be omitted when the key material does not expire",
            ))
        }
        Some("KEY_MATERIAL_EXPIRES") => {
            return Err(unsupported(
                "key material that expires (KEY_MATERIAL_EXPIRES)",
            ))
        }
        Some(other) => {
            return Err(AwsError::validation(format!(
            "ExpirationModel {other:?} is not KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE"
        )))
        }
    }
    if req
        .import_type
        .as_deref()
        .is_some_and(|t| t != "EXISTING_KEY_MATERIAL")
        || req.key_material_id.is_some()
    {
        return Err(unsupported(
            "importing new key material into an existing key",
        ));
    }
    let _ = req.key_material_description;
    let token = std::str::from_utf8(&req.import_token).unwrap_or_default();
    let info = ctx
        .service
        .import_key_material(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            token,
            &req.encrypted_key_material,
        )
        .await?;
    reply(&ImportedKeyMaterial {
        key_id: ctx.arn(info.record.id),
    })
}

/// DeleteImportedKeyMaterial.
pub async fn delete_imported_key_material(ctx: &Ctx<'_>, body: &[u8]) -> Result<Vec<u8>, AwsError> {
    let key = ctx.requested_key(body)?;
    ctx.service
        .delete_imported_key_material(ctx.caller, &key)
        .await?;
    empty()
}
