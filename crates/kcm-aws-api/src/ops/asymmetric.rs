//! Sign, Verify, GetPublicKey, GenerateMac, VerifyMac, DeriveSharedSecret,
//! GenerateDataKeyPair(WithoutPlaintext).

use kcm_core::keyspec::{
    parse_data_key_pair_spec, parse_message_type, MacAlgorithm, MessageType, SigningAlgorithm, ECDH,
};
use kcm_core::service::KeyRef;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{reply, Context, Ctx, Request};
use crate::codec::{b64, blob, SecretB64};
use crate::error::AwsError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Sign {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    message: Zeroizing<Vec<u8>>,
    message_type: Option<String>,
    signing_algorithm: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SignResponse {
    key_id: String,
    signature: String,
    signing_algorithm: &'static str,
}

/// What Sign and Verify requests name alike: the key, the signing algorithm and
/// what the message is (raw, or already a digest).
trait Signing {
    /// `KeyId`, `SigningAlgorithm` and `MessageType` as sent.
    fn fields(&self) -> (&str, &str, Option<&str>);

    /// Those fields parsed, in the order AWS checks them.
    fn signing(&self, ctx: &Ctx<'_>) -> Result<(KeyRef, SigningAlgorithm, MessageType), AwsError> {
        let (key_id, algorithm, message_type) = self.fields();
        let algorithm = SigningAlgorithm::parse_field("SigningAlgorithm", algorithm)?;
        let message_type = parse_message_type(message_type)?;
        Ok((ctx.key(key_id)?, algorithm, message_type))
    }
}

impl Signing for Sign {
    fn fields(&self) -> (&str, &str, Option<&str>) {
        let message_type = self.message_type.as_deref();
        (&self.key_id, &self.signing_algorithm, message_type)
    }
}

/// Sign.
pub async fn sign(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: Sign = body.parse()?;
    let (key, algorithm, message_type) = req.signing(ctx)?;
    let signed = ctx
        .service
        .sign(ctx.caller, &key, algorithm, message_type, &req.message);
    let out = signed.await?;
    reply(&SignResponse {
        key_id: ctx.arn(out.key_id),
        signature: b64(&out.signature),
        signing_algorithm: algorithm.as_str(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Verify {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    message: Zeroizing<Vec<u8>>,
    message_type: Option<String>,
    #[serde(deserialize_with = "blob")]
    signature: Zeroizing<Vec<u8>>,
    signing_algorithm: String,
}

impl Signing for Verify {
    fn fields(&self) -> (&str, &str, Option<&str>) {
        let message_type = self.message_type.as_deref();
        (&self.key_id, &self.signing_algorithm, message_type)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyResponse {
    key_id: String,
    signature_valid: bool,
    signing_algorithm: &'static str,
}

/// Verify. An invalid signature is `KMSInvalidSignatureException`, as in AWS.
pub async fn verify(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: Verify = body.parse()?;
    let (key, algorithm, message_type) = req.signing(ctx)?;
    let (message, signature) = (&req.message, &req.signature);
    let verified = ctx.service.verify(
        ctx.caller,
        &key,
        algorithm,
        message_type,
        message,
        signature,
    );
    let key_id = verified.await?;
    reply(&VerifyResponse {
        key_id: ctx.arn(key_id),
        signature_valid: true,
        signing_algorithm: algorithm.as_str(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetPublicKeyResponse {
    key_id: String,
    /// The version whose public key this is (a kcm extension).
    kcm_key_version: u32,
    public_key: String,
    customer_master_key_spec: &'static str,
    key_spec: &'static str,
    key_usage: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    encryption_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    signing_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    key_agreement_algorithms: Vec<&'static str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetPublicKey {
    key_id: String,
    /// A kcm extension: the public key of this version (as `ListKeyRotations`
    /// numbers them in `KcmKeyVersion`) rather than the current one.
    kcm_key_version: Option<u32>,
}

/// GetPublicKey (the current version's public key, or `KcmKeyVersion`'s, as
/// SubjectPublicKeyInfo DER).
pub async fn get_public_key(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: GetPublicKey = body.parse()?;
    let out = ctx
        .service
        .get_public_key(ctx.caller, &ctx.key(&req.key_id)?, req.kcm_key_version)
        .await?;
    reply(&GetPublicKeyResponse {
        key_id: ctx.arn(out.key_id),
        kcm_key_version: out.version,
        public_key: b64(&out.public_key),
        customer_master_key_spec: out.spec.as_str(),
        key_spec: out.spec.as_str(),
        key_usage: out.usage.as_str(),
        encryption_algorithms: out.algorithms.encryption,
        signing_algorithms: out.algorithms.signing,
        key_agreement_algorithms: out.algorithms.key_agreement,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateMac {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    message: Zeroizing<Vec<u8>>,
    mac_algorithm: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateMacResponse {
    mac: String,
    mac_algorithm: &'static str,
    key_id: String,
}

/// GenerateMac.
pub async fn generate_mac(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: GenerateMac = body.parse()?;
    let algorithm = MacAlgorithm::parse_field("MacAlgorithm", &req.mac_algorithm)?;
    let key = ctx.key(&req.key_id)?;
    let out = ctx
        .service
        .generate_mac(ctx.caller, &key, algorithm, &req.message)
        .await?;
    reply(&GenerateMacResponse {
        mac: b64(&out.signature),
        mac_algorithm: algorithm.as_str(),
        key_id: ctx.arn(out.key_id),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyMac {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    message: Zeroizing<Vec<u8>>,
    #[serde(deserialize_with = "blob")]
    mac: Zeroizing<Vec<u8>>,
    mac_algorithm: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyMacResponse {
    key_id: String,
    mac_valid: bool,
    mac_algorithm: &'static str,
}

/// VerifyMac. A wrong MAC is `KMSInvalidMacException`, as in AWS.
pub async fn verify_mac(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: VerifyMac = body.parse()?;
    let algorithm = MacAlgorithm::parse_field("MacAlgorithm", &req.mac_algorithm)?;
    let key = ctx.key(&req.key_id)?;
    let verified = ctx
        .service
        .verify_mac(ctx.caller, &key, algorithm, &req.message, &req.mac);
    let key_id = verified.await?;
    reply(&VerifyMacResponse {
        key_id: ctx.arn(key_id),
        mac_valid: true,
        mac_algorithm: algorithm.as_str(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeriveSharedSecret {
    key_id: String,
    key_agreement_algorithm: String,
    #[serde(deserialize_with = "blob")]
    public_key: Zeroizing<Vec<u8>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeriveSharedSecretResponse {
    key_id: String,
    shared_secret: SecretB64,
    key_agreement_algorithm: &'static str,
    key_origin: &'static str,
}

/// DeriveSharedSecret (ECDH; the secret is the shared point's x-coordinate).
pub async fn derive_shared_secret(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: DeriveSharedSecret = body.parse()?;
    if req.key_agreement_algorithm != ECDH {
        return Err(AwsError::validation(format!(
            "KeyAgreementAlgorithm must be ECDH, got {:?}",
            req.key_agreement_algorithm
        )));
    }
    let (key_id, secret) = ctx
        .service
        .derive_shared_secret(ctx.caller, &ctx.key(&req.key_id)?, &req.public_key)
        .await?;
    reply(&DeriveSharedSecretResponse {
        key_id: ctx.arn(key_id),
        shared_secret: SecretB64::new(secret.expose_secret()),
        key_agreement_algorithm: ECDH,
        key_origin: kcm_core::keyspec::KeyOrigin::AwsKms.as_str(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyPair {
    key_id: String,
    key_pair_spec: String,
    #[serde(default)]
    encryption_context: Context,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyPairResponse {
    private_key_ciphertext_blob: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key_plaintext: Option<SecretB64>,
    public_key: String,
    key_id: String,
    key_pair_spec: &'static str,
}

async fn data_key_pair(
    ctx: &Ctx<'_>,
    body: Request,
    without_plaintext: bool,
) -> Result<Vec<u8>, AwsError> {
    let req: GenerateDataKeyPair = body.parse()?;
    let spec = parse_data_key_pair_spec(&req.key_pair_spec)?;
    let out = ctx
        .service
        .generate_data_key_pair(
            ctx.caller,
            &ctx.key(&req.key_id)?,
            spec,
            &req.encryption_context,
            without_plaintext,
        )
        .await?;
    reply(&GenerateDataKeyPairResponse {
        private_key_ciphertext_blob: b64(&out.private_key_ciphertext),
        private_key_plaintext: (!without_plaintext)
            .then(|| SecretB64::new(out.private_key.expose_secret())),
        public_key: b64(&out.public_key),
        key_id: ctx.arn(out.key_id),
        key_pair_spec: spec.as_str(),
    })
}

/// GenerateDataKeyPair.
pub async fn generate_data_key_pair(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    data_key_pair(ctx, body, false).await
}

/// GenerateDataKeyPairWithoutPlaintext.
pub async fn generate_data_key_pair_without_plaintext(
    ctx: &Ctx<'_>,
    body: Request,
) -> Result<Vec<u8>, AwsError> {
    data_key_pair(ctx, body, true).await
}
