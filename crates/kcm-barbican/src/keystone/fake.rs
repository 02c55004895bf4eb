//! A tiny Keystone for unit tests: just enough of `/v3/auth/tokens` to issue kcm's
//! service token for one password, validate the tokens a test issued, and count
//! what it was asked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The service password the fake accepts.
pub const PASSWORD: &str = "s3cret";

/// The fake's state.
pub struct FakeKeystone {
    /// Password authentications so far; each issues `svc-<n>`.
    pub logins: AtomicUsize,
    /// Validations so far.
    pub validations: AtomicUsize,
    /// The oldest service token still accepted (older ones get 401).
    pub accepted_from: AtomicUsize,
    /// Life of issued service tokens, in seconds.
    life: i64,
    /// User tokens → the body a validation answers.
    tokens: Mutex<HashMap<String, String>>,
}

impl FakeKeystone {
    /// A fake issuing service tokens that live `life` seconds.
    pub fn new(life: i64) -> Self {
        Self {
            logins: AtomicUsize::new(0),
            validations: AtomicUsize::new(0),
            accepted_from: AtomicUsize::new(0),
            life,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `token` valid, answering `body` (see [`token_body`]).
    pub fn issue(&self, token: &str, body: String) {
        self.tokens.lock().unwrap().insert(token.into(), body);
    }

    /// Revokes `token`.
    pub fn revoke(&self, token: &str) {
        self.tokens.lock().unwrap().remove(token);
    }
}

/// A validation body: user `u-<first role or none>`, project `p1` in the domain
/// `domain_id` / `domain_name`, holding `roles`.
pub fn token_body(domain_id: &str, domain_name: &str, roles: &[&str]) -> String {
    let roles: Vec<_> = roles
        .iter()
        .map(|r| serde_json::json!({"id": format!("r-{r}"), "name": r}))
        .collect();
    serde_json::json!({"token": {
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "user": {"id": "u-good", "name": "alice", "domain": {"id": domain_id, "name": domain_name}},
        "project": {"id": "p1", "name": "web", "domain": {"id": domain_id, "name": domain_name}},
        "roles": roles,
    }})
    .to_string()
}

async fn login(State(fake): State<Arc<FakeKeystone>>, body: String) -> Response {
    if !body.contains(&format!("\"password\":\"{PASSWORD}\"")) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let n = fake.logins.fetch_add(1, Ordering::SeqCst) + 1;
    let expires = (OffsetDateTime::now_utc() + time::Duration::seconds(fake.life))
        .format(&Rfc3339)
        .unwrap();
    let body = format!(r#"{{"token": {{"expires_at": "{expires}"}}}}"#);
    (
        StatusCode::CREATED,
        [("X-Subject-Token", format!("svc-{n}"))],
        body,
    )
        .into_response()
}

async fn validate(State(fake): State<Arc<FakeKeystone>>, headers: HeaderMap) -> Response {
    fake.validations.fetch_add(1, Ordering::SeqCst);
    let own = headers["X-Auth-Token"].to_str().unwrap();
    let n: usize = own.trim_start_matches("svc-").parse().unwrap();
    if n < fake.accepted_from.load(Ordering::SeqCst) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let subject = headers["X-Subject-Token"].to_str().unwrap();
    match fake.tokens.lock().unwrap().get(subject) {
        Some(body) => (StatusCode::OK, body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `fake` on a loopback port; returns its base URL.
pub async fn start(fake: Arc<FakeKeystone>) -> String {
    let app = axum::Router::new()
        .route("/v3/auth/tokens", post(login).get(validate))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
