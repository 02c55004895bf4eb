//! The door against a real core over the real SQLite store and software keystore,
//! driven request by request with requests signed as AWS KMS signs them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::BodyExt;
use kcm_core::service::{CreateKeyRequest, KeyRef};
use kcm_core::store::Store as _;
use kcm_frontdoor::FrontDoor;
use kcm_test_support::service::ServiceFixture;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{router, XksApi, DOOR};

const PREFIX: &str = "/tenant-a";

struct Fixture {
    service: ServiceFixture,
    app: axum::Router,
    /// The XKS access key id and secret.
    xks: (String, String),
    /// A SYMMETRIC_DEFAULT key in the default system.
    key: String,
}

async fn fixture() -> Fixture {
    fixture_with(kcm_core::config::ServiceConfig::default()).await
}

async fn fixture_with(config: kcm_core::config::ServiceConfig) -> Fixture {
    let service = ServiceFixture::with_config(config).await;
    let front = FrontDoor::alone(DOOR, Arc::clone(&service.service));
    let app = router(XksApi::new(front, PREFIX));
    let new = service
        .service
        .create_xks_access_key(&service.admin(), "default", "AWS KMS".into())
        .await
        .unwrap();
    let key = service
        .service
        .create_key(&service.admin(), CreateKeyRequest::default())
        .await
        .unwrap()
        .record
        .id
        .to_string();
    Fixture {
        xks: (new.info.id.clone(), new.secret.expose_secret().to_string()),
        app,
        key,
        service,
    }
}

fn metadata(op: &str) -> Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": op,
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
    })
}

impl Fixture {
    /// POSTs `body` to `path` under the prefix, signed with `creds` for `service`.
    async fn send(
        &self,
        path: &str,
        body: &Value,
        creds: (&str, &str),
        service: &str,
    ) -> (StatusCode, Value) {
        let uri = format!("{PREFIX}/kms/xks/v1{path}");
        let body = serde_json::to_vec(body).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers.insert(header::HOST, "xks.example.com".parse().unwrap());
        kcm_sigv4::sign(
            &Method::POST,
            &uri.parse().unwrap(),
            &mut headers,
            &body,
            &kcm_sigv4::Credentials::new(creds.0, creds.1),
            "us-east-1",
            service,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .body(Body::from(body))
            .unwrap();
        *request.headers_mut() = headers;
        self.raw(request).await
    }

    async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn xks(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(path, body, (&self.xks.0, &self.xks.1), "kms-xks-proxy")
            .await
    }

    async fn encrypt(&self, key: &str, plaintext: &[u8], aad: &[u8]) -> (StatusCode, Value) {
        let body = json!({
            "requestMetadata": metadata("Encrypt"),
            "plaintext": STANDARD.encode(plaintext),
            "additionalAuthenticatedData": STANDARD.encode(aad),
            "encryptionAlgorithm": "AES_GCM",
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
        });
        self.xks(&format!("/keys/{key}/encrypt"), &body).await
    }

    async fn decrypt(&self, key: &str, sealed: &Value, aad: &[u8]) -> (StatusCode, Value) {
        let body = json!({
            "requestMetadata": metadata("Decrypt"),
            "ciphertext": sealed["ciphertext"],
            "ciphertextMetadata": sealed["ciphertextMetadata"],
            "initializationVector": sealed["initializationVector"],
            "authenticationTag": sealed["authenticationTag"],
            "additionalAuthenticatedData": STANDARD.encode(aad),
            "encryptionAlgorithm": "AES_GCM",
        });
        self.xks(&format!("/keys/{key}/decrypt"), &body).await
    }
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

fn error_name(answer: &(StatusCode, Value)) -> (u16, &str) {
    (
        answer.0.as_u16(),
        answer.1["errorName"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn encrypt_and_decrypt_round_trip_with_the_integrity_value() {
    let f = fixture().await;
    let (status, sealed) = f.encrypt(&f.key, b"a data key", b"context").await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    assert_eq!(b64(&sealed["ciphertext"]).len(), 10);
    assert_eq!(b64(&sealed["initializationVector"]).len(), 12);
    assert_eq!(b64(&sealed["authenticationTag"]).len(), 16);
    let cdiv: Vec<u8> = [
        &b"context"[..],
        &b64(&sealed["ciphertextMetadata"]),
        &b64(&sealed["initializationVector"]),
        &b64(&sealed["ciphertext"]),
        &b64(&sealed["authenticationTag"]),
    ]
    .concat();
    let digest = aws_lc_digest(&cdiv);
    assert_eq!(b64(&sealed["ciphertextDataIntegrityValue"]), digest);

    let (status, opened) = f.decrypt(&f.key, &sealed, b"context").await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    // The audit record holds AWS KMS's request metadata, the request id twice over.
    let records = f
        .service
        .store
        .audit_records(&kcm_core::model::AuditQuery {
            tenant: f.service.admin.principal.tenant_id,
            operation: Some("XksDecrypt".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let decrypt = records.last().unwrap();
    let detail = decrypt.detail.as_ref().unwrap();
    assert_eq!(
        detail["awsPrincipalArn"],
        "arn:aws:iam::123456789012:user/Alice"
    );
    assert_eq!(detail["kmsOperation"], "Decrypt");
    assert_eq!(
        decrypt.client_request_id.as_deref(),
        Some(detail["kmsRequestId"].as_str())
    );
    assert_eq!(decrypt.front_door, "xks");
    assert_eq!(b64(&opened["plaintext"]), b"a data key");

    assert_eq!(
        error_name(&f.decrypt(&f.key, &sealed, b"other").await),
        (400, "InvalidCiphertextException")
    );
    let mut no_metadata = sealed.clone();
    no_metadata["ciphertextMetadata"] = Value::Null;
    assert_eq!(
        error_name(&f.decrypt(&f.key, &no_metadata, b"context").await),
        (400, "InvalidCiphertextException")
    );
}

fn aws_lc_digest(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn metadata_health_and_aliases() {
    let f = fixture().await;
    let (status, meta) = f
        .xks(
            &format!("/keys/{}/metadata", f.key),
            &json!({"requestMetadata": metadata("DescribeKey")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        meta,
        json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"})
    );
    f.service
        .service
        .create_alias(
            &f.service.admin(),
            "alias/xks-1",
            &KeyRef::Id(kcm_core::model::KeyId::parse(&f.key).unwrap()),
        )
        .await
        .unwrap();
    let (status, sealed) = f.encrypt("xks-1", b"via alias", b"").await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    assert_eq!(f.decrypt(&f.key, &sealed, b"").await.0, StatusCode::OK);

    let (status, health) = f
        .xks(
            "/health",
            &json!({"requestMetadata": {"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["xksProxyFleetSize"], 1);
    assert_eq!(health["ekmFleetDetails"][0]["healthStatus"], "ACTIVE");

    let key = KeyRef::Id(kcm_core::model::KeyId::parse(&f.key).unwrap());
    f.service
        .service
        .disable_key(&f.service.admin(), &key)
        .await
        .unwrap();
    let (_, meta) = f
        .xks(
            &format!("/keys/{}/metadata", f.key),
            &json!({"requestMetadata": metadata("DescribeKey")}),
        )
        .await;
    assert_eq!(meta["keyStatus"], "DISABLED");
    assert_eq!(
        error_name(&f.encrypt(&f.key, b"x", b"").await),
        (400, "InvalidStateException")
    );
}

#[tokio::test]
async fn refusals_carry_the_specifications_names() {
    let f = fixture().await;
    // A kcm access key (kind sigv4) signs nothing here, even for the right service.
    let admin = (
        f.service.admin_key.id.clone(),
        f.service.admin_key.secret.clone(),
    );
    let body = json!({"requestMetadata": metadata("DescribeKey")});
    let path = format!("/keys/{}/metadata", f.key);
    assert_eq!(
        error_name(
            &f.send(&path, &body, (&admin.0, &admin.1), "kms-xks-proxy")
                .await
        ),
        (401, "AuthenticationFailedException")
    );
    // The XKS key signed for another service.
    assert_eq!(
        error_name(&f.send(&path, &body, (&f.xks.0, &f.xks.1), "kms").await),
        (401, "AuthenticationFailedException")
    );
    // No signature at all.
    let unsigned = Request::builder()
        .method(Method::POST)
        .uri(format!("{PREFIX}/kms/xks/v1{path}"))
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        error_name(&f.raw(unsigned).await),
        (401, "AuthenticationFailedException")
    );
    // Paths and methods.
    let get = Request::builder()
        .method(Method::GET)
        .uri(format!("{PREFIX}/kms/xks/v1/health"))
        .body(Body::empty())
        .unwrap();
    let response = f.app.clone().oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
    let elsewhere = Request::builder()
        .method(Method::POST)
        .uri("/kms/xks/v1/health")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        error_name(&f.raw(elsewhere).await),
        (404, "InvalidUriPathException")
    );
    // Keys and inputs.
    assert_eq!(
        error_name(&f.encrypt("no-such-alias", b"x", b"").await),
        (404, "KeyNotFoundException")
    );
    assert_eq!(
        error_name(&f.encrypt("bad!id", b"x", b"").await),
        (400, "ValidationException")
    );
    assert_eq!(
        error_name(&f.encrypt(&f.key, &[0; 4301], b"").await),
        (501, "UnsupportedOperationException")
    );
    assert_eq!(
        f.encrypt(&f.key, &[0; 4300], &[1; 8192]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        error_name(&f.encrypt(&f.key, b"x", &[1; 8193]).await),
        (501, "UnsupportedOperationException")
    );
    let no_metadata = json!({"plaintext": "AA==", "encryptionAlgorithm": "AES_GCM"});
    assert_eq!(
        error_name(
            &f.xks(&format!("/keys/{}/encrypt", f.key), &no_metadata)
                .await
        ),
        (400, "ValidationException")
    );
    let rsa = f
        .service
        .service
        .create_key(
            &f.service.admin(),
            CreateKeyRequest {
                key_spec: Some("RSA_2048".into()),
                ..CreateKeyRequest::default()
            },
        )
        .await
        .unwrap()
        .record
        .id
        .to_string();
    assert_eq!(
        error_name(&f.encrypt(&rsa, b"x", b"").await),
        (400, "InvalidKeyUsageException")
    );
}

#[tokio::test]
async fn the_secondary_authorisation_judges_the_request_metadata() {
    let rule = kcm_core::xks_policy::XksRule {
        name: "apps".into(),
        aws_principal_arn: Some(vec!["arn:aws:iam::123456789012:role/app-*".into()]),
        kms_operation: Some(vec!["Encrypt".into(), "GenerateDataKey".into()]),
        ..Default::default()
    };
    let config = kcm_core::config::ServiceConfig {
        xks_policy: kcm_core::xks_policy::XksPolicy::new(vec![rule]).unwrap(),
        ..Default::default()
    };
    let f = fixture_with(config).await;
    // metadata() names Alice, a user: no rule admits her.
    assert_eq!(
        error_name(&f.encrypt(&f.key, b"x", b"").await),
        (403, "AccessDeniedException")
    );
    let mut allowed = json!({
        "requestMetadata": metadata("GenerateDataKey"),
        "plaintext": STANDARD.encode(b"x"),
        "encryptionAlgorithm": "AES_GCM",
    });
    allowed["requestMetadata"]["awsPrincipalArn"] =
        json!("arn:aws:iam::123456789012:role/app-orders");
    let (status, body) = f.xks(&format!("/keys/{}/encrypt", f.key), &allowed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    allowed["requestMetadata"]["kmsOperation"] = json!("ReEncrypt");
    assert_eq!(
        error_name(&f.xks(&format!("/keys/{}/encrypt", f.key), &allowed).await),
        (403, "AccessDeniedException")
    );
    // Health is never judged by it.
    let (status, _) = f
        .xks(
            "/health",
            &json!({"requestMetadata": {"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_key_of_another_system_is_not_found() {
    let f = fixture().await;
    let admin = f.service.admin();
    f.service
        .service
        .create_system(
            &admin,
            &kcm_core::service::NewSystem {
                name: "other".into(),
                link: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let other = f
        .service
        .service
        .create_access_key(
            &admin,
            kcm_core::model::Role::KeyAdmin,
            Some("other"),
            None,
            String::new(),
        )
        .await
        .unwrap();
    let caller = kcm_core::authz::Caller::new(
        f.service
            .service
            .credential(&other.info.id)
            .await
            .unwrap()
            .principal
            .clone(),
    );
    let elsewhere = f
        .service
        .service
        .create_key(&caller, CreateKeyRequest::default())
        .await
        .unwrap()
        .record
        .id
        .to_string();
    assert_eq!(
        error_name(&f.encrypt(&elsewhere, b"x", b"").await),
        (404, "KeyNotFoundException")
    );
    let (status, body) = f.encrypt(&f.key, b"x", b"").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
