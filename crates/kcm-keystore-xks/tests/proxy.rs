//! The XKS keystore against the project's test XKS proxy (`tests/python/xks_proxy.py`,
//! backed by SoftHSM2; see `kcm_test_support::xks_proxy`): the shared keystore
//! conformance suite, and how the proxy's errors reach kcm.

use std::sync::Arc;
use std::time::Duration;

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
