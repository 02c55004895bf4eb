//! The XKS keystore against the project's test XKS proxy (`tests/python/xks_proxy.py`,
//! backed by SoftHSM2; see `kcm_test_support::xks_proxy`): the shared keystore
//! conformance suite, and how the proxy's errors reach kcm: the real ones, every error
//! of the specification's table and answers outside it (the proxy's canned answers).

use std::sync::Arc;
use std::time::Duration;

use kcm_core::error::ErrorKind;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider};
use kcm_core::secret::SecretBytes;
use kcm_keystore_xks::{XksConfig, XksKeystore};
use kcm_sigv4::Credentials;
use kcm_test_support::keystore_conformance::{Destroy, Disable, Expected, KeyHolder, Subject};
use kcm_test_support::xks_proxy::{XksProxy, ACCESS_KEY_ID, REGION, SECRET, URI_PATH};

/// A client of the shared proxy, with the settings the proxy expects.
fn config(proxy: &XksProxy) -> XksConfig {
    // kcm installs aws-lc-rs as the process's TLS provider at start; so do the tests.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    XksConfig {
        name: "xks-test".into(),
        endpoint: proxy.endpoint(),
        uri_path: URI_PATH.into(),
        credentials: Credentials::new(ACCESS_KEY_ID, SECRET),
        region: REGION.into(),
        ca_file: Some(proxy.ca_file()),
        client_identity: None,
        timeout: Duration::from_secs(10),
    }
}

fn keystore(config: XksConfig) -> XksKeystore {
    XksKeystore::new(config).expect("the XKS keystore's settings")
}

/// The customer, making keys in the key manager behind the proxy.
struct Customer(&'static XksProxy);

#[async_trait::async_trait]
impl KeyHolder for Customer {
    async fn new_key(&self) -> String {
        let proxy = self.0;
        tokio::task::spawn_blocking(move || proxy.create_key())
            .await
            .expect("create a key in the proxy's token")
    }

    fn missing_reference(&self) -> String {
        "no-such-key-k".into()
    }
}

async fn subject() -> Subject {
    let proxy = XksProxy::shared();
    let expected = Expected {
        kind: "xks",
        capabilities: Capabilities {
            generate: false,
            import: false,
            reference: true,
        },
        // It only refers to keys: there is nothing of its own to destroy.
        destroy: Destroy::ErasesKey,
        // The proxy API has no switch: the holder disables a key, not kcm.
        disable: Disable::KcmOnly,
    };
    Subject::new(Arc::new(keystore(config(proxy))), expected, ()).with_holder(Customer(proxy))
}

kcm_test_support::keystore_conformance_tests!(subject);

/// A key the holder deleted, a wrong secret, a path the proxy does not serve and a
/// proxy that is not there each reach kcm as the error its cause calls for.
#[tokio::test]
async fn proxy_errors_are_sorted_by_cause() {
    let proxy = XksProxy::shared();
    let ks = keystore(config(proxy));
    let key = Customer(proxy).new_key().await;
    let handle = ks.reference_root_key(&key).await.unwrap();
    let secret = SecretBytes::random(32);
    let blob = ks.wrap(&handle, &secret, b"aad").await.unwrap();

    let wrong_secret = keystore(XksConfig {
        credentials: Credentials::new(ACCESS_KEY_ID, "not-the-secret"),
        ..config(proxy)
    });
    let r = wrong_secret.unwrap(&handle, &blob, b"aad").await;
    assert!(
        matches!(&r, Err(KeystoreError::Misconfigured(m)) if m.contains("credentials")),
        "{r:?}"
    );
    let wrong_path = keystore(XksConfig {
        uri_path: format!("/elsewhere{URI_PATH}"),
        ..config(proxy)
    });
    let r = wrong_path.wrap(&handle, &secret, b"aad").await;
    assert!(
        matches!(&r, Err(KeystoreError::Misconfigured(m)) if m.contains("uri_path")),
        "{r:?}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = keystore(XksConfig {
        endpoint: format!("https://{}", closed.local_addr().unwrap()),
        ..config(proxy)
    });
    drop(closed);
    let r = nobody.health().await;
    assert!(matches!(&r, Err(KeystoreError::Unavailable(_))), "{r:?}");

    // The holder revokes the key: kcm can no longer use it, and says whose doing it is.
    tokio::task::spawn_blocking(move || proxy.delete_key(&key))
        .await
        .unwrap();
    for r in [
        ks.check_root_key(&handle).await,
        ks.unwrap(&handle, &blob, b"aad").await.map(|_| ()),
    ] {
        assert!(
            matches!(&r, Err(KeystoreError::KeyUnusable(m)) if m.contains("not found")),
            "{r:?}"
        );
    }
}

/// Makes the test proxy answer every later `op` (`metadata`, `encrypt`, `decrypt`) on
/// `key` — or every `health` check, whatever `key` — with `canned` as is: `{"status": .., "body": "..", "headers": {..}, "length":
/// bool}` (tests/python/xks_proxy.py, "Canned answers"); `{}` goes back to real answers.
async fn answer(proxy: &XksProxy, key: &str, op: &str, canned: serde_json::Value) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = std::fs::read(proxy.ca_file()).expect("the proxy's CA file");
    let mut client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("a PEM certificate"))
        .timeout(Duration::from_secs(10));
    if proxy.requires_client_certificates() {
        let (cert, key) = proxy.client_identity();
        let mut pem = std::fs::read(cert).expect("the client certificate");
        pem.extend(std::fs::read(key).expect("the client key"));
        client = client.identity(reqwest::Identity::from_pem(&pem).expect("a client identity"));
    }
    let client = client.build().expect("an HTTPS client");
    let mut spec = canned;
    spec["operation"] = op.into();
    let r = client
        .post(format!("{}/admin/keys/{key}/answer", proxy.endpoint()))
        .body(spec.to_string())
        .send()
        .await
        .expect("the proxy's admin API");
    let status = r.status();
    assert!(status.is_success(), "{status}: {}", r.text().await.unwrap());
}

/// `errorName` at `status`, in the body the specification shapes.
fn spec_error(error_name: &str, status: u16) -> serde_json::Value {
    let body = serde_json::json!({
        "errorName": error_name,
        "errorMessage": format!("canned {error_name}"),
    });
    serde_json::json!({ "status": status, "body": body.to_string() })
}

/// The proxy APIs a key's use calls, in the order of [`SPEC_ERRORS`]' columns.
const OPS: [&str; 3] = ["metadata", "encrypt", "decrypt"];

/// Calls the proxy's `op` through the keystore: metadata is `check_root_key`, encrypt
/// `wrap`, decrypt `unwrap` of `blob`.
async fn call(ks: &XksKeystore, op: &str, handle: &[u8], blob: &[u8]) -> Result<(), KeystoreError> {
    match op {
        "metadata" => ks.check_root_key(handle).await,
        "encrypt" => ks
            .wrap(handle, &SecretBytes::random(32), b"aad")
            .await
            .map(|_| ()),
        "decrypt" => ks.unwrap(handle, blob, b"aad").await.map(|_| ()),
        other => unreachable!("no proxy API {other}"),
    }
}

/// The [`KeystoreError`] variants a proxy's error may become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// Retry later; says nothing about the key.
    Unavailable,
    /// The key's holder refuses kcm the key.
    KeyUnusable,
    /// The wrapped key does not authenticate.
    UnwrapFailed,
    /// The operator must fix kcm's settings or the proxy.
    Misconfigured,
}

impl Variant {
    fn of(r: &Result<(), KeystoreError>) -> Option<Self> {
        match r {
            Err(KeystoreError::Unavailable(_)) => Some(Self::Unavailable),
            Err(KeystoreError::KeyUnusable(_)) => Some(Self::KeyUnusable),
            Err(KeystoreError::UnwrapFailed) => Some(Self::UnwrapFailed),
            Err(KeystoreError::Misconfigured(_)) => Some(Self::Misconfigured),
            _ => None,
        }
    }

    /// What kcm's caller is then told (the core's mapping of keystore errors).
    fn caller_sees(self) -> ErrorKind {
        match self {
            Self::Unavailable | Self::Misconfigured => ErrorKind::KeystoreUnavailable,
            Self::KeyUnusable => ErrorKind::InvalidState,
            Self::UnwrapFailed => ErrorKind::Internal,
        }
    }
}

/// The XKS proxy API specification's "Error Codes" table (name, HTTP status), written
/// out here from the spec rather than taken from the crate, with the variant kcm must
/// make of each on metadata, encrypt and decrypt. An error the table does not list for
/// an API (InvalidCiphertext outside decrypt, InvalidKeyUsage on metadata) is an answer
/// kcm cannot interpret: `Unavailable`.
const SPEC_ERRORS: [(&str, u16, [Variant; 3]); 12] = {
    use Variant::{KeyUnusable as Holder, Misconfigured as Operator, Unavailable, UnwrapFailed};
    [
        ("ValidationException", 400, [Operator; 3]),
        ("InvalidStateException", 400, [Holder; 3]),
        (
            "InvalidCiphertextException",
            400,
            [Unavailable, Unavailable, UnwrapFailed],
        ),
        (
            "InvalidKeyUsageException",
            400,
            [Unavailable, Holder, Holder],
        ),
        ("AuthenticationFailedException", 401, [Operator; 3]),
        ("AccessDeniedException", 403, [Holder; 3]),
        ("KeyNotFoundException", 404, [Holder; 3]),
        ("InvalidUriPathException", 404, [Operator; 3]),
        ("ThrottlingException", 429, [Unavailable; 3]),
        ("UnsupportedOperationException", 501, [Operator; 3]),
        ("DependencyTimeoutException", 503, [Unavailable; 3]),
        ("InternalException", 500, [Unavailable; 3]),
    ]
};

/// A key of its own (canned answers are per key), a handle to it and a blob it wrapped.
async fn faulty_key(proxy: &'static XksProxy, ks: &XksKeystore) -> (String, Vec<u8>, Vec<u8>) {
    let key = Customer(proxy).new_key().await;
    let handle = ks.reference_root_key(&key).await.unwrap();
    let blob = ks
        .wrap(&handle, &SecretBytes::random(32), b"aad")
        .await
        .unwrap();
    (key, handle, blob)
}

/// Every error of the specification, on each API a key's use calls, reaches kcm as the
/// variant its cause calls for, and its caller as the matching kind: throttling and
/// timeouts are "retry later", never a verdict on the key.
#[tokio::test]
async fn every_spec_error_reaches_kcm_as_its_cause() {
    let proxy = XksProxy::shared();
    let ks = keystore(config(proxy));
    let (key, handle, blob) = faulty_key(proxy, &ks).await;
    for (error_name, status, variants) in SPEC_ERRORS {
        for (op, want) in OPS.into_iter().zip(variants) {
            answer(proxy, &key, op, spec_error(error_name, status)).await;
            let r = call(&ks, op, &handle, &blob).await;
            assert_eq!(
                Variant::of(&r),
                Some(want),
                "{op} answered {status} {error_name}: {r:?}"
            );
            let kind = kcm_core::error::Error::from(r.unwrap_err()).kind();
            assert_eq!(kind, want.caller_sees(), "{op} answered {error_name}");
            answer(proxy, &key, op, serde_json::json!({})).await;
        }
    }
    // Back to real answers: the key works again (nothing was cached as revoked).
    for op in OPS {
        call(&ks, op, &handle, &blob).await.unwrap();
    }
}

/// Answers the specification does not define (an unknown name, a name at another
/// status, bodies that are not the API's, a body over the limit, a redirect) are
/// `Unavailable` on every API: never a panic, never a verdict on the key, and never
/// followed elsewhere.
#[tokio::test]
async fn answers_outside_the_spec_are_unavailable() {
    let proxy = XksProxy::shared();
    let ks = keystore(config(proxy));
    let (key, handle, blob) = faulty_key(proxy, &ks).await;
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let big = format!("{{\"plaintext\": \"{}\"}}", "A".repeat(100_000));
    let raw = |status: u16, body: &str| serde_json::json!({ "status": status, "body": body });
    let not_defined = "which the XKS proxy API does not define there";
    let no_error_body = "without an XKS error body";
    let not_the_api = "not the JSON the XKS API defines";
    let over = "is over 65536 bytes";
    // What the proxy answers, and what kcm's message must then say.
    let cases = [
        (
            spec_error("FancyNewException", 400),
            "HTTP 400 \"FancyNewException\", which",
        ),
        (spec_error("KeyNotFoundException", 500), not_defined),
        (spec_error("ThrottlingException", 418), not_defined),
        (
            raw(400, r#"{"errorName": 7, "errorMessage": "x"}"#),
            no_error_body,
        ),
        (
            raw(
                400,
                &serde_json::json!({ "errorName": format!("Bad\n\u{1b}[31m{}", "X".repeat(5000)) })
                    .to_string(),
            ),
            "\"Bad[31mXXX",
        ),
        (raw(400, r#"{"message": "no"}"#), no_error_body),
        (
            serde_json::json!({
                "status": 502,
                "body": "<html>Bad Gateway</html>",
                "headers": { "Content-Type": "text/html" },
            }),
            "HTTP 502 without an XKS error body",
        ),
        (raw(503, ""), "HTTP 503 without an XKS error body"),
        (raw(200, "{\"plaintext\": "), not_the_api),
        (raw(200, r#"{"plaintext": 5, "keySpec": []}"#), not_the_api),
        (raw(200, ""), not_the_api),
        (raw(204, ""), "HTTP 204 without an XKS error body"),
        (raw(200, &big), over),
        (
            serde_json::json!({ "status": 200, "body": big, "length": false }),
            over,
        ),
        (
            serde_json::json!({
                "status": 307,
                "body": "",
                "headers": {
                    "Location": format!("https://{}/kms/xks/v1/keys/k/encrypt", elsewhere.local_addr().unwrap()),
                },
            }),
            "HTTP 307 without an XKS error body",
        ),
    ];
    for (canned, says) in cases {
        let shown: String = canned.to_string().chars().take(300).collect();
        for op in OPS {
            answer(proxy, &key, op, canned.clone()).await;
            let r = call(&ks, op, &handle, &blob).await;
            match &r {
                Err(KeystoreError::Unavailable(m)) => {
                    assert!(m.contains(says), "{op} answered {shown}: {m:?}");
                    assert!(
                        m.len() < 1024 && m.chars().all(|c| (' '..='~').contains(&c)),
                        "{op}: the proxy's words reach kcm's log unfiltered: {m:?}"
                    );
                }
                _ => panic!("{op} answered {shown}: {r:?}"),
            }
            answer(proxy, &key, op, serde_json::json!({})).await;
        }
    }
    assert!(
        elsewhere.accept().is_err(),
        "kcm followed the proxy's redirect"
    );
    for op in OPS {
        call(&ks, op, &handle, &blob).await.unwrap();
    }
}

/// Mutual TLS: a proxy that requires a client certificate refuses kcm without one
/// (unavailable, as any failed connection) and serves it with one. And a proxy whose
/// own authorisation refuses the health check (AccessDeniedException) is reachable,
/// not down: its keys stay usable and nothing below them is locked.
#[tokio::test]
async fn mutual_tls_and_a_health_check_the_proxy_refuses() {
    let proxy = XksProxy::start_requiring_client_certificates();
    let anonymous = keystore(config(&proxy));
    let r = anonymous.health().await;
    assert!(matches!(&r, Err(KeystoreError::Unavailable(_))), "{r:?}");

    let ks = keystore(XksConfig {
        client_identity: Some(proxy.client_identity()),
        ..config(&proxy)
    });
    ks.health()
        .await
        .expect("the proxy answers kcm's certificate");
    let key = proxy.create_key();
    let handle = ks.reference_root_key(&key).await.unwrap();
    let secret = SecretBytes::random(32);
    let blob = ks.wrap(&handle, &secret, b"aad").await.unwrap();
    let back = ks.unwrap(&handle, &blob, b"aad").await.unwrap();
    assert_eq!(back.expose_secret(), secret.expose_secret());

    answer(
        &proxy,
        &key,
        "health",
        spec_error("AccessDeniedException", 403),
    )
    .await;
    ks.health()
        .await
        .expect("a health check the proxy's policy refuses is no outage");
    let back = ks.unwrap(&handle, &blob, b"aad").await.unwrap();
    assert_eq!(back.expose_secret(), secret.expose_secret());
    // Other refusals of the health check still say the proxy cannot serve.
    answer(&proxy, &key, "health", spec_error("InternalException", 500)).await;
    let r = ks.health().await;
    assert!(matches!(&r, Err(KeystoreError::Unavailable(_))), "{r:?}");
}
