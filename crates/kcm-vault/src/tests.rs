//! The door against a real core over the real SQLite store and software keystore,
//! driven request by request as hvac and Ceph's RADOS Gateway send them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::BodyExt;
use kcm_core::model::{vault_token, Role};
use kcm_core::service::NewSystem;
use kcm_frontdoor::FrontDoor;
use kcm_test_support::service::ServiceFixture;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{router, VaultApi, DOOR};

struct Fixture {
    service: ServiceFixture,
    app: axum::Router,
}

async fn fixture() -> Fixture {
    let service = ServiceFixture::new().await;
    let front = FrontDoor::alone(DOOR, Arc::clone(&service.service));
    Fixture {
        app: router(VaultApi::new(
            front,
            crate::route::Mounts {
                transit: "transit".into(),
                kv: "secret".into(),
            },
        )),
        service,
    }
}

impl Fixture {
    /// A new token of `role` in `system`.
    async fn token(&self, system: &str, role: Role) -> String {
        let made = self
            .service
            .service
            .create_vault_token(&self.service.admin(), system, role, None, String::new())
            .await
            .unwrap();
        vault_token(&made.info.id, made.secret.expose_secret())
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        if let Some(token) = token {
            request = request.header("x-vault-token", token);
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }
}

#[tokio::test]
async fn transit_round_trips_and_binds_its_context() {
    let f = fixture().await;
    let admin = f.token("default", Role::KeyAdmin).await;
    let user = f.token("default", Role::KeyUser).await;
    let (status, made) = f
        .send("POST", "/v1/transit/keys/orders", Some(&admin), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let plaintext = STANDARD.encode(b"attack at dawn");
    let (status, sealed) = f
        .send(
            "POST",
            "/v1/transit/encrypt/orders",
            Some(&user),
            json!({"plaintext": plaintext, "context": "Y3R4"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    let ciphertext = sealed["data"]["ciphertext"].as_str().unwrap().to_owned();
    assert!(ciphertext.starts_with("vault:v1:"));
    let (status, opened) = f
        .send(
            "POST",
            "/v1/transit/decrypt/orders",
            Some(&user),
            json!({"ciphertext": ciphertext, "context": "Y3R4"}),
        )
        .await;
    assert_eq!(
        (status, opened["data"]["plaintext"].as_str()),
        (StatusCode::OK, Some(plaintext.as_str()))
    );
    let (status, refused) = f
        .send(
            "POST",
            "/v1/transit/decrypt/orders",
            Some(&user),
            json!({"ciphertext": ciphertext}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["errors"][0].as_str().is_some());
}

#[tokio::test]
async fn only_a_vault_token_of_kcms_is_taken() {
    let f = fixture().await;
    let admin = f.token("default", Role::KeyAdmin).await;
    f.send("POST", "/v1/transit/keys/k", Some(&admin), Value::Null)
        .await;
    let sigv4 = f
        .service
        .service
        .create_access_key(
            &f.service.admin(),
            Role::KeyUser,
            Some("default"),
            None,
            String::new(),
        )
        .await
        .unwrap();
    let as_token = vault_token(&sigv4.info.id, sigv4.secret.expose_secret());
    let wrong_secret = format!("{}x", &admin[..admin.len() - 1]);
    for token in [
        None,
        Some(""),
        Some(as_token.as_str()),
        Some(wrong_secret.as_str()),
        Some("s.hvs"),
    ] {
        let (status, body) = f
            .send(
                "POST",
                "/v1/transit/encrypt/k",
                token,
                json!({"plaintext": "eA=="}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}: {body}");
    }
    // Health needs no token.
    let (status, health) = f.send("GET", "/v1/sys/health", None, Value::Null).await;
    assert_eq!(
        (status, health["sealed"].as_bool()),
        (StatusCode::OK, Some(false))
    );
}

#[tokio::test]
async fn a_namespace_must_be_the_tokens_system() {
    let f = fixture().await;
    let user = f.token("default", Role::KeyUser).await;
    let send = |namespace: &'static str| {
        let request = Request::builder()
            .method("POST")
            .uri("/v1/transit/random")
            .header("x-vault-token", user.as_str())
            .header("x-vault-namespace", namespace)
            .body(Body::empty())
            .unwrap();
        f.app.clone().oneshot(request)
    };
    for ok in ["default", "/default/", ""] {
        assert_eq!(send(ok).await.unwrap().status(), StatusCode::OK, "{ok:?}");
    }
    for refused in ["other", "default/child", "nope"] {
        assert_eq!(
            send(refused).await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn another_systems_token_finds_no_key_of_the_name() {
    let f = fixture().await;
    f.service
        .service
        .create_system(
            &f.service.admin(),
            &NewSystem {
                name: "other".into(),
                link: true,
                ..NewSystem::default()
            },
        )
        .await
        .unwrap();
    let admin = f.token("default", Role::KeyAdmin).await;
    let other = f.token("other", Role::KeyAdmin).await;
    f.send(
        "POST",
        "/v1/transit/keys/shared-name",
        Some(&admin),
        Value::Null,
    )
    .await;
    let (status, body) = f
        .send(
            "GET",
            "/v1/transit/keys/shared-name",
            Some(&other),
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"errors": []}))
    );
    // Its own key of that name is another key.
    let (_, mine) = f
        .send(
            "POST",
            "/v1/transit/keys/shared-name",
            Some(&other),
            Value::Null,
        )
        .await;
    let (_, theirs) = f
        .send(
            "GET",
            "/v1/transit/keys/shared-name",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_ne!(mine["data"]["kcm_key_id"], theirs["data"]["kcm_key_id"]);
}

#[tokio::test]
async fn kv_versions_round_trip_and_cas_is_checked() {
    let f = fixture().await;
    let user = f.token("default", Role::KeyUser).await;
    let (status, written) = f
        .send(
            "POST",
            "/v1/secret/data/csi/vol",
            Some(&user),
            json!({"data": {"key": "c2VjcmV0"}, "options": {"cas": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["data"]["version"], 1);
    let (status, stale) = f
        .send(
            "POST",
            "/v1/secret/data/csi/vol",
            Some(&user),
            json!({"data": {"key": "b3RoZXI="}, "options": {"cas": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{stale}");
    let (status, read) = f
        .send("GET", "/v1/secret/data/csi/vol", Some(&user), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["data"]["data"], json!({"key": "c2VjcmV0"}));
    let (status, listed) = f
        .send("LIST", "/v1/secret/metadata/csi", Some(&user), Value::Null)
        .await;
    assert_eq!(
        (status, &listed["data"]["keys"]),
        (StatusCode::OK, &json!(["vol"]))
    );
    let (status, _) = f
        .send(
            "DELETE",
            "/v1/secret/metadata/csi/vol",
            Some(&user),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = f
        .send("GET", "/v1/secret/data/csi/vol", Some(&user), Value::Null)
        .await;
    assert_eq!(
        (status, gone),
        (StatusCode::NOT_FOUND, json!({"errors": []}))
    );
}

#[tokio::test]
async fn kubernetes_login_is_no_endpoint_until_configured() {
    let f = fixture().await;
    let (status, answer) = f
        .send(
            "POST",
            "/v1/auth/kubernetes/login",
            None,
            json!({"role": "r", "jwt": "j"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["errors"][0]
        .as_str()
        .unwrap()
        .contains("unsupported path"));
}
