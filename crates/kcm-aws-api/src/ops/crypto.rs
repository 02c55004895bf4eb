//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateRandom.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use kcm_core::keyspec::{parse_encryption_algorithm, EncryptionAlgorithm};
use kcm_core::service::ReEncryptRequest;

use super::{reply, Context, Ctx, Request};
use crate::codec::{b64, blob, SecretB64};
use crate::error::AwsError;

const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

/// The encryption algorithm a request names: `None` for SYMMETRIC_DEFAULT (kcm's
/// ciphertext format), else an RSAES-OAEP algorithm, with which an encryption
/// context cannot be bound.
fn rsa_algorithm(
    algorithm: Option<&str>,
    context: &Context,
) -> Result<Option<EncryptionAlgorithm>, AwsError> {
    match parse_encryption_algorithm(algorithm)? {
        EncryptionAlgorithm::SymmetricDefault => Ok(None),
        rsa if context.is_empty() => Ok(Some(rsa)),
        rsa => Err(AwsError::validation(format!(
            "EncryptionContext cannot be used with {rsa}: RSA encryption binds no context"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Encrypt {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    plaintext: Zeroizing<Vec<u8>>,
    #[serde(default)]
    encryption_context: Context,
    encryption_algorithm: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptResponse {
    ciphertext_blob: String,
    key_id: String,
    encryption_algorithm: &'static str,
}

/// Encrypt.
pub async fn encrypt(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: Encrypt = body.parse()?;
    let rsa = rsa_algorithm(req.encryption_algorithm.as_deref(), &req.encryption_context)?;
    let key = ctx.key(&req.key_id)?;
    let (key_id, blob) = match rsa {
        None => {
            ctx.service
                .encrypt(ctx.caller, &key, &req.plaintext, &req.encryption_context)
                .await?
        }
        Some(algorithm) => {
            ctx.service
                .encrypt_asymmetric(ctx.caller, &key, algorithm, &req.plaintext)
                .await?
        }
    };
    reply(&EncryptResponse {
        ciphertext_blob: b64(&blob),
        key_id: ctx.arn(key_id),
        encryption_algorithm: rsa.map_or(SYMMETRIC_DEFAULT, |a| a.as_str()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Decrypt {
    #[serde(deserialize_with = "blob")]
    ciphertext_blob: Zeroizing<Vec<u8>>,
    #[serde(default)]
    encryption_context: Context,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptResponse {
    key_id: String,
    plaintext: SecretB64,
    encryption_algorithm: &'static str,
}

/// Decrypt.
pub async fn decrypt(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: Decrypt = body.parse()?;
    let rsa = rsa_algorithm(req.encryption_algorithm.as_deref(), &req.encryption_context)?;
    let key = ctx.optional_key(req.key_id.as_deref())?;
    if let Some(algorithm) = rsa {
        // An RSA ciphertext is bare OAEP output: it does not name its key.
        let key = key.ok_or_else(|| {
            AwsError::validation(format!("KeyId is required to decrypt with {algorithm}"))
        })?;
        let (key_id, plaintext) = ctx
            .service
            .decrypt_asymmetric(ctx.caller, &key, algorithm, &req.ciphertext_blob)
            .await?;
        return reply(&DecryptResponse {
            key_id: ctx.arn(key_id),
            plaintext: SecretB64::new(plaintext.expose_secret()),
            encryption_algorithm: algorithm.as_str(),
        });
    }
    let out = ctx
        .service
        .decrypt(
            ctx.caller,
            key.as_ref(),
            &req.ciphertext_blob,
            &req.encryption_context,
        )
        .await?;
    reply(&DecryptResponse {
        key_id: ctx.arn(out.key_id),
        plaintext: SecretB64::new(out.plaintext.expose_secret()),
        encryption_algorithm: SYMMETRIC_DEFAULT,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncrypt {
    #[serde(deserialize_with = "blob")]
    ciphertext_blob: Zeroizing<Vec<u8>>,
    #[serde(default)]
    source_encryption_context: Context,
    source_key_id: Option<String>,
    destination_key_id: String,
    #[serde(default)]
    destination_encryption_context: Context,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptResponse {
    ciphertext_blob: String,
    source_key_id: String,
    key_id: String,
    source_encryption_algorithm: &'static str,
    destination_encryption_algorithm: &'static str,
}

/// ReEncrypt (either side may be SYMMETRIC_DEFAULT or RSAES-OAEP).
pub async fn re_encrypt(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ReEncrypt = body.parse()?;
    let source_rsa = rsa_algorithm(
        req.source_encryption_algorithm.as_deref(),
        &req.source_encryption_context,
    )?;
    let destination_rsa = rsa_algorithm(
        req.destination_encryption_algorithm.as_deref(),
        &req.destination_encryption_context,
    )?;
    let source = ctx.optional_key(req.source_key_id.as_deref())?;
    let destination = ctx.key(&req.destination_key_id)?;
    let out = ctx
        .service
        .re_encrypt(
            ctx.caller,
            ReEncryptRequest {
                ciphertext: &req.ciphertext_blob,
                source_key: source.as_ref(),
                source_context: &req.source_encryption_context,
                source_algorithm: source_rsa.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
                destination: &destination,
                destination_context: &req.destination_encryption_context,
                destination_algorithm: destination_rsa
                    .unwrap_or(EncryptionAlgorithm::SymmetricDefault),
            },
        )
        .await?;
    reply(&ReEncryptResponse {
        ciphertext_blob: b64(&out.ciphertext),
        source_key_id: ctx.arn(out.source_key_id),
        key_id: ctx.arn(out.key_id),
        source_encryption_algorithm: source_rsa.map_or(SYMMETRIC_DEFAULT, |a| a.as_str()),
        destination_encryption_algorithm: destination_rsa.map_or(SYMMETRIC_DEFAULT, |a| a.as_str()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKey {
    key_id: String,
    #[serde(default)]
    encryption_context: Context,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
}

/// The data key length a request asks for: exactly one of `KeySpec` and
/// `NumberOfBytes`. (Their values are the shape's to check: `KeySpec` is AES_256 or
/// AES_128, `NumberOfBytes` 1 to 1024.)
fn data_key_len(req: &GenerateDataKey) -> Result<usize, AwsError> {
    match (req.key_spec.as_deref(), req.number_of_bytes) {
        (Some(_), Some(_)) => Err(AwsError::validation(
            "specify KeySpec or NumberOfBytes, not both",
        )),
        (None, None) => Err(AwsError::validation("specify KeySpec or NumberOfBytes")),
        (Some("AES_128"), None) => Ok(16),
        (Some(_), None) => Ok(32),
        (None, Some(n)) => usize::try_from(n).map_err(|_| {
            AwsError::validation(format!("NumberOfBytes must be between 1 and 1024, got {n}"))
        }),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyResponse {
    ciphertext_blob: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<SecretB64>,
    key_id: String,
}

async fn generate(ctx: &Ctx<'_>, body: Request, with_plaintext: bool) -> Result<Vec<u8>, AwsError> {
    let req: GenerateDataKey = body.parse()?;
    let len = data_key_len(&req)?;
    let key_ref = ctx.key(&req.key_id)?;
    let context = &req.encryption_context;
    if with_plaintext {
        let key = ctx
            .service
            .generate_data_key(ctx.caller, &key_ref, len, context)
            .await?;
        reply(&GenerateDataKeyResponse {
            ciphertext_blob: b64(&key.ciphertext),
            plaintext: Some(SecretB64::new(key.plaintext.expose_secret())),
            key_id: ctx.arn(key.key_id),
        })
    } else {
        let (key_id, ciphertext) = ctx
            .service
            .generate_data_key_without_plaintext(ctx.caller, &key_ref, len, context)
            .await?;
        reply(&GenerateDataKeyResponse {
            ciphertext_blob: b64(&ciphertext),
            plaintext: None,
            key_id: ctx.arn(key_id),
        })
    }
}

/// GenerateDataKey.
pub async fn generate_data_key(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    generate(ctx, body, true).await
}

/// GenerateDataKeyWithoutPlaintext.
pub async fn generate_data_key_without_plaintext(
    ctx: &Ctx<'_>,
    body: Request,
) -> Result<Vec<u8>, AwsError> {
    generate(ctx, body, false).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateRandom {
    number_of_bytes: Option<i64>,
    custom_key_store_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateRandomResponse {
    plaintext: SecretB64,
}

/// GenerateRandom.
pub async fn generate_random(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: GenerateRandom = body.parse()?;
    if req.custom_key_store_id.is_some() {
        return Err(AwsError::unsupported("CustomKeyStoreId"));
    }
    let n = req
        .number_of_bytes
        .ok_or_else(|| AwsError::validation("NumberOfBytes is required"))?;
    let n = usize::try_from(n).map_err(|_| {
        AwsError::validation(format!("NumberOfBytes must be between 1 and 1024, got {n}"))
    })?;
    let bytes = ctx.service.generate_random(ctx.caller, n).await?;
    reply(&GenerateRandomResponse {
        plaintext: SecretB64::new(bytes.expose_secret()),
    })
}
