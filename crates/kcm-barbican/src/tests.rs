//! The router against a real core over the real SQLite store and software keystore,
//! driven request by request: in the no-auth mode (a fixed caller), and with
//! Keystone tokens checked by the tiny Keystone of [`crate::keystone::fake`].

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use kcm_core::model::{AuditQuery, Role};
use kcm_frontdoor::{Authenticator, FrontDoor, Metrics};
use kcm_test_support::service::ServiceFixture;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::config::{AuthMode, BarbicanConfig, DomainMapping, KeystoneConfig, NoAuthCaller};
use crate::keystone::fake::{self, FakeKeystone};
use crate::{router, BarbicanApi, DOOR};

struct Fixture {
    service: ServiceFixture,
    app: axum::Router,
    metrics: Arc<Metrics>,
}

/// One answer: status, headers, body (JSON when it parses, else the raw bytes).
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

fn config(auth: AuthMode) -> BarbicanConfig {
    BarbicanConfig {
        listen: "127.0.0.1:9311".parse().unwrap(),
        public_url: None,
        auth,
        domains: BTreeMap::from([(
            "Default".to_string(),
            DomainMapping {
                tenant: "default".into(),
                root_key: None,
            },
        )]),
        token_cache_ttl: Duration::from_secs(1),
        token_cache_size: 100,
    }
}

fn no_auth(role: Role) -> AuthMode {
    AuthMode::NoAuth(NoAuthCaller {
        tenant: "default".into(),
        project_id: "p1".into(),
        project_name: "web".into(),
        user_id: "u1".into(),
        role,
        root_key: None,
    })
}

async fn fixture_with(auth: AuthMode) -> Fixture {
    let service = ServiceFixture::new().await;
    let metrics = Arc::new(Metrics::default());
    let front = FrontDoor::new(
        DOOR,
        Arc::clone(&service.service),
        Arc::new(Authenticator::new(Arc::clone(&service.service))),
        Arc::clone(&metrics),
    );
    let api = BarbicanApi::new(front, &config(auth), false).unwrap();
    Fixture {
        service,
        app: router(api),
        metrics,
    }
}

async fn fixture() -> Fixture {
    fixture_with(no_auth(Role::TenantAdmin)).await
}

impl Fixture {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "kms.test:9311");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            bytes,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, &[], Body::empty()).await
    }

    async fn post_json(&self, path: &str, body: Value) -> Answer {
        self.call(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    async fn put_json(&self, path: &str, body: Value) -> Answer {
        self.call(
            Method::PUT,
            path,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, &[], Body::empty()).await
    }

    /// Stores a text secret; returns its path (`/v1/secrets/<id>`).
    async fn text_secret(&self, name: &str, text: &str) -> String {
        let a = self
            .post_json(
                "/v1/secrets/",
                json!({"name": name, "payload": text, "payload_content_type": "text/plain"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.json());
        path_of(a.json()["secret_ref"].as_str().unwrap())
    }
}

/// The path of a ref (`http://kms.test:9311/v1/…` → `/v1/…`).
fn path_of(reference: &str) -> String {
    reference
        .strip_prefix("http://kms.test:9311")
        .unwrap_or_else(|| panic!("{reference} is not under the request's host"))
        .to_owned()
}

/// Asserts keystonemiddleware's 401: its body and where to get a token.
fn assert_unauthenticated(a: &Answer) {
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let body = a.json();
    assert_eq!(body["error"]["code"], 401, "{body}");
    assert_eq!(
        body["error"]["message"],
        "The request you have made requires authentication."
    );
    assert_eq!(
        (&body["code"], &body["title"]),
        (&json!(401), &json!("Unauthorized"))
    );
    assert!(body["description"].is_string());
    assert!(a.headers[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Keystone uri="));
}

/// Asserts Barbican's error shape with `status`.
fn assert_error(a: &Answer, status: u16) {
    assert_eq!(a.status.as_u16(), status, "{}", a.json());
    let body = a.json();
    assert_eq!(body["code"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["description"].is_string(), "{body}");
}

#[tokio::test]
async fn version_discovery_answers_both_shapes() {
    let f = fixture().await;
    let a = f.get("/").await;
    assert_eq!(a.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(a.headers["openstack-api-version"], "key-manager 1.0");
    assert_eq!(a.headers[header::VARY], "openstack-api-version");
    let v = &a.json()["versions"]["values"][0];
    assert_eq!((&v["id"], &v["status"]), (&json!("v1"), &json!("stable")));
    assert_eq!(v["links"][0]["href"], "http://kms.test:9311/v1/");
    let a = f
        .call(
            Method::GET,
            "/",
            &[("OpenStack-API-Version", "key-manager 1.1")],
            Body::empty(),
        )
        .await;
    assert_eq!(a.json()["versions"][0]["max_version"], "1.2");
    assert_eq!(a.headers["openstack-api-version"], "key-manager 1.1");
    let a = f.get("/v1").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["version"]["id"], "v1");
}

#[tokio::test]
async fn a_text_secret_round_trips() {
    let f = fixture().await;
    let path = f.text_secret("db password", "hunter2").await;

    let a = f.get(&path).await;
    assert_eq!(a.status, StatusCode::OK);
    let s = a.json();
    assert_eq!(s["name"], "db password");
    assert_eq!(s["status"], "ACTIVE");
    assert_eq!(s["secret_type"], "opaque");
    assert_eq!(s["content_types"], json!({"default": "text/plain"}));
    assert_eq!(s["creator_id"], "u1");
    assert_eq!(s["algorithm"], Value::Null);
    assert_eq!(s["secret_ref"], format!("http://kms.test:9311{path}"));
    assert!(
        s.get("consumers").is_none(),
        "consumers are listed from 1.1 on"
    );

    let a = f
        .call(
            Method::GET,
            &format!("{path}/payload"),
            &[("accept", "text/plain")],
            Body::empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.bytes, b"hunter2");
    assert_eq!(a.headers[header::CONTENT_TYPE], "text/plain; charset=UTF-8");
    assert_eq!(a.headers["openstack-api-version"], "key-manager 1.0");
    // Barbican labels a payload sent for `*/*` as `*/*`.
    let a = f
        .call(
            Method::GET,
            &format!("{path}/payload"),
            &[("accept", "*/*")],
            Body::empty(),
        )
        .await;
    assert_eq!(a.bytes, b"hunter2");
    assert_eq!(a.headers[header::CONTENT_TYPE], "*/*");
    // RGW's way: the payload from the secret's own URL.
    let a = f
        .call(
            Method::GET,
            &path,
            &[("accept", "application/octet-stream")],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (a.status, a.bytes.as_slice()),
        (StatusCode::OK, &b"hunter2"[..])
    );
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/octet-stream");
    let a = f
        .call(
            Method::GET,
            &format!("{path}/payload"),
            &[("accept", "image/png")],
            Body::empty(),
        )
        .await;
    assert_error(&a, 406);

    assert_eq!(f.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_error(&f.get(&path).await, 404);
}

#[tokio::test]
async fn a_binary_secret_is_stored_in_one_or_two_steps() {
    let f = fixture().await;
    let key = [0u8, 1, 2, 250, 251, 252];
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let a = f
        .post_json(
            "/v1/secrets",
            json!({"payload": b64, "payload_content_type": "application/octet-stream",
                   "payload_content_encoding": "base64", "secret_type": "symmetric",
                   "algorithm": "aes", "bit_length": 48, "mode": "cbc"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(a.headers.contains_key(header::LOCATION));
    let path = path_of(a.json()["secret_ref"].as_str().unwrap());
    let a = f.get(&format!("{path}/payload")).await;
    assert_eq!(a.bytes, key, "no Accept: the type it was stored as");
    let a = f
        .call(
            Method::GET,
            &format!("{path}/payload"),
            &[("accept", "text/plain")],
            Body::empty(),
        )
        .await;
    assert_error(&a, 406);

    // Two steps: metadata first, then the payload.
    let a = f.post_json("/v1/secrets/", json!({"name": "later"})).await;
    let path = path_of(a.json()["secret_ref"].as_str().unwrap());
    let s = f.get(&path).await.json();
    assert!(s.get("content_types").is_none(), "{s}");
    assert_error(&f.get(&format!("{path}/payload")).await, 404);
    let put = |body: &'static [u8]| {
        f.call(
            Method::PUT,
            &path,
            &[
                ("content-type", "application/octet-stream"),
                ("content-encoding", "base64"),
            ],
            Body::from(body),
        )
    };
    assert_eq!(put(b"YmxhaA==").await.status, StatusCode::NO_CONTENT);
    assert_eq!(f.get(&format!("{path}/payload")).await.bytes, b"blah");
    assert_error(&put(b"YmxhaA==").await, 409);
}

#[tokio::test]
async fn bad_requests_change_nothing_and_say_why() {
    let f = fixture().await;
    let big = "x".repeat(crate::payload::MAX_REQUEST_BYTES + 1);
    let a = f
        .call(
            Method::POST,
            "/v1/secrets",
            &[("content-type", "application/json")],
            big,
        )
        .await;
    assert_error(&a, 413);
    assert_eq!(a.json()["title"], "Request Entity Too Large");
    let payload = base64::engine::general_purpose::STANDARD.encode(vec![1u8; 10_001]);
    let a = f
        .post_json(
            "/v1/secrets",
            json!({"payload": payload, "payload_content_type": "application/octet-stream",
                   "payload_content_encoding": "base64"}),
        )
        .await;
    assert_error(&a, 413);
    assert_error(
        &f.call(
            Method::POST,
            "/v1/secrets",
            &[("content-type", "text/plain")],
            "{}",
        )
        .await,
        415,
    );
    assert_error(
        &f.call(
            Method::POST,
            "/v1/secrets",
            &[("content-type", "application/json")],
            "{\"name\": ",
        )
        .await,
        400,
    );
    assert_error(
        &f.post_json("/v1/secrets", json!({"payload": "x"})).await,
        400,
    );
    assert_error(&f.get("/v1/secrets/not-a-uuid").await, 404);
    assert_error(&f.get("/v1/secrets?sort=name:desc").await, 400);
    let listed = f.get("/v1/secrets").await.json();
    assert_eq!(listed, json!({"secrets": [], "total": 0}));
    assert_error(&f.get("/v1/quotas").await, 404);
    assert_error(
        &f.call(Method::PATCH, "/v1/secrets", &[], Body::empty())
            .await,
        405,
    );
    assert_error(
        &f.call(
            Method::GET,
            "/v1/secrets",
            &[("OpenStack-API-Version", "key-manager 2.0")],
            Body::empty(),
        )
        .await,
        406,
    );
}

#[tokio::test]
async fn lists_page_with_links() {
    let f = fixture().await;
    for i in 0..3 {
        f.text_secret(&format!("s{i}"), "v").await;
    }
    let a = f.get("/v1/secrets?limit=2").await.json();
    assert_eq!(a["total"], 3);
    assert_eq!(a["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(
        a["next"],
        "http://kms.test:9311/v1/secrets?limit=2&offset=2"
    );
    assert!(a.get("previous").is_none());
    let a = f.get("/v1/secrets?limit=2&offset=2").await.json();
    assert_eq!(a["secrets"][0]["name"], "s2");
    assert_eq!(
        a["previous"],
        "http://kms.test:9311/v1/secrets?limit=2&offset=0"
    );
    let a = f.get("/v1/secrets?name=s1").await.json();
    assert_eq!(
        (a["total"].as_u64(), &a["secrets"][0]["name"]),
        (Some(1), &json!("s1"))
    );
    let a = f.get("/v1/secrets?secret_type=symmetric").await.json();
    assert_eq!(a["total"], 0);
}

#[tokio::test]
async fn secret_metadata_is_set_read_and_removed() {
    let f = fixture().await;
    let path = f.text_secret("m", "v").await;
    let meta = format!("{path}/metadata");
    let a = f
        .put_json(
            &meta,
            json!({"metadata": {"Description": "aes key", "geo": "here"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.json()["metadata_ref"],
        format!("http://kms.test:9311{meta}")
    );
    assert_eq!(
        f.get(&meta).await.json(),
        json!({"metadata": {"description": "aes key", "geo": "here"}})
    );
    let a = f
        .post_json(
            &format!("{meta}/"),
            json!({"key": "access-limit", "value": "11"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.json(), json!({"key": "access-limit", "value": "11"}));
    let a = f
        .put_json(
            &format!("{meta}/access-limit"),
            json!({"key": "access-limit", "value": "0"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        f.get(&format!("{meta}/access-limit")).await.json(),
        json!({"key": "access-limit", "value": "0"})
    );
    assert_eq!(
        f.delete(&format!("{meta}/geo")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(&f.get(&format!("{meta}/geo")).await, 404);
    assert_error(&f.delete(&format!("{meta}/geo")).await, 404);
}

#[tokio::test]
async fn key_orders_are_active_at_once() {
    let f = fixture().await;
    let a = f
        .post_json(
            "/v1/orders/",
            json!({"type": "key", "meta": {"name": "vol", "algorithm": "aes",
                   "bit_length": 256, "mode": "cbc",
                   "payload_content_type": "application/octet-stream"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.json());
    let order = path_of(a.json()["order_ref"].as_str().unwrap());
    let o = f.get(&order).await.json();
    assert_eq!(
        (&o["status"], &o["type"]),
        (&json!("ACTIVE"), &json!("key"))
    );
    assert_eq!(o["meta"]["bit_length"], 256);
    assert_eq!(o["meta"]["algorithm"], "aes");
    let secret = path_of(o["secret_ref"].as_str().unwrap());
    let s = f.get(&secret).await.json();
    assert_eq!(
        (&s["secret_type"], &s["bit_length"]),
        (&json!("symmetric"), &json!(256))
    );
    let key = f
        .call(
            Method::GET,
            &format!("{secret}/payload"),
            &[("accept", "application/octet-stream")],
            Body::empty(),
        )
        .await;
    assert_eq!(key.bytes.len(), 32);
    assert_eq!(f.get("/v1/orders").await.json()["orders"][0]["type"], "key");
    // Deleting the order leaves its key, as in Barbican.
    assert_eq!(f.delete(&order).await.status, StatusCode::NO_CONTENT);
    assert_eq!(f.get(&secret).await.status, StatusCode::OK);
    // A stored secret is no order.
    let stored = f.text_secret("s", "v").await;
    let id = stored.rsplit('/').next().unwrap();
    assert_error(&f.get(&format!("/v1/orders/{id}")).await, 404);
}

#[tokio::test]
async fn asymmetric_orders_make_an_rsa_container() {
    let f = fixture().await;
    let a = f
        .post_json(
            "/v1/orders",
            json!({"type": "asymmetric", "meta": {"name": "pair", "algorithm": "rsa",
                   "bit_length": 2048}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.json());
    let o = f
        .get(&path_of(a.json()["order_ref"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(
        (&o["type"], &o["status"]),
        (&json!("asymmetric"), &json!("ACTIVE"))
    );
    let c = f
        .get(&path_of(o["container_ref"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(c["type"], "rsa");
    let refs: BTreeMap<String, String> = c["secret_refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                path_of(r["secret_ref"].as_str().unwrap()),
            )
        })
        .collect();
    let private = f.get(&format!("{}/payload", refs["private_key"])).await;
    assert!(private.bytes.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    let public = f.get(&refs["public_key"]).await.json();
    assert_eq!(public["secret_type"], "public");
}

#[tokio::test]
async fn certificate_orders_and_authorities_are_refused() {
    let f = fixture().await;
    let a = f
        .post_json(
            "/v1/orders",
            json!({"type": "certificate", "meta": {"request_type": "simple-cmc"}}),
        )
        .await;
    assert_error(&a, 400);
    assert_error(&f.get("/v1/cas").await, 404);
    assert_error(&f.get("/v1/cas/some-ca").await, 404);
}

#[tokio::test]
async fn containers_link_secrets_and_list_consumers() {
    let f = fixture().await;
    let one = f.text_secret("one", "1").await;
    let two = f.text_secret("two", "2").await;
    let a = f
        .post_json(
            "/v1/containers/",
            json!({"type": "generic", "name": "bundle", "secret_refs": [
                {"name": "a", "secret_ref": format!("http://kms.test:9311{one}")},
                {"name": "b", "secret_ref": format!("http://kms.test:9311{two}")}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json());
    let path = path_of(a.json()["container_ref"].as_str().unwrap());
    let c = f.get(&path).await.json();
    assert_eq!(
        (&c["type"], &c["name"]),
        (&json!("generic"), &json!("bundle"))
    );
    assert_eq!(c["secret_refs"].as_array().unwrap().len(), 2);
    assert_eq!(c["consumers"], json!([]));
    // A container is not a secret, nor a secret a container.
    assert_error(&f.get(&path.replace("containers", "secrets")).await, 404);
    assert_error(&f.get(&one.replace("secrets", "containers")).await, 404);

    let consumer = json!({"name": "lbaas", "URL": "http://lb/listeners/1"});
    let a = f
        .post_json(&format!("{path}/consumers/"), consumer.clone())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["consumers"], json!([consumer]));
    let listed = f.get(&format!("{path}/consumers")).await.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["consumers"][0]["URL"], "http://lb/listeners/1");
    let a = f
        .call(
            Method::DELETE,
            &format!("{path}/consumers"),
            &[("content-type", "application/json")],
            consumer.to_string(),
        )
        .await;
    assert_eq!(a.json()["consumers"], json!([]));
    assert_eq!(f.get("/v1/containers").await.json()["total"], 1);
    assert_eq!(f.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(f.get(&one).await.status, StatusCode::OK, "its secrets stay");

    let a = f
        .post_json(
            "/v1/containers",
            json!({"type": "rsa", "secret_refs": [{"name": "private_key", "secret_ref": one}]}),
        )
        .await;
    assert_error(&a, 400);
}

#[tokio::test]
async fn secret_consumers_need_microversion_1_1_to_show() {
    let f = fixture().await;
    let path = f.text_secret("c", "v").await;
    let v11 = [
        ("content-type", "application/json"),
        ("OpenStack-API-Version", "key-manager 1.1"),
    ];
    let consumer = json!({"service": "image", "resource_type": "image", "resource_id": "i1"});
    let a = f
        .call(
            Method::POST,
            &format!("{path}/consumers"),
            &v11,
            consumer.to_string(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    assert_eq!(a.json()["consumers"], json!([consumer]));
    let listed = f.get(&format!("{path}/consumers")).await.json();
    assert_eq!(listed["consumers"][0]["service"], "image");
    assert_eq!(listed["consumers"][0]["status"], "ACTIVE");
    // A secret in use is not deleted.
    let a = f.delete(&path).await;
    assert_error(&a, 400);
    assert_eq!(
        a.json()["description"],
        "Secret deletion issue seen - Secret cannot be deleted as it has consumers.."
    );
    let a = f
        .call(
            Method::DELETE,
            &format!("{path}/consumers"),
            &v11,
            consumer.to_string(),
        )
        .await;
    assert_eq!(a.json()["consumers"], json!([]));
    let a = f
        .call(
            Method::DELETE,
            &format!("{path}/consumers"),
            &v11,
            consumer.to_string(),
        )
        .await;
    assert_error(&a, 404);
}

#[tokio::test]
async fn read_acls_are_set_shown_and_reset() {
    let f = fixture().await;
    let path = f.text_secret("acl", "v").await;
    let acl = format!("{path}/acl");
    assert_eq!(
        f.get(&acl).await.json(),
        json!({"read": {"project-access": true}})
    );
    let a = f
        .put_json(
            &acl,
            json!({"read": {"users": ["u2"], "project-access": false}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["acl_ref"], format!("http://kms.test:9311{acl}"));
    let read = &f.get(&acl).await.json()["read"];
    assert_eq!(
        (&read["users"], &read["project-access"]),
        (&json!(["u2"]), &json!(false))
    );
    // The creator still reads a secret closed to its project.
    assert_eq!(f.get(&format!("{path}/payload")).await.bytes, b"v");
    assert_error(
        &f.call(
            Method::PATCH,
            &acl,
            &[("content-type", "application/json")],
            json!({"read": {"project-access": true}}).to_string(),
        )
        .await,
        400,
    );
    assert_eq!(f.delete(&acl).await.status, StatusCode::OK);
    assert_eq!(
        f.get(&acl).await.json(),
        json!({"read": {"project-access": true}})
    );
}

#[tokio::test]
async fn every_request_is_audited_and_counted_under_the_door_name() {
    let f = fixture().await;
    f.text_secret("audited", "v").await;
    assert_error(&f.get("/v1/nothing-here").await, 404);
    let service = &f.service.service;
    let chain = |caller: kcm_core::authz::Caller| async move {
        let query = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        let records = service.list_audit_records(&caller, query).await;
        let records = records.unwrap().into_iter();
        records
            .filter(|r| r.front_door == "barbican")
            .collect::<Vec<_>>()
    };
    // The tenant's chain holds its callers' requests.
    let tenant = chain(f.service.admin()).await;
    assert!(tenant
        .iter()
        .any(|r| r.operation == "CreateObject" && r.principal == "keystone:u1"));
    // A request refused before anyone was admitted goes to the operator's chain.
    let operator = chain(f.service.operator()).await;
    assert!(operator.iter().any(|r| r.operation == "UnknownPath"));
    assert!(f.metrics.render().contains("door=\"barbican\""));
}

#[tokio::test]
async fn errors_are_worded_as_barbican_words_them() {
    let f = fixture().await;
    let unknown = "/v1/secrets/00000000-0000-4000-8000-000000000000";
    for path in [
        unknown.to_string(),
        format!("{unknown}/payload"),
        "/v1/secrets/x".into(),
    ] {
        let a = f.get(&path).await;
        assert_error(&a, 404);
        assert_eq!(
            a.json()["description"],
            "Not Found. Provided secret id is invalid."
        );
    }
    let a = f.delete(unknown).await;
    assert_eq!(a.json()["description"], "Secret not found.");
    let a = f.post_json("/v1/secrets", json!({"name": "later"})).await;
    let path = path_of(a.json()["secret_ref"].as_str().unwrap());
    let a = f.get(&format!("{path}/payload")).await;
    assert_eq!(
        a.json()["description"],
        "Not Found. Sorry but your secret has no payload."
    );
    let put =
        |body: &'static str| f.call(Method::PUT, &path, &[("content-type", "text/plain")], body);
    assert_eq!(put("late").await.status, StatusCode::NO_CONTENT);
    let a = put("again").await;
    assert_error(&a, 409);
    assert_eq!(
        a.json()["description"],
        "Secret already has data, cannot modify it."
    );
    let a = f
        .call(
            Method::GET,
            &format!("{path}/payload"),
            &[("accept", "image/png")],
            Body::empty(),
        )
        .await;
    assert_eq!(
        a.json()["description"],
        "Secret payload retrieval issue seen - Wrong payload content-type."
    );
    let a = f
        .post_json(
            "/v1/secrets",
            json!({"payload": "x", "payload_content_type": "text/plain",
                                          "expiration": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        a.json()["description"],
        "Provided object does not match schema 'Secret': 'expiration' is before current time. \
         Invalid property: 'expiration'"
    );
    let a = f
        .call(
            Method::POST,
            "/v1/secrets",
            &[("content-type", "application/json")],
            "{x",
        )
        .await;
    assert_eq!(a.json()["description"], "Malformed JSON");
    let a = f
        .call(
            Method::POST,
            "/v1/secrets",
            &[("content-type", "text/plain")],
            "x",
        )
        .await;
    assert_eq!(
        a.json()["description"],
        "Unexpected content type. Expected content types are: ['application/json']"
    );
    let a = f.call(Method::PATCH, &path, &[], Body::empty()).await;
    assert_error(&a, 405);
    assert_eq!(a.json()["description"], "");
    let allow = a
        .headers
        .get(header::ALLOW)
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(allow.as_deref(), Some("GET,HEAD,PUT,DELETE"));
}

#[tokio::test]
async fn castellan_cleans_up_a_key_pair_order() {
    // What castellan does for create_key_pair: the order, its container, then it
    // deletes the container and the order; the two keys stay.
    let f = fixture().await;
    let a = f
        .post_json(
            "/v1/orders/",
            json!({"type": "asymmetric",
                                          "meta": {"algorithm": "RSA", "bit_length": 2048}}),
        )
        .await;
    let order = path_of(a.json()["order_ref"].as_str().unwrap());
    let o = f.get(&order).await.json();
    assert_eq!(
        o["meta"],
        json!({"algorithm": "RSA", "bit_length": 2048,
        "payload_content_type": "application/octet-stream", "expiration": null})
    );
    let container = path_of(o["container_ref"].as_str().unwrap());
    let c = f.get(&container).await.json();
    let private = path_of(c["secret_refs"][0]["secret_ref"].as_str().unwrap());
    assert_eq!(f.delete(&container).await.status, StatusCode::NO_CONTENT);
    assert_eq!(f.delete(&order).await.status, StatusCode::NO_CONTENT);
    assert_eq!(f.get(&private).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_core_decides_what_a_role_may_do() {
    let f = fixture_with(no_auth(Role::Auditor)).await;
    let a = f
        .post_json(
            "/v1/secrets",
            json!({"payload": "x", "payload_content_type": "text/plain"}),
        )
        .await;
    assert_error(&a, 403);
    assert_eq!(
        a.json()["description"],
        "Secret creation attempt not allowed - please review your user/project privileges"
    );
    assert_eq!(f.get("/v1/secrets").await.status, StatusCode::OK);
}

/// A door authenticating with the fake Keystone.
async fn keystone_fixture() -> (Fixture, Arc<FakeKeystone>) {
    let keystone = Arc::new(FakeKeystone::new(3600));
    let url = fake::start(Arc::clone(&keystone)).await;
    (keystone_at(url).await, keystone)
}

/// A door authenticating with the Keystone at `url`.
async fn keystone_at(url: String) -> Fixture {
    fixture_with(AuthMode::Keystone(KeystoneConfig {
        base_url: url,
        user: "kcm".into(),
        user_domain: "Default".into(),
        password: kcm_core::secret::SecretString::new(fake::PASSWORD.into()),
        project: "service".into(),
        project_domain: "Default".into(),
        ca_file: None,
        timeout: Duration::from_secs(5),
    }))
    .await
}

#[tokio::test]
async fn an_unreachable_keystone_is_a_503_that_changes_nothing() {
    let f = keystone_at("http://127.0.0.1:9".into()).await;
    let a = f
        .as_token(
            Method::POST,
            "/v1/secrets",
            "anything",
            Some(json!({"payload": "v", "payload_content_type": "text/plain"})),
        )
        .await;
    assert_error(&a, 503);
    assert_eq!(a.headers[header::RETRY_AFTER], "1");
}

impl Fixture {
    async fn as_token(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let headers = [
            ("x-auth-token", token),
            ("content-type", "application/json"),
        ];
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        self.call(method, path, &headers, body).await
    }
}

#[tokio::test]
async fn keystone_tokens_are_checked_and_mapped() {
    let (f, keystone) = keystone_fixture().await;
    keystone.issue(
        "member",
        fake::token_body("default", "Default", &["member", "reader"]),
    );
    keystone.issue(
        "reader",
        fake::token_body("default", "Default", &["reader"]),
    );
    keystone.issue(
        "nobody",
        fake::token_body("default", "Default", &["creator"]),
    );
    keystone.issue("stranger", fake::token_body("d9", "Elsewhere", &["admin"]));
    let secret = json!({"payload": "v", "payload_content_type": "text/plain"});

    let a = f
        .as_token(Method::POST, "/v1/secrets", "member", Some(secret.clone()))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json());
    let a = f
        .as_token(Method::POST, "/v1/secrets", "reader", Some(secret.clone()))
        .await;
    assert_error(&a, 403);
    assert_eq!(
        f.as_token(Method::GET, "/v1/secrets", "reader", None)
            .await
            .json()["total"],
        1
    );
    assert_error(
        &f.as_token(Method::GET, "/v1/secrets", "nobody", None).await,
        403,
    );
    let a = f
        .as_token(Method::GET, "/v1/secrets", "stranger", None)
        .await;
    assert_error(&a, 403);
    assert!(a.json()["description"]
        .as_str()
        .unwrap()
        .contains("Elsewhere"));

    assert_unauthenticated(&f.as_token(Method::GET, "/v1/secrets", "forged", None).await);
    assert_unauthenticated(&f.get("/v1/secrets").await);
    // /v1 is behind authentication, as in Barbican; / is not.
    assert_unauthenticated(&f.get("/v1").await);
    let a = f.as_token(Method::GET, "/v1/", "member", None).await;
    assert_eq!(
        (a.status, &a.json()["version"]["id"]),
        (StatusCode::OK, &json!("v1"))
    );
    assert_eq!(f.get("/").await.status, StatusCode::MULTIPLE_CHOICES);
}

#[tokio::test]
async fn validations_are_cached_within_the_bound_only() {
    let (f, keystone) = keystone_fixture().await;
    keystone.issue(
        "member",
        fake::token_body("default", "Default", &["member"]),
    );
    for _ in 0..3 {
        let a = f.as_token(Method::GET, "/v1/secrets", "member", None).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(keystone.validations.load(Ordering::SeqCst), 1, "cached");
    keystone.revoke("member");
    assert_eq!(
        f.as_token(Method::GET, "/v1/secrets", "member", None)
            .await
            .status,
        StatusCode::OK,
        "still trusted within the bound"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_unauthenticated(&f.as_token(Method::GET, "/v1/secrets", "member", None).await);
}

#[test]
fn the_door_is_named_barbican() {
    assert_eq!(DOOR.name, "barbican");
    let _ = HeaderValue::from_static(DOOR.request_id_header);
}
