//! The project's test XKS proxy (`tests/python/xks_proxy.py`, written from the
//! public XKS proxy API specification and backed by a SoftHSM2 token), run as a
//! child process for the Rust tests of the XKS keystore.
//!
//! The Python integration tests (`tests/python/test_xks.py`) drive kcm against
//! the same proxy; using it here too keeps one proxy implementation, independent of
//! kcm's client, instead of a second one in Rust.
//!
//! It needs a Python with `python-pkcs11` and `cryptography`:
//! `$KCM_TEST_PYTHON`, else the virtual environment `scripts/test` creates in
//! `<workspace>/.venv` from `tests/python/requirements.txt`. Without one the test
//! fails with the fix rather than skipping.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{after_exit, workspace_root};
use crate::softhsm::{SoftHsm, PIN};

/// The SigV4 access key id the proxy accepts (20 to 30 of A-Z and 2-7, as the
/// specification asks).
pub const ACCESS_KEY_ID: &str = "KCMTESTXKSPROXYACCESSKEY";
/// The secret of [`ACCESS_KEY_ID`] (test credentials only).
pub const SECRET: &str = "kcm-test-xks-proxy-secret-0123456789abcdef";
/// The region the proxy checks in the credential scope.
pub const REGION: &str = "us-east-1";
/// The proxy's API path (no prefix).
pub const URI_PATH: &str = "/kms/xks/v1";
/// How long the proxy may take to start.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The Python that runs the proxy. See the module documentation.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KCM_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the XKS proxy tests need a Python with python-pkcs11 and cryptography: run \
         scripts/test once (it creates {} from tests/python/requirements.txt), or set \
         KCM_TEST_PYTHON",
        venv.display()
    );
    venv
}

/// A running test XKS proxy with a token of its own.
pub struct XksProxy {
    hsm: SoftHsm,
    token: String,
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    next_key: AtomicUsize,
    client_certificates: bool,
}

impl XksProxy {
    /// Starts a proxy on a free port of 127.0.0.1, with TLS from a private CA
    /// ([`XksProxy::ca_file`]) and one fresh SoftHSM2 token.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a proxy as [`XksProxy::start`] does that requires mutual TLS: a client
    /// certificate of its CA ([`XksProxy::client_identity`]).
    pub fn start_requiring_client_certificates() -> Self {
        Self::start_with(true)
    }

    fn start_with(client_certificates: bool) -> Self {
        let hsm = SoftHsm::with_tokens(1);
        let token = hsm.token();
        let dir = tempfile::tempdir().expect("temporary directory");
        let python = python();
        let scripts = workspace_root().join("tests/python");
        let private = |name: &str, content: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{content}\n")).expect("write a proxy secret");
            path
        };
        let pin_file = private("pin", PIN);
        let secret_file = private("secret", SECRET);
        // The proxy's own helper makes the CA and the server certificate.
        let certs = Command::new(&python)
            .arg("-c")
            .arg(
                "import sys, pathlib; sys.path.insert(0, sys.argv[1]); import xks_proxy; \
                 xks_proxy.test_certificates(pathlib.Path(sys.argv[2]))",
            )
            .arg(&scripts)
            .arg(dir.path())
            .output()
            .expect("run python");
        assert!(
            certs.status.success(),
            "making the proxy's certificates failed: {}",
            String::from_utf8_lossy(&certs.stderr)
        );
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("proxy log");
        let mut child = Command::new(&python)
            .arg(scripts.join("xks_proxy.py"))
            .arg("--module")
            .arg(hsm.module())
            .args(["--token-label", &token, "--pin-file"])
            .arg(&pin_file)
            .args(["--access-key-id", ACCESS_KEY_ID, "--secret-file"])
            .arg(&secret_file)
            .args(["--region", REGION, "--port", "0", "--tls-cert"])
            .arg(dir.path().join("xks-cert.pem"))
            .arg("--tls-key")
            .arg(dir.path().join("xks-key.pem"))
            .args(
                client_certificates
                    .then(|| ["--client-ca".into(), dir.path().join("xks-ca.pem")])
                    .into_iter()
                    .flatten(),
            )
            .envs(hsm.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the XKS proxy");
        let port = Self::wait_until_listening(&mut child, dir.path());
        Self {
            hsm,
            token,
            dir,
            child,
            port,
            next_key: AtomicUsize::new(0),
            client_certificates,
        }
    }

    /// One proxy shared by every test of the calling test binary, started on first
    /// use and stopped (its files removed) once the test process has exited.
    pub fn shared() -> &'static Self {
        static PROXY: OnceLock<XksProxy> = OnceLock::new();
        PROXY.get_or_init(|| {
            let proxy = Self::start();
            after_exit(&format!(
                "kill {pid} 2>/dev/null; rm -rf '{dir}' '{tokens}'",
                pid = proxy.child.id(),
                dir = proxy.dir.path().display(),
                tokens = proxy.hsm.dir().display()
            ));
            proxy
        })
    }

    /// Reads the proxy's `LISTENING <port>` line; panics with its log if it does not
    /// come within [`START_LIMIT`].
    fn wait_until_listening(child: &mut Child, dir: &Path) -> u16 {
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let port = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| {
                    line.strip_prefix("LISTENING ")
                        .and_then(|p| p.trim().parse::<u16>().ok())
                });
            let _ = tx.send(port);
        });
        match rx.recv_timeout(START_LIMIT) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default();
                panic!("the XKS proxy did not start within {START_LIMIT:?}:\n{log}");
            }
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The PEM file of the private CA that signed the proxy's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("xks-ca.pem")
    }

    /// Whether the proxy requires a client certificate (mutual TLS).
    pub fn requires_client_certificates(&self) -> bool {
        self.client_certificates
    }

    /// A client certificate and key of the proxy's CA (for mutual TLS).
    pub fn client_identity(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("xks-client-cert.pem"),
            self.dir.path().join("xks-client-key.pem"),
        )
    }

    /// Makes a new AES-256 key in the proxy's token, as the key's holder would, and
    /// returns its externalKeyId (the key's label). Labels end in `-k`, so a handle
    /// changed in its last byte never names another key.
    pub fn create_key(&self) -> String {
        let n = self.next_key.fetch_add(1, Ordering::SeqCst);
        let label = format!("customer-{}-{n}-k", std::process::id());
        let id_hex = format!("{:08x}{n:08x}", std::process::id());
        self.hsm.customer_key(&self.token, &label, &id_hex);
        label
    }

    /// Deletes a key made by [`XksProxy::create_key`] from the token.
    pub fn delete_key(&self, external_key_id: &str) {
        self.hsm.delete_key(&self.token, external_key_id);
    }

    /// Everything the proxy logged so far (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for XksProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
