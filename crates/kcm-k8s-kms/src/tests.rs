//! The gRPC service over a scripted backend, on a real Unix socket, through the
//! generated client (what the API server does, in Go, over the same wire).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Endpoint, Uri};
use tonic::Code;
use zeroize::Zeroizing;

use crate::proto::key_management_service_client::KeyManagementServiceClient;
use crate::proto::{DecryptRequest, EncryptRequest, StatusRequest};
use crate::*;

/// A backend that "encrypts" by prefixing the key version, and whose health and
/// version the test sets.
#[derive(Default)]
struct Scripted {
    version: Mutex<u32>,
    refusal: Mutex<Option<BackendError>>,
    probes: AtomicUsize,
}

impl Scripted {
    fn refuse(&self, e: Option<BackendError>) {
        *self.refusal.lock().unwrap() = e;
    }
    fn check(&self) -> Result<(), BackendError> {
        self.refusal.lock().unwrap().clone().map_or(Ok(()), Err)
    }
    fn version(&self) -> u32 {
        *self.version.lock().unwrap()
    }
}

#[async_trait]
impl KeyBackend for Scripted {
    async fn encrypt(&self, plaintext: &[u8], _uid: &str) -> Result<Vec<u8>, BackendError> {
        self.check()?;
        let mut out = vec![self.version() as u8];
        out.extend(plaintext.iter().map(|b| b ^ 0x5a));
        Ok(out)
    }

    async fn decrypt(
        &self,
        ciphertext: &[u8],
        _uid: &str,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.check()?;
        if ciphertext[0] > self.version() as u8 {
            return Err(BackendError::Invalid("not this key's ciphertext".into()));
        }
        Ok(Zeroizing::new(
            ciphertext[1..].iter().map(|b| b ^ 0x5a).collect(),
        ))
    }

    async fn probe(&self) -> Result<String, BackendError> {
        self.probes.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(format!("key-1:v{}", self.version()))
    }
}

struct Running {
    backend: Arc<Scripted>,
    client: KeyManagementServiceClient<tonic::transport::Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Running {
    /// Status, which must answer.
    async fn status(&mut self) -> crate::proto::StatusResponse {
        self.client
            .status(StatusRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    /// Encrypt, which must succeed.
    async fn seal(&mut self, plaintext: &[u8]) -> crate::proto::EncryptResponse {
        let request = encrypt_request(plaintext);
        self.client.encrypt(request).await.unwrap().into_inner()
    }

    /// Decrypt of what [`Running::seal`] returned, which must succeed.
    async fn open(&mut self, sealed: &crate::proto::EncryptResponse) -> Vec<u8> {
        let request = decrypt_request(sealed.ciphertext.clone(), sealed.key_id.clone());
        let mut opened = self.client.decrypt(request).await.unwrap().into_inner();
        std::mem::take(&mut opened.plaintext)
    }
}

async fn connect(socket: &Path) -> KeyManagementServiceClient<tonic::transport::Channel> {
    let socket = socket.to_owned();
    let channel = Endpoint::from_static("http://kms-plugin.invalid")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
        .unwrap();
    KeyManagementServiceClient::new(channel)
}

async fn start(max_age: Duration) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kms.sock");
    let backend = Arc::new(Scripted {
        version: Mutex::new(1),
        ..Default::default()
    });
    let status = Arc::new(StatusCache::new(
        backend.clone(),
        max_age,
        Duration::from_secs(2),
    ));
    let service = KmsV2::new(backend.clone(), status, Duration::from_secs(2));
    let listener = bind_socket(&socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let served = tokio::spawn(async move {
        serve(service, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Running {
        client: connect(&socket).await,
        backend,
        stop: Some(stop),
        served,
        _dir: dir,
        socket,
    }
}

fn encrypt_request(plaintext: &[u8]) -> EncryptRequest {
    EncryptRequest {
        plaintext: plaintext.to_vec(),
        uid: "uid-1".into(),
    }
}

fn decrypt_request(ciphertext: Vec<u8>, key_id: String) -> DecryptRequest {
    DecryptRequest {
        ciphertext,
        uid: "uid-2".into(),
        key_id,
        annotations: Default::default(),
    }
}

#[tokio::test]
async fn status_encrypt_and_decrypt_round_trip_with_the_status_key_id() {
    let mut p = start(Duration::from_millis(50)).await;
    let status = p.status().await;
    assert_eq!(
        (status.version.as_str(), status.healthz.as_str()),
        ("v2", "ok")
    );
    assert_eq!(status.key_id, "key-1:v1");

    let seed = [7u8; 32];
    let sealed = p.seal(&seed).await;
    assert_eq!(sealed.key_id, status.key_id);
    assert!(sealed.annotations.is_empty());
    assert_eq!(p.open(&sealed).await, seed);
}

#[tokio::test]
async fn a_rotation_changes_the_key_id_within_max_age_and_old_ciphertexts_still_decrypt() {
    let mut p = start(Duration::from_millis(50)).await;
    let old = p.seal(b"seed").await;
    *p.backend.version.lock().unwrap() = 2;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let status = p.status().await;
    assert_eq!(status.key_id, "key-1:v2");
    let new = p.seal(b"seed").await;
    assert_eq!(new.key_id, "key-1:v2");
    assert_eq!(p.open(&old).await, b"seed");
}

#[tokio::test]
async fn status_is_served_from_the_cache_while_it_is_fresh() {
    let mut p = start(Duration::from_secs(60)).await;
    let mut calls = Vec::new();
    for _ in 0..20 {
        let mut client = p.client.clone();
        calls.push(tokio::spawn(async move {
            client.status(StatusRequest {}).await.unwrap().into_inner()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().healthz, "ok");
    }
    assert_eq!(p.status().await.healthz, "ok");
    assert_eq!(p.backend.probes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refusals_map_to_the_codes_the_api_server_acts_on_and_health_follows() {
    let mut p = start(Duration::from_secs(60)).await;
    let sealed = p.seal(b"seed").await;
    let cases = [
        (
            BackendError::KeyUnusable("the root key is disabled".into()),
            Code::FailedPrecondition,
        ),
        (BackendError::Unavailable("down".into()), Code::Unavailable),
        (BackendError::Denied("no".into()), Code::PermissionDenied),
    ];
    for (refusal, code) in cases {
        p.backend.refuse(Some(refusal.clone()));
        let e = p
            .client
            .encrypt(encrypt_request(b"seed"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{refusal:?}");
        let e = p
            .client
            .decrypt(decrypt_request(
                sealed.ciphertext.clone(),
                sealed.key_id.clone(),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{refusal:?}");
        // A refusal of the key makes the next Status probe again, however fresh
        // the cache was.
        let status = p.status().await;
        assert_eq!(status.healthz, refusal.to_string());
        assert_eq!(status.key_id, "key-1:v1", "the last known key id stays");
    }
    p.backend.refuse(None);
    assert_eq!(p.open(&sealed).await, b"seed");
    assert_eq!(p.status().await.healthz, "ok");
}

#[tokio::test]
async fn the_api_limits_are_enforced_with_invalid_argument() {
    let mut p = start(Duration::from_secs(60)).await;
    let too_big = [
        encrypt_request(b""),
        encrypt_request(&vec![1; MAX_PLAINTEXT + 1]),
    ];
    for request in too_big {
        let e = p.client.encrypt(request).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    }
    let bad = [
        decrypt_request(Vec::new(), "key-1:v1".into()),
        decrypt_request(vec![1; MAX_CIPHERTEXT + 1], "key-1:v1".into()),
        decrypt_request(vec![1, 2], "k".repeat(MAX_KEY_ID + 1)),
    ];
    for request in bad {
        let e = p.client.decrypt(request).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    }
    // A ciphertext the key does not know is refused, and is no reason to probe.
    p.client.status(StatusRequest {}).await.unwrap();
    let probes = p.backend.probes.load(Ordering::SeqCst);
    let e = p
        .client
        .decrypt(decrypt_request(vec![9, 1, 2], "key-1:v1".into()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    p.client.status(StatusRequest {}).await.unwrap();
    assert_eq!(p.backend.probes.load(Ordering::SeqCst), probes);
    // A message larger than any the API server sends is not even decoded.
    let e = p
        .client
        .encrypt(encrypt_request(&vec![1; 100 * 1024]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
}

#[tokio::test]
async fn the_socket_is_owner_only_a_stale_one_is_replaced_and_a_live_one_kept() {
    use std::os::unix::fs::PermissionsExt;
    let mut p = start(Duration::from_secs(60)).await;
    let mode = std::fs::metadata(&p.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second plugin on the same path is refused while the first listens.
    assert!(matches!(bind_socket(&p.socket), Err(SocketError::InUse(_))));
    // The first stops without removing its socket (as after a crash): the next
    // one replaces it.
    p.stop.take().unwrap().send(()).unwrap();
    (&mut p.served).await.unwrap();
    assert!(
        p.socket.exists(),
        "a stopped server leaves its socket behind"
    );
    let listener = bind_socket(&p.socket).unwrap();
    drop(listener);
    // Anything but a socket is left alone.
    let file = p._dir.path().join("file");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(
        bind_socket(&file),
        Err(SocketError::NotASocket(_))
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert!(matches!(
        bind_socket(&p._dir.path().join("no/such/dir/kms.sock")),
        Err(SocketError::NoDirectory(_))
    ));
}

#[test]
fn cluster_names_are_1_to_256_bytes() {
    assert!(check_cluster_name("prod-eu").is_ok());
    assert!(check_cluster_name(&"c".repeat(256)).is_ok());
    assert!(check_cluster_name("").is_err());
    assert!(check_cluster_name(&"c".repeat(257)).is_err());
}
