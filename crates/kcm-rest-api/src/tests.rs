//! The router against a real core over the real SQLite store and software keystore,
//! driven request by request.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use kcm_frontdoor::{Authenticator, Metrics};
use kcm_test_support::service::ServiceFixture;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{router, RestApi};

struct Fixture {
    /// Keeps the service's data directory.
    _service: ServiceFixture,
    app: axum::Router,
    metrics: Arc<Metrics>,
    /// `<id>:<secret>` of the default tenant's tenant-admin.
    admin: String,
    /// `<id>:<secret>` of the operator's system-admin.
    operator: String,
}

async fn fixture() -> Fixture {
    let service = ServiceFixture::new().await;
    let metrics = Arc::new(Metrics::default());
    let auth = Arc::new(Authenticator::new(Arc::clone(&service.service)));
    let app = router(RestApi::new(
        Arc::clone(&service.service),
        auth,
        Arc::clone(&metrics),
    ));
    Fixture {
        app,
        metrics,
        admin: service.admin_key.bearer(),
        operator: service.operator_key.bearer(),
        _service: service,
    }
}

impl Fixture {
    /// `GET path` as `token`.
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST path` as `token`, with a JSON `body` or none.
    async fn post(&self, path: &str, token: &str, body: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), body).await
    }

    /// `DELETE path` as `token`.
    async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Asserts that `GET path` as `token` succeeds and that its list `list` names
    /// (at least) every one of `expected`.
    async fn assert_lists(&self, path: &str, token: &str, list: &str, expected: &[&str]) {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, StatusCode::OK);
        let names = names(&body, list);
        assert!(expected.iter().all(|e| names.contains(e)), "{names:?}");
    }

    /// Sends one request; `token` becomes `Authorization: Bearer <token>`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Body::from(body.unwrap_or_default().to_string()))
            .unwrap();
        send(&self.app, request).await
    }
}

/// The `name` of every entry of the list `list` in a response body.
fn names<'a>(body: &'a Value, list: &str) -> Vec<&'a str> {
    body[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap())
        .collect()
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, value)
}

fn token_of(access_key: &Value) -> String {
    format!(
        "{}:{}",
        access_key["access_key_id"].as_str().unwrap(),
        access_key["secret_access_key"].as_str().unwrap()
    )
}

/// Asserts a request was refused with `status` and the error code `code`.
fn assert_refused(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_error(body, code);
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{body}"
    );
}

#[tokio::test]
async fn operator_creates_tenants_and_tenant_admins_cannot() {
    let f = fixture().await;
    let (status, body) = f
        .post("/v1/tenants", &f.operator, Some(r#"{"name":"acme"}"#))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tenant = &body["tenant"];
    assert_eq!(tenant["name"], "acme");
    assert_eq!(tenant["account_id"].as_str().unwrap().len(), 12);
    assert!(tenant["created_at"].as_str().unwrap().ends_with('Z'));
    let key = &body["access_key"];
    assert_eq!(key["role"], "tenant-admin");
    assert_eq!(key["tenant_id"], tenant["id"]);
    assert_eq!(key["enabled"], true);
    assert!(key["system"].is_null());
    assert!(key["secret_access_key"].as_str().unwrap().len() >= 40);

    // The new tenant's key works, and sees its own tenant.
    let acme = token_of(key);
    let (status, body) = f.get("/v1/keychain", &acme).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tenant"]["name"], "acme");

    // Names are unique.
    let (status, body) = f
        .post("/v1/tenants", &f.operator, Some(r#"{"name":"acme"}"#))
        .await;
    assert_refused(status, &body, StatusCode::CONFLICT, "AlreadyExists");

    // A tenant-admin is not the operator.
    let (status, body) = f
        .post("/v1/tenants", &f.admin, Some(r#"{"name":"evil"}"#))
        .await;
    assert_refused(status, &body, StatusCode::FORBIDDEN, "AccessDenied");

    // Listing and reading.
    f.assert_lists("/v1/tenants", &f.operator, "tenants", &["default", "acme"])
        .await;
    let (status, body) = f.get("/v1/tenants/acme", &f.operator).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "acme");
    let id = body["id"].as_str().unwrap().to_string();
    let (status, body) = f.get(&format!("/v1/tenants/{id}"), &f.operator).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("acme"))
    );
    // Another tenant is invisible to a tenant's key.
    let (status, body) = f.get(&format!("/v1/tenants/{id}"), &f.admin).await;
    assert_refused(status, &body, StatusCode::NOT_FOUND, "NotFound");
    let (status, _) = f.get("/v1/tenants", &f.admin).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Invalid name: a 400 naming the rule.
    let (status, body) = f
        .post("/v1/tenants", &f.operator, Some(r#"{"name":"no spaces"}"#))
        .await;
    assert_refused(status, &body, StatusCode::BAD_REQUEST, "InvalidInput");
}

#[tokio::test]
async fn access_key_lifecycle() {
    let f = fixture().await;
    let (status, created) = f
        .post(
            "/v1/access-keys",
            &f.admin,
            Some(r#"{"role":"key-user","system":"default","description":"ci"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"], "key-user");
    assert_eq!(created["system"], "default");
    assert_eq!(created["description"], "ci");
    assert_eq!(created["enabled"], true);
    let id = created["access_key_id"].as_str().unwrap().to_string();
    let token = token_of(&created);

    // Listed, but never with a secret.
    let (status, body) = f.get("/v1/access-keys", &f.admin).await;
    assert_eq!(status, StatusCode::OK);
    let keys = body["access_keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["access_key_id"] == id.as_str()));
    assert!(
        keys.iter().all(|k| k.get("secret_access_key").is_none()),
        "{body}"
    );
    assert!(!body.to_string().contains(token.split(':').nth(1).unwrap()));

    // A key-user may not manage access keys.
    let (status, body) = f.get("/v1/access-keys", &token).await;
    assert_refused(status, &body, StatusCode::FORBIDDEN, "AccessDenied");

    // Disable: the key is refused from then on; enable: accepted again.
    let (status, body) = f
        .post(&format!("/v1/access-keys/{id}/disable"), &f.admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], false);
    let (status, body) = f.get("/v1/systems", &token).await;
    assert_refused(status, &body, StatusCode::UNAUTHORIZED, "Unauthenticated");
    let (status, body) = f
        .post(&format!("/v1/access-keys/{id}/enable"), &f.admin, None)
        .await;
    assert_eq!((status, &body["enabled"]), (StatusCode::OK, &json!(true)));

    // Delete: gone from the list, and a second delete is a 404.
    let (status, body) = f.delete(&format!("/v1/access-keys/{id}"), &f.admin).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (_, body) = f.get("/v1/access-keys", &f.admin).await;
    assert!(!body["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["access_key_id"] == id.as_str()));
    let (status, body) = f.delete(&format!("/v1/access-keys/{id}"), &f.admin).await;
    assert_refused(status, &body, StatusCode::NOT_FOUND, "NotFound");

    // Unknown roles are named, with the valid ones.
    let (status, body) = f
        .post("/v1/access-keys", &f.admin, Some(r#"{"role":"superuser"}"#))
        .await;
    assert_refused(status, &body, StatusCode::BAD_REQUEST, "InvalidInput");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("superuser") && message.contains("key-user"),
        "{message}"
    );

    // An unknown system is a 404.
    let (status, body) = f
        .post(
            "/v1/access-keys",
            &f.admin,
            Some(r#"{"role":"auditor","system":"nope"}"#),
        )
        .await;
    assert_refused(status, &body, StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn systems_create_duplicate_list_get() {
    let f = fixture().await;
    let (status, system) = f
        .post(
            "/v1/systems",
            &f.admin,
            Some(r#"{"name":"payments","description":"payments cluster"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{system}");
    assert_eq!(system["name"], "payments");
    assert_eq!(system["kind"], "application");
    assert_eq!(system["description"], "payments cluster");
    assert_eq!(system["system_key_state"], "active");
    assert_eq!(system["system_key_version"], 1);
    assert_eq!(system["status"], "connected");
    assert!(system["root_key_id"].as_str().is_some());
    assert!(system["created_at"].as_str().unwrap().contains('T'));

    let (status, body) = f
        .post(
            "/v1/systems",
            &f.admin,
            Some(r#"{"name":"payments","kind":"kubernetes"}"#),
        )
        .await;
    assert_refused(status, &body, StatusCode::CONFLICT, "AlreadyExists");

    f.assert_lists("/v1/systems", &f.admin, "systems", &["default", "payments"])
        .await;

    let (status, body) = f.get("/v1/systems/payments", &f.admin).await;
    assert_eq!((status, &body), (StatusCode::OK, &system));
    let path = format!("/v1/systems/{}", system["id"].as_str().unwrap());
    let (status, body) = f.get(&path, &f.admin).await;
    assert_eq!((status, &body), (StatusCode::OK, &system));
    let (status, body) = f.get("/v1/systems/nope", &f.admin).await;
    assert_refused(status, &body, StatusCode::NOT_FOUND, "NotFound");

    // The operator has no tenant, hence no systems.
    let (status, body) = f.get("/v1/systems", &f.operator).await;
    assert_refused(status, &body, StatusCode::FORBIDDEN, "AccessDenied");
}

#[tokio::test]
async fn keychain_has_the_documented_shape() {
    let f = fixture().await;
    let (status, _) = f
        .post("/v1/systems", &f.admin, Some(r#"{"name":"payments"}"#))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = f.get("/v1/keychain", &f.admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tenant"]["name"], "default");
    for field in ["id", "account_id", "created_at"] {
        assert!(body["tenant"][field].is_string(), "tenant.{field}: {body}");
    }
    let roots = body["root_keys"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{body}");
    let root = &roots[0];
    assert_eq!(root["keystore"], "software");
    assert_eq!(root["origin"], "generated");
    assert_eq!(root["state"], "active");
    assert!(root["id"].is_string());
    let systems = root["systems"].as_array().unwrap();
    let mut names = names(root, "systems");
    names.sort_unstable();
    assert_eq!(names, ["default", "payments"]);
    for s in systems {
        assert!(s["id"].is_string());
        assert_eq!(s["state"], "active");
        assert_eq!(s["system_key_version"], 1);
        assert_eq!(s["status"], "connected");
        assert_eq!(s["service_keys"], json!([]));
    }
}

#[tokio::test]
async fn bad_requests_are_named() {
    let f = fixture().await;
    let (status, body) = f
        .post("/v1/systems", &f.admin, Some(r#"{"name": "x""#))
        .await;
    assert_refused(status, &body, StatusCode::BAD_REQUEST, "InvalidInput");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("request body is not valid JSON"),
        "{message}"
    );

    let (status, body) = f
        .post("/v1/systems", &f.admin, Some(r#"{"name": 7}"#))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{body}"
    );

    let (status, body) = f.post("/v1/systems", &f.admin, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("empty"),
        "{body}"
    );

    // Unknown paths and methods answer in the same JSON shape.
    let (status, body) = f.get("/v1/nope", &f.admin).await;
    assert_refused(status, &body, StatusCode::NOT_FOUND, "NotFound");
    let (status, body) = f.call(Method::GET, "/v1/tenants/a/b", None, None).await;
    assert_refused(status, &body, StatusCode::NOT_FOUND, "NotFound");
    let (status, body) = f.call(Method::GET, "/v1", None, None).await;
    assert_refused(status, &body, StatusCode::NOT_FOUND, "NotFound");
    let (status, body) = f
        .call(Method::PUT, "/v1/systems", Some(&f.admin), None)
        .await;
    assert_refused(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
    );

    // Oversized bodies are refused before parsing.
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(crate::request::MAX_BODY));
    let (status, body) = f.post("/v1/systems", &f.admin, Some(&big)).await;
    assert_refused(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
    );
}

#[tokio::test]
async fn authentication_is_required_and_checked() {
    let f = fixture().await;
    let (status, body) = f.call(Method::GET, "/v1/systems", None, None).await;
    assert_refused(status, &body, StatusCode::UNAUTHORIZED, "Unauthenticated");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Bearer") && message.contains("SigV4")
            || message.contains("Signature Version 4"),
        "{message}"
    );

    let (id, secret) = f.admin.split_once(':').unwrap();
    // Change the last character to one it is not, so the secret is always wrong.
    let last = if secret.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{id}:{}{last}", &secret[..secret.len() - 1]);
    let (status, body) = f.get("/v1/systems", &wrong).await;
    assert_refused(status, &body, StatusCode::UNAUTHORIZED, "Unauthenticated");
    assert!(!body.to_string().contains(secret));

    let (status, body) = f.get("/v1/systems", "KCMNOSUCHKEY:whatever").await;
    assert_refused(status, &body, StatusCode::UNAUTHORIZED, "Unauthenticated");

    let (status, body) = f.get("/v1/systems", "no-colon").await;
    assert_refused(status, &body, StatusCode::UNAUTHORIZED, "Unauthenticated");

    let request = Request::builder()
        .uri("/v1/systems")
        .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&f.app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("Basic"),
        "{body}"
    );
    assert!(!body.to_string().contains("dXNlcjpwYXNz"));

    // Authentication failures are counted like any other request.
    let metrics = f.metrics.render();
    assert!(
        metrics
            .contains(r#"kcm_requests_total{door="rest",operation="ListSystems",status="401"} 5"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn sigv4_signed_requests_are_accepted() {
    let f = fixture().await;
    let (id, secret) = f.admin.split_once(':').unwrap();
    let creds = kcm_sigv4::Credentials::new(id, secret);
    let body = br#"{"name":"signed"}"#;
    let uri: axum::http::Uri = "http://127.0.0.1:8990/v1/systems".parse().unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    let now = time::OffsetDateTime::now_utc();
    kcm_sigv4::sign(
        &Method::POST,
        &uri,
        &mut headers,
        body,
        &creds,
        "us-east-1",
        "kcm",
        now,
    )
    .unwrap();
    let build = |headers: &axum::http::HeaderMap, body: &[u8]| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/systems")
            .body(Body::from(body.to_vec()))
            .unwrap();
        *request.headers_mut() = headers.clone();
        request
    };
    let (status, answer) = send(&f.app, build(&headers, body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["name"], "signed");

    // A changed body no longer matches the signature.
    let (status, answer) = send(&f.app, build(&headers, br#"{"name":"tampered"}"#)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_error(&answer, "Unauthenticated");

    // Signed for the AWS API's service name: refused here.
    let mut headers = axum::http::HeaderMap::new();
    kcm_sigv4::sign(
        &Method::GET,
        &"http://127.0.0.1:8990/v1/systems".parse().unwrap(),
        &mut headers,
        b"",
        &creds,
        "us-east-1",
        "kms",
        now,
    )
    .unwrap();
    let mut request = Request::builder()
        .uri("/v1/systems")
        .body(Body::empty())
        .unwrap();
    *request.headers_mut() = headers;
    let (status, answer) = send(&f.app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");

    // A session token, signed along (so nothing else is wrong), in the header or the
    // query: kcm issues none, so it is refused, in this door's format.
    for (path, token_header) in [
        ("/v1/systems", true),
        ("/v1/systems?X-Amz-Security-Token=token", false),
    ] {
        let uri: axum::http::Uri = format!("http://127.0.0.1:8990{path}").parse().unwrap();
        let mut headers = axum::http::HeaderMap::new();
        if token_header {
            headers.insert("x-amz-security-token", "token".parse().unwrap());
        }
        kcm_sigv4::sign(
            &Method::GET,
            &uri,
            &mut headers,
            b"",
            &creds,
            "us-east-1",
            "kcm",
            now,
        )
        .unwrap();
        let mut request = Request::builder().uri(path).body(Body::empty()).unwrap();
        *request.headers_mut() = headers;
        let (status, answer) = send(&f.app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {answer}");
        assert_error(&answer, "Unauthenticated");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("The security token included in the request is invalid."),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn openapi_document_is_served_without_auth_and_complete() {
    let f = fixture().await;
    let (status, doc) = f.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with('3'),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc, serde_json::to_value(crate::openapi()).unwrap());
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/tenants", vec!["get", "post"]),
        ("/v1/tenants/{id_or_name}", vec!["get"]),
        ("/v1/access-keys", vec!["get", "post"]),
        ("/v1/access-keys/{id}", vec!["delete"]),
        ("/v1/access-keys/{id}/disable", vec!["post"]),
        ("/v1/access-keys/{id}/enable", vec!["post"]),
        ("/v1/systems", vec!["get", "post"]),
        ("/v1/systems/{id_or_name}", vec!["get"]),
        ("/v1/systems/{id_or_name}/switch-root-key", vec!["post"]),
        ("/v1/systems/{id_or_name}/link", vec!["post"]),
        ("/v1/systems/{id_or_name}/unlink", vec!["post"]),
        ("/v1/systems/{id_or_name}/rotate-key", vec!["post"]),
        ("/v1/systems/{id_or_name}/rewrap", vec!["post"]),
        ("/v1/root-keys", vec!["get", "post"]),
        ("/v1/root-keys/{id}", vec!["get"]),
        ("/v1/root-keys/{id}/disable", vec!["post"]),
        ("/v1/root-keys/{id}/suspend", vec!["post"]),
        ("/v1/root-keys/{id}/enable", vec!["post"]),
        ("/v1/root-keys/{id}/rotate", vec!["post"]),
        ("/v1/root-keys/{id}/compromise", vec!["post"]),
        ("/v1/root-keys/import-parameters", vec!["post"]),
        ("/v1/root-keys/import", vec!["post"]),
        ("/v1/root-keys/reference", vec!["post"]),
        ("/v1/keys/{key}/compromise", vec!["post"]),
        ("/v1/keys/{key}/destroy", vec!["post"]),
        ("/v1/keychain", vec!["get"]),
        ("/v1/audit", vec!["get"]),
        ("/v1/audit/checkpoints", vec!["get"]),
        ("/v1/audit/signing-key", vec!["get"]),
        ("/v1/audit/head", vec!["get"]),
        ("/v1/backup", vec!["get"]),
        ("/v1/openapi.json", vec!["get"]),
    ];
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys());
    for (path, methods) in expected {
        let item = &paths[path];
        for method in methods {
            let op = &item[method];
            assert!(op.is_object(), "{method} {path} missing");
            assert!(op["responses"].as_object().unwrap().len() >= 2 || path == "/v1/openapi.json");
            if path != "/v1/openapi.json" {
                assert_eq!(
                    op["security"],
                    json!([{"bearer": []}, {"sigv4": []}]),
                    "{method} {path}"
                );
                // What the shared request path can answer, on every route: a
                // request it cannot read, credentials, authorisation, body timeout
                // and size, a request-rate quota, an internal error, an unavailable
                // store or keystore.
                for status in ["400", "401", "403", "408", "413", "429", "500", "503"] {
                    let response = &op["responses"][status];
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
                // A route naming something by id or name can find nothing there.
                if path.contains('{') {
                    assert!(op["responses"]["404"].is_object(), "{method} {path}");
                }
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["sigv4"]["in"], "header");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "CreateTenantRequest",
        "CreateTenantResponse",
        "Tenant",
        "CreatedAccessKey",
        "AccessKey",
        "System",
        "Keychain",
        "KeychainRootKey",
        "KeychainSystemNode",
        "KeychainServiceKeyNode",
        "RoleName",
        "BackupArchiveBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    // Every schema reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
}

#[tokio::test]
async fn backup_is_the_operators_and_comes_as_an_octet_stream() {
    let f = fixture().await;
    // A tenant-admin is denied with the usual JSON error, decided in the core.
    let (status, body) = f.get("/v1/backup", &f.admin).await;
    assert_refused(status, &body, StatusCode::FORBIDDEN, "AccessDenied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("back up the whole store"),
        "{body}"
    );
    let (status, body) = f.call(Method::GET, "/v1/backup", None, None).await;
    assert_refused(status, &body, StatusCode::UNAUTHORIZED, "Unauthenticated");
    let (status, body) = f.post("/v1/backup", &f.operator, None).await;
    assert_refused(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
    );

    let request = Request::builder()
        .method(Method::GET)
        .uri("/v1/backup")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.operator))
        .body(Body::empty())
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"kcm-backup-"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let length: usize = headers[header::CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(length, bytes.len());
    assert!(bytes.starts_with(kcm_core::backup::MAGIC));
    let archive = kcm_core::backup::ArchiveReader::open(&bytes[..]).unwrap();
    assert_eq!(archive.header().tables["tenants"], 1);
    assert!(f.metrics.render().contains("GetBackup"));
}
