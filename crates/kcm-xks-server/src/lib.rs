//! # kcm-xks-server
//!
//! The AWS KMS External Key Store (XKS) proxy API (the public "External Key Store
//! Proxy API Specification", v1) as a front door of kcm: AWS KMS — and through it
//! S3, EBS, RDS and every AWS service — keeps the key material of its external keys
//! in kcm, and kcm's kill switch reaches into AWS.
//!
//! `POST <prefix>/kms/xks/v1/keys/<externalKeyId>/metadata|encrypt|decrypt` and
//! `POST <prefix>/kms/xks/v1/health`, JSON, SigV4 with service `kms-xks-proxy` and
//! an access key of kind `xks` (scoped to one kcm system, limited to the four XKS
//! operations). An `externalKeyId` is a kcm key id, or an alias name without
//! `alias/`, of a key in that system. Each request takes the path every door
//! shares ([`kcm_frontdoor::Call`]: the SigV4 head before the body, the body, the
//! signature, one core call, finish with the audit record, which holds AWS KMS's
//! request metadata and whose `client_request_id` is its `kmsRequestId`). The encryption is the core's
//! ([`kcm_core::xks`]); the error names are the specification's ([`error`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod route;
pub mod wire;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use kcm_core::authz::Caller;
use kcm_core::keyspec::{KeySpec, KeyUsage};
use kcm_core::model::CredentialKind;
use kcm_core::service::{xks_key_ref, Service, XksHealth};
use kcm_frontdoor::{Door, FrontDoor, Requested, SigV4Service};
use zeroize::Zeroizing;

use error::{ErrorName, XksError};
use route::Route;
use wire::b64;

/// How audit records and metrics name this front door.
pub const DOOR: Door = Door {
    name: "xks",
    request_id_header: "x-kcm-request-id",
};

/// What requests are signed for: the specification's service name, with access
/// keys of kind `xks`.
pub const SIGNING: SigV4Service = SigV4Service {
    name: "kms-xks-proxy",
    credentials: CredentialKind::Xks,
};

/// The largest request body: 64 KiB. The largest request the specification
/// defines — 4300 bytes of plaintext and 8192 of AAD in Base64 beside metadata of
/// ARNs up to 2048 characters — is under 30 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// The door, shared by all requests.
#[derive(Clone, Debug)]
pub struct XksApi {
    front: FrontDoor,
    prefix: Arc<str>,
}

impl XksApi {
    /// The door over `front`, serving the API under `uri_path_prefix` (checked by
    /// [`config::XksServerSettings::validate`]).
    pub fn new(front: FrontDoor, uri_path_prefix: &str) -> Self {
        Self {
            front,
            prefix: uri_path_prefix.into(),
        }
    }
}

/// The door's router: every path goes to [`handle`], which tells the API's URIs
/// from the others.
pub fn router(api: XksApi) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(api)
}

/// One request: route, begin, POST only, the SigV4 head, the body, the signature,
/// one core call, finish.
pub async fn handle(State(api): State<XksApi>, request: axum::extract::Request) -> Response {
    let route = route::route(&api.prefix, request.uri().path());
    let requested = match &route {
        Ok(route) if request.method() == Method::POST => Requested::Op(route.op()),
        Ok(_) => Requested::Unrecognised("MethodNotAllowed"),
        Err(_) => Requested::Unrecognised("UnknownPath"),
    };
    let mut call = api.front.begin_http(requested, &request);
    let result = async {
        let route = route?;
        if request.method() != Method::POST {
            return Err(XksError::method_not_allowed());
        }
        let (parts, body) = request.into_parts();
        let head = call.sigv4_head(&parts.uri, &parts.headers, SIGNING).await?;
        let body = kcm_frontdoor::read_unproven(&parts, body, MAX_BODY).await?;
        let (_, body) = call.sigv4_body(head, &parts.method, &parts.uri, &parts.headers, body)?;
        match route {
            Route::Health => {
                let metadata = wire::health_metadata(&body);
                record_metadata(&mut call, &metadata);
                health(api.front.service(), admitted(&call)).await
            }
            Route::Key { op, key_id } => {
                let key_id = key_id.map_err(XksError::validation)?;
                require_json(&parts.headers)?;
                key_operation(&mut call, op, &key_id, &body).await
            }
        }
    }
    .await;
    call.finish(result).await
}

/// The caller [`kcm_frontdoor::Call::sigv4_body`] admitted.
fn admitted<'c>(call: &'c kcm_frontdoor::Call<'_>) -> &'c Caller {
    call.caller()
        .expect("a request whose signature holds has an admitted caller")
}

/// Puts AWS KMS's request metadata into the audit record (who behind AWS KMS asked,
/// for which AWS key and operation), and its `kmsRequestId` as the record's client
/// request id, to find a CloudTrail entry's record (when it is an id the audit log
/// takes).
fn record_metadata(call: &mut kcm_frontdoor::Call<'_>, metadata: &wire::RequestMetadata<'_>) {
    if let Some(id) = metadata.kms_request_id.as_deref() {
        call.set_client_request_id(id);
    }
    call.set_audit_detail(metadata.audit_detail());
}

/// The specification: requests are `application/json`.
fn require_json(headers: &http::HeaderMap) -> Result<(), XksError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(XksError::validation(format!(
            "Content-Type must be application/json, got {content_type:?}"
        )))
    }
}

/// GetKeyMetadata, Encrypt or Decrypt on the key `key_id` names.
async fn key_operation(
    call: &mut kcm_frontdoor::Call<'_>,
    op: kcm_core::authz::Op,
    key_id: &str,
    body: &[u8],
) -> Result<Response, XksError> {
    use kcm_core::authz::Op;
    let key = xks_key_ref(key_id);
    match op {
        Op::XksGetKeyMetadata => {
            let request = wire::metadata_request(body)?;
            record_metadata(call, &request);
            let meta = call
                .service()
                .xks_key_metadata(admitted(call), &key, &request.as_core())
                .await?;
            Ok(json(&wire::MetadataResponse {
                key_spec: key_spec(meta.spec),
                key_usage: key_usage(meta.usage),
                key_status: if meta.enabled { "ENABLED" } else { "DISABLED" },
            }))
        }
        Op::XksEncrypt => {
            let request = wire::encrypt_request(body)?;
            record_metadata(call, &request.metadata);
            let out = call
                .service()
                .xks_encrypt(
                    admitted(call),
                    &key,
                    &request.metadata.as_core(),
                    &request.plaintext,
                    &request.aad,
                    request.integrity_value,
                )
                .await?;
            Ok(json(&wire::EncryptResponse {
                ciphertext: b64(&out.sealed.ciphertext),
                ciphertext_metadata: b64(&out.sealed.metadata),
                initialization_vector: b64(&out.sealed.iv),
                authentication_tag: b64(&out.sealed.tag),
                ciphertext_data_integrity_value: out.integrity_value.map(|v| b64(&v)),
            }))
        }
        Op::XksDecrypt => {
            let request = wire::decrypt_request(body)?;
            record_metadata(call, &request.metadata);
            let (_, plaintext) = call
                .service()
                .xks_decrypt(
                    admitted(call),
                    &key,
                    &request.metadata.as_core(),
                    request.sealed(),
                    &request.aad,
                )
                .await?;
            let text = Zeroizing::new(b64(plaintext.expose_secret()));
            Ok(json(&wire::DecryptResponse { plaintext: &text }))
        }
        other => Err(XksError::new(
            ErrorName::Internal,
            format!("{other} is not an operation on a key of the XKS proxy API"),
        )),
    }
}

/// GetHealthStatus: the caller's system's keystore, one entry.
async fn health(service: &Service, caller: &Caller) -> Result<Response, XksError> {
    let XksHealth {
        keystore,
        keystore_kind,
        available,
        ..
    } = service.xks_health(caller).await?;
    Ok(json(&wire::HealthResponse {
        xks_proxy_fleet_size: 1,
        xks_proxy_vendor: "kcm",
        xks_proxy_model: format!("kcm {}", env!("CARGO_PKG_VERSION")),
        ekm_vendor: "kcm",
        ekm_fleet_details: vec![wire::EkmDetails {
            id: keystore,
            model: format!("kcm {keystore_kind} keystore"),
            health_status: if available { "ACTIVE" } else { "UNAVAILABLE" },
        }],
    }))
}

/// A key's spec in the specification's words: `AES_256` for kcm's symmetric keys,
/// which are the only ones version 1 covers; the AWS name of any other.
fn key_spec(spec: KeySpec) -> String {
    match spec {
        KeySpec::SymmetricDefault => "AES_256".into(),
        other => other.as_str().into(),
    }
}

/// A key's usage as the operations it allows.
fn key_usage(usage: KeyUsage) -> Vec<&'static str> {
    match usage {
        KeyUsage::EncryptDecrypt => vec!["ENCRYPT", "DECRYPT"],
        KeyUsage::SignVerify => vec!["SIGN", "VERIFY"],
        KeyUsage::GenerateVerifyMac => vec!["GENERATE_MAC", "VERIFY_MAC"],
        KeyUsage::KeyAgreement => vec!["KEY_AGREEMENT"],
    }
}

/// A JSON answer (200). The body of a Decrypt holds plaintext: it is handed to the
/// connection as is, as every door's answers are.
fn json<T: serde::Serialize>(body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("a response body serialises");
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

#[cfg(test)]
mod tests;
