//! # kcm-aws-api
//!
//! The AWS KMS JSON front door: `POST /` with `X-Amz-Target: TrentService.<Operation>`,
//! `application/x-amz-json-1.1` bodies, SigV4 (service `kms`), and AWS's error shapes.
//!
//! It is thin by design: each request takes the path every door shares
//! ([`kcm_frontdoor::Call`]: authenticate, one call on [`kcm_core::service::Service`],
//! finish with the audit record, request id and metrics); between those steps the door
//! parses the operation's JSON and shapes the answer.
//! Authorisation, lifecycle rules and crypto are the core's; the mapping of core
//! errors to AWS error types is in one function ([`error`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
pub mod error;
pub mod ids;
mod ops;
pub mod shape;

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kcm_core::authz::Op;
use kcm_core::service::Service;
use kcm_frontdoor::{Authenticator, Door, FrontDoor, Metrics, Requested, SigV4Service};

use error::AwsError;
use ops::Ctx;
use shape::Request;

/// The AWS JSON 1.1 content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "TrentService.";
/// How audit records and metrics name this front door, and the header AWS SDKs read
/// the request id from.
pub const DOOR: Door = Door {
    name: "aws",
    request_id_header: "x-amzn-requestid",
};
/// SigV4 service name of the AWS KMS API.
pub const SIGNING_SERVICE: &str = "kms";

/// What the front door needs, shared by all requests.
#[derive(Clone, Debug)]
pub struct AwsApi {
    front: FrontDoor,
}

impl AwsApi {
    /// A front door over `service`.
    pub fn new(service: Arc<Service>, auth: Arc<Authenticator>, metrics: Arc<Metrics>) -> Self {
        Self {
            front: FrontDoor::new(DOOR, service, auth, metrics),
        }
    }
}

/// Serves one request of the AWS KMS API (an operation whose `Op::aws_target` is
/// set): `body` checked against the operation's shape ([`checked`]), then the
/// operation, whose refusals about a key are put in AWS's words.
async fn dispatch(ctx: &Ctx<'_>, body: &[u8]) -> Result<Vec<u8>, AwsError> {
    use ops::*;
    let op = ctx.op;
    let body = checked(op, body)?;
    let answer = match op {
        Op::CreateKey => keys::create_key(ctx, body).await,
        Op::DescribeKey => keys::describe_key(ctx, body).await,
        Op::ListKeys => keys::list_keys(ctx, body).await,
        Op::UpdateKeyDescription => keys::update_key_description(ctx, body).await,
        Op::EnableKey => keys::enable_key(ctx, body).await,
        Op::DisableKey => keys::disable_key(ctx, body).await,
        Op::ScheduleKeyDeletion => keys::schedule_key_deletion(ctx, body).await,
        Op::CancelKeyDeletion => keys::cancel_key_deletion(ctx, body).await,
        Op::CreateAlias => aliases::create_alias(ctx, body).await,
        Op::UpdateAlias => aliases::update_alias(ctx, body).await,
        Op::DeleteAlias => aliases::delete_alias(ctx, body).await,
        Op::ListAliases => aliases::list_aliases(ctx, body).await,
        Op::TagResource => tags::tag_resource(ctx, body).await,
        Op::UntagResource => tags::untag_resource(ctx, body).await,
        Op::ListResourceTags => tags::list_resource_tags(ctx, body).await,
        Op::Encrypt => crypto::encrypt(ctx, body).await,
        Op::Decrypt => crypto::decrypt(ctx, body).await,
        Op::ReEncrypt => crypto::re_encrypt(ctx, body).await,
        Op::GenerateDataKey => crypto::generate_data_key(ctx, body).await,
        Op::GenerateDataKeyWithoutPlaintext => {
            crypto::generate_data_key_without_plaintext(ctx, body).await
        }
        Op::GenerateRandom => crypto::generate_random(ctx, body).await,
        Op::GenerateDataKeyPair => asymmetric::generate_data_key_pair(ctx, body).await,
        Op::GenerateDataKeyPairWithoutPlaintext => {
            asymmetric::generate_data_key_pair_without_plaintext(ctx, body).await
        }
        Op::Sign => asymmetric::sign(ctx, body).await,
        Op::Verify => asymmetric::verify(ctx, body).await,
        Op::GetPublicKey => asymmetric::get_public_key(ctx, body).await,
        Op::GenerateMac => asymmetric::generate_mac(ctx, body).await,
        Op::VerifyMac => asymmetric::verify_mac(ctx, body).await,
        Op::DeriveSharedSecret => asymmetric::derive_shared_secret(ctx, body).await,
        Op::EnableKeyRotation => rotation::enable_key_rotation(ctx, body).await,
        Op::DisableKeyRotation => rotation::disable_key_rotation(ctx, body).await,
        Op::GetKeyRotationStatus => rotation::get_key_rotation_status(ctx, body).await,
        Op::RotateKeyOnDemand => rotation::rotate_key_on_demand(ctx, body).await,
        Op::ListKeyRotations => rotation::list_key_rotations(ctx, body).await,
        Op::GetKeyPolicy => policies::get_key_policy(ctx, body).await,
        Op::PutKeyPolicy => policies::put_key_policy(ctx, body).await,
        Op::ListKeyPolicies => policies::list_key_policies(ctx, body).await,
        Op::CreateGrant => policies::create_grant(ctx, body).await,
        Op::ListGrants => policies::list_grants(ctx, body).await,
        Op::ListRetirableGrants => policies::list_retirable_grants(ctx, body).await,
        Op::RetireGrant => policies::retire_grant(ctx, body).await,
        Op::RevokeGrant => policies::revoke_grant(ctx, body).await,
        Op::GetParametersForImport => import::get_parameters_for_import(ctx, body).await,
        Op::ImportKeyMaterial => import::import_key_material(ctx, body).await,
        Op::DeleteImportedKeyMaterial => import::delete_imported_key_material(ctx, body).await,
        // Operations of other front doors: `Op::from_aws_target` never names them.
        other => Err(unknown_operation(other.as_str())),
    };
    answer.map_err(|e| e.in_aws_words(ctx.region(), &ctx.caller.principal.account_id, op))
}

/// What [`handle`] does with a request once SigV4 has authenticated `caller`: the
/// operation `target` names (without `TrentService.`), `DryRun` refused, then the
/// operation's JSON decoded and served. Only for the fuzz targets and their corpus
/// replay (the `fuzzing` feature): it skips authentication, so no door may call it.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub async fn dispatch_authenticated(
    service: &Service,
    caller: &kcm_core::authz::Caller,
    target: &str,
    body: &[u8],
) -> Result<Vec<u8>, AwsError> {
    let operation = Op::from_aws_target(target).ok_or_else(|| unknown_operation(target))?;
    let ctx = Ctx {
        service,
        caller,
        op: operation,
    };
    dispatch(&ctx, body).await
}

/// The error for an `X-Amz-Target` this front door does not serve.
fn unknown_operation(target: &str) -> AwsError {
    AwsError::bad_request(
        "UnknownOperationException",
        format!("operation {target} is not supported"),
    )
}

/// Largest request body accepted: 128 KiB. The largest legitimate request is a
/// CreateKey with every field at its maximum — a 32 KiB policy (escaped inside the
/// JSON, so larger), an 8192-character description and 50 tags of 128 + 256
/// characters — about 70 KiB (`the_largest_legitimate_request_fits` builds it);
/// ImportKeyMaterial (a 4096-bit wrapped key and its import token) is a few KiB and
/// Encrypt (4096 bytes of plaintext in base64) under 8 KiB.
pub const MAX_BODY: usize = 128 * 1024;

/// The axum handler for `POST /`: the request path every door takes
/// ([`kcm_frontdoor::Call`]): begin, authenticate (SigV4: the head before the body is
/// read, the signature over the body after), one operation on the core, finish
/// (audit record durable before the response goes out, request id, metrics).
pub async fn handle(State(api): State<AwsApi>, request: axum::extract::Request) -> Response {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .and_then(Op::from_aws_target);
    let mut call = api.front.begin_http(
        operation.map_or(Requested::Unrecognised("Unknown"), Requested::Op),
        &request,
    );
    let result = async {
        let (parts, body) = request.into_parts();
        let operation = operation.ok_or_else(|| {
            AwsError::bad_request(
                "UnknownOperationException",
                "X-Amz-Target must name a supported TrentService operation",
            )
        })?;
        let head = call
            .sigv4_head(
                &parts.uri,
                &parts.headers,
                SigV4Service::kcm(SIGNING_SERVICE),
            )
            .await?;
        let body = kcm_frontdoor::read_unproven(&parts, body, MAX_BODY).await?;
        let (caller, body) =
            call.sigv4_body(head, &parts.method, &parts.uri, &parts.headers, body)?;
        let ctx = Ctx {
            service: api.front.service(),
            caller,
            op: operation,
        };
        dispatch(&ctx, &body).await
    }
    .await
    .map(|body| ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response());
    call.finish(result).await
}

/// The request of `op`, checked against the operation's shape (AWS's validation
/// errors), with `DryRun` and the members kcm does not take refused. AWS's `DryRun` asks whether a call would be
/// allowed without making it; kcm does not answer that question, and must not make
/// the call either: such a request is refused whatever the operation.
fn checked(op: Op, body: &[u8]) -> Result<Request, AwsError> {
    let request = Request::check(body, shape::of(op))?;
    if request.dry_run() {
        return Err(AwsError::bad_request(
            "UnsupportedOperationException",
            "DryRun is not supported by kcm: send the request without it",
        ));
    }
    if let Some(why) = request.member_not_taken() {
        return Err(AwsError::bad_request("UnsupportedOperationException", why));
    }
    Ok(request)
}

/// The router of this front door: `POST /`.
pub fn router(api: AwsApi) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::post(handle))
        .with_state(api)
}

#[cfg(test)]
mod tests {
    use super::MAX_BODY;
    use kcm_core::policy::MAX_POLICY_BYTES;

    #[test]
    fn the_largest_legitimate_request_fits() {
        // A CreateKey with every field at the maximum the core accepts: a policy of
        // exactly 32 KiB (its quotes escaped once it is a JSON string), an
        // 8192-character description and 50 tags of 128 + 256 characters.
        let statement = r#"{"Sid":"s","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;
        let mut policy = String::from(r#"{"Version":"2012-10-17","Statement":["#);
        while policy.len() + 2 * statement.len() + 3 < MAX_POLICY_BYTES {
            policy.push_str(statement);
            policy.push(',');
        }
        let pad = MAX_POLICY_BYTES - policy.len() - statement.len() - 2;
        policy.push_str(&statement.replacen(r#""s""#, &format!("\"s{}\"", "x".repeat(pad)), 1));
        policy.push_str("]}");
        assert_eq!(policy.len(), MAX_POLICY_BYTES);
        let tags: Vec<_> = (0..50)
            .map(|i| serde_json::json!({"TagKey": format!("{i:0>128}"), "TagValue": "v".repeat(256)}))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({
            "Policy": policy,
            "Description": "d".repeat(8192),
            "Tags": tags,
            "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "Origin": "AWS_KMS",
            "BypassPolicyLockoutSafetyCheck": true,
            "MultiRegion": false,
        }))
        .unwrap();
        assert!(body.len() <= MAX_BODY, "{} bytes", body.len());
        // Why the limit is not 64 KiB.
        assert!(body.len() > 64 * 1024, "{} bytes", body.len());
    }
}
