//! Drives the real `kcm-keystore-example` binary over its Unix socket with the
//! generated gRPC client, exactly as kcm would.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;

#[allow(missing_docs, clippy::all)]
mod proto {
    tonic::include_proto!("kcm.keystore.v1");
}

use proto::keystore_plugin_client::KeystorePluginClient;
use proto::*;

type Client = KeystorePluginClient<Channel>;

const BIN: &str = env!("CARGO_BIN_EXE_kcm-keystore-example");
const START_LIMIT: Duration = Duration::from_secs(15);

/// A key directory, a KEK file and a socket path in one temp dir.
struct Setup {
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let kek = tmp.path().join("kek");
        std::fs::write(&kek, "11".repeat(32) + "\n").unwrap();
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self { tmp }
    }
    fn keys(&self) -> PathBuf {
        self.tmp.path().join("keys")
    }
    fn kek(&self) -> PathBuf {
        self.tmp.path().join("kek")
    }
    fn socket(&self) -> PathBuf {
        self.tmp.path().join("plugin.sock")
    }
}

/// The running plugin; killed when dropped.
struct Plugin {
    child: Child,
    client: Client,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(socket: &Path) -> Result<Client, tonic::transport::Error> {
    let socket = socket.to_owned();
    let channel = Endpoint::from_static("http://plugin.invalid")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await?;
    Ok(KeystorePluginClient::new(channel))
}

async fn start_with(setup: &Setup, extra: &[&str]) -> Plugin {
    let mut child = Command::new(BIN)
        .arg("--dir")
        .arg(setup.keys())
        .arg("--kek-file")
        .arg(setup.kek())
        .args(extra)
        .env("KCM_PLUGIN_SOCKET", setup.socket())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("run the example plugin");
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("plugin exited during start: {status}");
        }
        if setup.socket().exists() {
            if let Ok(mut client) = connect(&setup.socket()).await {
                if client.health(HealthRequest {}).await.is_ok() {
                    return Plugin { child, client };
                }
            }
        }
        assert!(Instant::now() < deadline, "plugin did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start(setup: &Setup) -> Plugin {
    start_with(setup, &[]).await
}

async fn create(c: &mut Client) -> Vec<u8> {
    c.create_key(CreateKeyRequest {
        label: "test-root".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .handle
}

async fn wrap(
    c: &mut Client,
    handle: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    c.wrap(WrapRequest {
        handle: handle.to_vec(),
        plaintext: plaintext.to_vec(),
        aad: aad.to_vec(),
    })
    .await
    .map(|r| r.into_inner().wrapped)
}

async fn unwrap(
    c: &mut Client,
    handle: &[u8],
    wrapped: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    c.unwrap(UnwrapRequest {
        handle: handle.to_vec(),
        wrapped: wrapped.to_vec(),
        aad: aad.to_vec(),
    })
    .await
    .map(|r| r.into_inner().plaintext)
}

async fn import(c: &mut Client, material: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    c.import_key(ImportKeyRequest {
        label: "byok".into(),
        material: material.to_vec(),
    })
    .await
    .map(|r| r.into_inner().handle)
}

async fn reference(c: &mut Client, reference: &str) -> Result<Vec<u8>, tonic::Status> {
    c.reference_key(ReferenceKeyRequest {
        reference: reference.into(),
    })
    .await
    .map(|r| r.into_inner().handle)
}

/// CheckKey on `handle`.
async fn check(c: &mut Client, handle: &[u8]) -> Result<(), tonic::Status> {
    c.check_key(CheckKeyRequest {
        handle: handle.to_vec(),
    })
    .await
    .map(|_| ())
}

/// EnableKey on `handle`.
async fn enable(c: &mut Client, handle: &[u8]) -> Result<(), tonic::Status> {
    c.enable_key(EnableKeyRequest {
        handle: handle.to_vec(),
    })
    .await
    .map(|_| ())
}

/// DisableKey on `handle`.
async fn disable(c: &mut Client, handle: &[u8]) -> Result<(), tonic::Status> {
    c.disable_key(DisableKeyRequest {
        handle: handle.to_vec(),
    })
    .await
    .map(|_| ())
}

/// DestroyKey on `handle`.
async fn destroy(c: &mut Client, handle: &[u8]) -> Result<(), tonic::Status> {
    c.destroy_key(DestroyKeyRequest {
        handle: handle.to_vec(),
    })
    .await
    .map(|_| ())
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("expected a failure status").code()
}

#[tokio::test]
async fn capabilities_and_health() {
    let setup = Setup::new();
    let mut p = start(&setup).await;
    let caps = p
        .client
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(caps.generate && caps.import && caps.reference);
    assert_eq!(caps.plugin_name, "kcm-keystore-example");
    assert_eq!(caps.plugin_version, env!("CARGO_PKG_VERSION"));
    // The socket and the key directory are the owner's only.
    let socket_mode = std::fs::metadata(setup.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(socket_mode & 0o077, 0, "socket mode {socket_mode:o}");
    let dir_mode = std::fs::metadata(setup.keys())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "dir mode {dir_mode:o}");
}

#[tokio::test]
async fn wrap_unwrap_round_trip_and_authentication() {
    let setup = Setup::new();
    let mut p = start(&setup).await;
    let c = &mut p.client;
    let h = create(c).await;
    assert!(!h.is_empty());

    let secret = b"thirty-two bytes of system key!!";
    let blob = wrap(c, &h, secret, b"binding").await.unwrap();
    assert_eq!(
        blob.len(),
        12 + secret.len() + 16,
        "nonce || ciphertext || tag"
    );
    assert!(!blob.windows(secret.len()).any(|w| w == secret));
    let again = wrap(c, &h, secret, b"binding").await.unwrap();
    assert_ne!(blob, again, "a fresh nonce for every wrap");
    assert_eq!(unwrap(c, &h, &blob, b"binding").await.unwrap(), secret);
    assert_eq!(unwrap(c, &h, &again, b"binding").await.unwrap(), secret);

    // Wrong aad, tampering, truncation, another key: all INVALID_ARGUMENT.
    assert_eq!(
        code(unwrap(c, &h, &blob, b"other").await),
        Code::InvalidArgument
    );
    for i in [0, 12, blob.len() - 1] {
        let mut tampered = blob.clone();
        tampered[i] ^= 0x01;
        assert_eq!(
            code(unwrap(c, &h, &tampered, b"binding").await),
            Code::InvalidArgument,
            "byte {i}"
        );
    }
    assert_eq!(
        code(unwrap(c, &h, &blob[..20], b"binding").await),
        Code::InvalidArgument
    );
    let other = create(c).await;
    assert_ne!(other, h);
    assert_eq!(
        code(unwrap(c, &other, &blob, b"binding").await),
        Code::InvalidArgument
    );

    // A handle that is not ours names no key.
    assert_eq!(code(wrap(c, b"o1:nope", secret, b"").await), Code::NotFound);
    assert_eq!(
        code(wrap(c, b"o1:00000000000000000000000000000000", secret, b"").await),
        Code::NotFound
    );
}

#[tokio::test]
async fn disable_refuses_use_until_enabled() {
    let setup = Setup::new();
    let mut p = start(&setup).await;
    let c = &mut p.client;
    let h = create(c).await;
    let blob = wrap(c, &h, b"k", b"a").await.unwrap();

    disable(c, &h).await.unwrap();
    // Idempotent.
    disable(c, &h).await.unwrap();
    assert_eq!(
        code(wrap(c, &h, b"k", b"a").await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(unwrap(c, &h, &blob, b"a").await),
        Code::FailedPrecondition
    );
    assert_eq!(code(check(c, &h).await), Code::FailedPrecondition);

    enable(c, &h).await.unwrap();
    check(c, &h).await.unwrap();
    assert_eq!(unwrap(c, &h, &blob, b"a").await.unwrap(), b"k");
}

#[tokio::test]
async fn destroy_makes_the_handle_not_found() {
    let setup = Setup::new();
    let mut p = start(&setup).await;
    let c = &mut p.client;
    let h = create(c).await;
    let blob = wrap(c, &h, b"k", b"a").await.unwrap();
    assert_eq!(std::fs::read_dir(setup.keys()).unwrap().count(), 1);

    destroy(c, &h).await.unwrap();
    assert_eq!(
        std::fs::read_dir(setup.keys()).unwrap().count(),
        0,
        "the key file is gone"
    );
    assert_eq!(code(unwrap(c, &h, &blob, b"a").await), Code::NotFound);
    assert_eq!(code(wrap(c, &h, b"k", b"a").await), Code::NotFound);
    assert_eq!(code(check(c, &h).await), Code::NotFound);
    assert_eq!(code(enable(c, &h).await), Code::NotFound);
    // Idempotent.
    destroy(c, &h).await.unwrap();
}

#[tokio::test]
async fn import_checks_length_and_uses_the_material() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

    let setup = Setup::new();
    let mut p = start(&setup).await;
    let c = &mut p.client;
    for len in [0usize, 31, 33] {
        let r = import(c, &vec![7u8; len]).await;
        assert_eq!(code(r), Code::InvalidArgument, "{len} bytes");
    }
    assert_eq!(std::fs::read_dir(setup.keys()).unwrap().count(), 0);

    let material = [0x5au8; 32];
    let h = import(c, &material).await.unwrap();
    let blob = wrap(c, &h, b"payload", b"aad").await.unwrap();
    // The blob is AES-256-GCM under exactly the imported material.
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &material).unwrap());
    let (nonce, sealed) = blob.split_at(12);
    let mut in_out = sealed.to_vec();
    let opened = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).unwrap(),
            Aad::from(b"aad"),
            &mut in_out,
        )
        .expect("opens under the imported key");
    assert_eq!(opened, b"payload");
}

#[tokio::test]
async fn reference_uses_an_existing_key_and_destroy_leaves_it() {
    let setup = Setup::new();
    let mut p = start(&setup).await;
    let c = &mut p.client;
    let owned = create(c).await;
    let id = std::str::from_utf8(&owned)
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .to_owned();

    let referenced = reference(c, &id).await.unwrap();
    assert_ne!(referenced, owned);
    let blob = wrap(c, &referenced, b"k", b"a").await.unwrap();
    assert_eq!(unwrap(c, &owned, &blob, b"a").await.unwrap(), b"k");

    // Destroying a reference changes nothing.
    destroy(c, &referenced).await.unwrap();
    assert_eq!(unwrap(c, &referenced, &blob, b"a").await.unwrap(), b"k");

    let unknown = reference(c, "0123456789abcdef0123456789abcdef").await;
    assert_eq!(code(unknown), Code::NotFound);
    let malformed = reference(c, "../kek").await;
    assert_eq!(code(malformed), Code::InvalidArgument);

    // Revoked by its holder (here: the owned handle destroyed): the reference is gone too.
    destroy(c, &owned).await.unwrap();
    assert_eq!(
        code(unwrap(c, &referenced, &blob, b"a").await),
        Code::NotFound
    );
}

#[tokio::test]
async fn keys_survive_a_restart_and_are_sealed_on_disk() {
    let setup = Setup::new();
    let material = [0xc3u8; 32];
    let (imported, generated, blob_i, blob_g) = {
        let mut p = start(&setup).await;
        let c = &mut p.client;
        let imported = import(c, &material).await.unwrap();
        let generated = create(c).await;
        let blob_i = wrap(c, &imported, b"one", b"x").await.unwrap();
        let blob_g = wrap(c, &generated, b"two", b"y").await.unwrap();
        disable(c, &generated).await.unwrap();
        (imported, generated, blob_i, blob_g)
        // The plugin is killed here.
    };

    // No plaintext key material in any file, in raw, hex or base64-ish form.
    let hex_material = "c3".repeat(32);
    let mut files = 0;
    for entry in std::fs::read_dir(setup.keys()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        assert!(
            !bytes.windows(32).any(|w| w == material),
            "{path:?} holds the raw key"
        );
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(
            !text.contains(&hex_material),
            "{path:?} holds the key in hex"
        );
        assert!(
            !text.contains("w8pdw8pdw8pd"),
            "{path:?} holds the key in base64"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{path:?} mode {mode:o}");
    }
    assert_eq!(files, 2, "one file per key, no temp files left");

    let mut p = start(&setup).await;
    let c = &mut p.client;
    assert_eq!(unwrap(c, &imported, &blob_i, b"x").await.unwrap(), b"one");
    // The disabled state survived too.
    assert_eq!(
        code(unwrap(c, &generated, &blob_g, b"y").await),
        Code::FailedPrecondition
    );
    enable(c, &generated).await.unwrap();
    assert_eq!(unwrap(c, &generated, &blob_g, b"y").await.unwrap(), b"two");
}

#[tokio::test]
async fn wrong_kek_opens_nothing() {
    let setup = Setup::new();
    let (h, blob) = {
        let mut p = start(&setup).await;
        let h = create(&mut p.client).await;
        let blob = wrap(&mut p.client, &h, b"k", b"a").await.unwrap();
        (h, blob)
    };
    std::fs::write(setup.kek(), [0x22u8; 32]).unwrap(); // raw form this time
    let mut p = start(&setup).await;
    let r = unwrap(&mut p.client, &h, &blob, b"a").await;
    let status = r.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(status.message().contains("KEK"), "{}", status.message());
}

#[tokio::test]
async fn capability_switches() {
    let setup = Setup::new();
    let mut p = start_with(&setup, &["--no-import", "--no-reference"]).await;
    let c = &mut p.client;
    let caps = c
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(caps.generate && !caps.import && !caps.reference);
    assert_eq!(code(import(c, &[1; 32]).await), Code::Unimplemented);
    assert_eq!(code(reference(c, "x").await), Code::Unimplemented);
}

#[test]
fn refuses_a_kek_file_others_can_read() {
    let setup = Setup::new();
    std::fs::set_permissions(setup.kek(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .arg("--dir")
        .arg(setup.keys())
        .arg("--kek-file")
        .arg(setup.kek())
        .env("KCM_PLUGIN_SOCKET", setup.socket())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!setup.socket().exists());
}

#[test]
fn help_documents_the_options() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--dir",
        "--kek-file",
        "KCM_PLUGIN_SOCKET",
        "KCM_EXAMPLE_KEYSTORE_DIR",
        "64 hex digits",
    ] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}
