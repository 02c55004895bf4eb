//! The request path against a real core (SQLite store, software keystore), with a
//! stand-in door whose errors and answers are the HTTP ones.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::authz::{Caller, Op};
use kcm_core::config::ServiceConfig;
use kcm_core::error::Error;
use kcm_core::keystore::KeystoreProvider;
use kcm_core::model::{AuditOutcome, AuditQuery, AuditRecord};
use kcm_core::service::Service;
use kcm_store_sqlite::SqliteStore;

use crate::{Authenticator, AuthnError, Door, FrontDoor, HttpDoorError, HttpError, Metrics};

const TEST_DOOR: Door = Door {
    name: "test",
    request_id_header: "x-test-request-id",
};

/// A door's error as simple as can be: a status and a code, answered as the code.
#[derive(Debug)]
struct TestError(HttpError);

impl From<Error> for TestError {
    fn from(e: Error) -> Self {
        Self(HttpError::from_core(
            &e,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Core",
        ))
    }
}

impl From<AuthnError> for TestError {
    fn from(e: AuthnError) -> Self {
        let refusal = HttpError::new(StatusCode::UNAUTHORIZED, "Unauthenticated", "refused");
        Self(refusal.classified(e.audit_outcome()))
    }
}

impl IntoResponse for TestError {
    fn into_response(self) -> Response {
        (self.0.status, self.0.code).into_response()
    }
}

impl HttpDoorError for TestError {
    fn http_error(&self) -> &HttpError {
        &self.0
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    front: FrontDoor,
    metrics: Arc<Metrics>,
    /// `<id>:<secret>` of the operator's system-admin, whose chain holds the records
    /// of requests that named no valid access key.
    operator: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("kcm.db")).unwrap());
    let keystore = kcm_keystore_software::SoftwareKeystore::open(
        dir.path(),
        kcm_keystore_software::MasterKeySource::File(dir.path().join("master.key")),
    )
    .unwrap();
    let mut keystores: HashMap<String, Arc<dyn KeystoreProvider>> = HashMap::new();
    keystores.insert("software".into(), Arc::new(keystore));
    let service = Arc::new(Service::new(store, keystores, ServiceConfig::default()).unwrap());
    let mut operator = None;
    service
        .bootstrap_if_fresh(|c| {
            let (id, secret) = &c.system_admin;
            operator = Some(format!("{id}:{}", secret.expose_secret()));
            Ok(())
        })
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    let auth = Arc::new(Authenticator::new(Arc::clone(&service)));
    Fixture {
        _dir: dir,
        front: FrontDoor::new(TEST_DOOR, service, auth, Arc::clone(&metrics)),
        metrics,
        operator: operator.unwrap(),
    }
}

impl Fixture {
    /// Whether the metrics count exactly one `operation` request of the test door
    /// answered with `status`.
    fn counted_once(&self, operation: &str, status: u16) -> bool {
        let series = format!(
            r#"kcm_requests_total{{door="test",operation="{operation}",status="{status}"}} 1"#
        );
        self.metrics.render().contains(&series)
    }

    /// The operator's latest audit record of `operation`.
    async fn last_record(&self, operation: &str) -> AuditRecord {
        self.records(operation).await.pop().unwrap()
    }

    /// The operator's audit records of `operation`, oldest first.
    async fn records(&self, operation: &str) -> Vec<AuditRecord> {
        let mut call = self.front.begin(Op::ListAuditRecords, None, None);
        let caller: &Caller = call.bearer(&self.operator).await.unwrap();
        let query = AuditQuery {
            limit: 100,
            operation: Some(operation.into()),
            ..AuditQuery::default()
        };
        let records = self
            .front
            .service()
            .list_audit_records(caller, query)
            .await
            .unwrap();
        let _ = call
            .finish(Ok::<Response, TestError>(().into_response()))
            .await;
        records
    }
}

fn request(token: &str) -> Request<()> {
    Request::builder()
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap()
}

#[tokio::test]
async fn finish_audits_stamps_and_counts_an_accepted_request() {
    let f = fixture().await;
    let token = f.operator.clone();
    let mut call = f.front.begin_http(Op::ListTenants, &request(&token));
    let request_id = call.request_id().to_string();
    call.bearer(&token).await.unwrap();
    let answer = call
        .finish(Ok::<Response, TestError>(
            StatusCode::CREATED.into_response(),
        ))
        .await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert_eq!(answer.headers()["x-test-request-id"], request_id.as_str());
    assert!(f.counted_once("ListTenants", 201));
    let record = f.last_record("ListTenants").await;
    assert_eq!(record.front_door, "test");
    assert_eq!(record.request_id, request_id);
    assert_eq!(record.outcome, AuditOutcome::Success);
    assert_eq!(record.error, None);
    assert_eq!(record.principal, token.split(':').next().unwrap());
}

#[tokio::test]
async fn a_refused_authentication_is_denied_and_names_the_claimed_key() {
    let f = fixture().await;
    let mut call = f
        .front
        .begin_http(Op::ListTenants, &request("KCMNOSUCHKEY:whatever"));
    let error = call.bearer("KCMNOSUCHKEY:whatever").await.unwrap_err();
    let answer = call.finish(Err(TestError::from(error))).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(answer.headers().contains_key("x-test-request-id"));
    assert!(f.counted_once("ListTenants", 401));
    let record = f.last_record("ListTenants").await;
    assert_eq!(record.outcome, AuditOutcome::Denied);
    assert_eq!(record.error.as_deref(), Some("Unauthenticated"));
    assert_eq!(record.principal, "KCMNOSUCHKEY");
}

#[tokio::test]
async fn a_refusal_after_authentication_keeps_its_own_classification() {
    let f = fixture().await;
    let token = f.operator.clone();
    let mut call = f.front.begin_http(Op::ListTenants, &request(&token));
    call.bearer(&token).await.unwrap();
    let answer = call
        .finish(Err::<Response, _>(TestError::from(Error::not_found(
            "no such thing",
        ))))
        .await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let record = f.last_record("ListTenants").await;
    assert_eq!(record.outcome, AuditOutcome::Failed);
    assert_eq!(record.error.as_deref(), Some("Core"));
}

#[tokio::test]
async fn a_clients_own_request_id_is_recorded_when_valid_and_left_out_otherwise() {
    let f = fixture().await;
    let token = f.operator.clone();
    let long = "u".repeat(129);
    let cases = [
        ("3f1c9a2e-5b7d-4e0a-9c11-2f6d8b0e4a77", true),
        ("req-1c2d:apiserver/uid_9.x", true),
        ("", false),
        ("two words", false),
        ("bell\u{7}", false),
        (long.as_str(), false),
    ];
    for (id, kept) in cases {
        let mut request = request(&token);
        if let Ok(value) = header::HeaderValue::from_str(id) {
            request
                .headers_mut()
                .insert(crate::CLIENT_REQUEST_ID_HEADER, value);
        }
        let mut call = f.front.begin_http(Op::ListTenants, &request);
        call.bearer(&token).await.unwrap();
        let _ = call
            .finish(Ok::<Response, TestError>(StatusCode::OK.into_response()))
            .await;
        let record = f.last_record("ListTenants").await;
        let expected = kept.then(|| id.to_string());
        assert_eq!(record.client_request_id, expected, "{id:?}");
    }
}
