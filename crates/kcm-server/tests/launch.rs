//! `launch` in-process: on a listener the test bound on port 0, driven by the real
//! client with the credentials the first start wrote, and stopped by a future the
//! test resolves — no binary, no signal, no fixed port.

use std::time::Duration;

use kcm_client::{load_credentials, KmsClient};
use kcm_server::{launch, Listen, Settings};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One plain HTTP/1.1 GET; the whole response as text.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: kcm\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_serves_on_a_bound_listener_until_told_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let settings = Settings {
        data_dir: data_dir.clone(),
        ..Settings::default()
    };
    settings.validate().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(launch(settings, Listen::On(listener), async {
        let _ = stopped.await;
    }));

    // Connections wait in the listener's backlog until the first start is done.
    let health = get(addr, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"), "{health}");
    let ready = get(addr, "/ready").await;
    assert!(ready.ends_with("ready\n"), "{ready}");
    // Metrics are served only when the settings make them public.
    let metrics = get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 404"), "{metrics}");

    // A second server on the same data directory is refused while this one runs.
    let second = Settings {
        data_dir: data_dir.clone(),
        ..Settings::default()
    };
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = launch(second, Listen::On(other), std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    let holder = format!("in use by another kcm (pid {})", std::process::id());
    assert!(refused.contains(&holder), "{refused}");

    let credentials = data_dir.join("credentials");
    let kms = KmsClient::new(
        &format!("http://{addr}"),
        load_credentials(Some("default"), Some(&credentials)).unwrap(),
    )
    .unwrap();
    let key = kms.call("CreateKey", &json!({})).await.unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap();
    let plaintext = "aGVsbG8="; // "hello"
    let encrypted = kms
        .call("Encrypt", &json!({"KeyId": key_id, "Plaintext": plaintext}))
        .await
        .unwrap();
    let decrypted = kms
        .call(
            "Decrypt",
            &json!({"CiphertextBlob": encrypted["CiphertextBlob"]}),
        )
        .await
        .unwrap();
    assert_eq!(decrypted["Plaintext"], plaintext);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops once the shutdown future resolves")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}
