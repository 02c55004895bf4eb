//! SoftHSM2 tokens for tests: the PKCS#11 keystore's own tests, and the XKS proxy
//! the XKS keystore's tests talk to (which keeps its keys in a token too).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` and discovers its tokens once, when its module is
//! initialised, and a module is initialised once per process. So a test binary
//! makes one [`SoftHsm`] — one temporary token directory with a pool of fresh
//! tokens, made with `softhsm2-util` before anything loads the module — and each
//! test takes a token of its own ([`SoftHsm::token`]), so tests never share a
//! token or its login state. A process that loads the module itself (the PKCS#11
//! tests) must set `SOFTHSM2_CONF` to [`SoftHsm::conf`] before it does; child
//! processes get it from [`SoftHsm::env`].
//!
//! Keys are made the way a customer would make them in their own token, with
//! OpenSC's `pkcs11-tool`, a client independent of kcm. Missing tools fail the test
//! with the fix instead of skipping it (`scripts/test` installs them as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tempfile::TempDir;

/// The user PIN of every token.
pub const PIN: &str = "user-pin-4711";
/// The security officer's PIN of every token.
pub const SO_PIN: &str = "so-pin-0815";

/// Where SoftHSM2's module may be installed, in the order they are tried.
const MODULE_CANDIDATES: [&str; 4] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// Where SoftHSM2's PKCS#11 module is: `$KCM_TEST_PKCS11_MODULE`, else the usual
/// places. Fails (not skips) when it is not installed.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("KCM_TEST_PKCS11_MODULE") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "KCM_TEST_PKCS11_MODULE={} does not exist",
            p.display()
        );
        return p;
    }
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect(
            "SoftHSM2 is not installed: these tests need it. Install the `softhsm2` package \
             (apt-get install softhsm2; scripts/test does it as root) or set \
             KCM_TEST_PKCS11_MODULE to libsofthsm2.so",
        )
}

/// The label of the `i`th token of the pool.
pub fn token_label(i: usize) -> String {
    format!("kcm-test-{i:02}")
}

/// A token directory with a pool of fresh tokens. See the module documentation.
pub struct SoftHsm {
    dir: TempDir,
    module: PathBuf,
    tokens: usize,
    next: AtomicUsize,
    /// Held while `pkcs11-tool` changes a token: two at once in one token directory
    /// can make one of them find no token at all ("No slot with token named ...").
    tool: Mutex<()>,
}

impl SoftHsm {
    /// A new token directory with `tokens` tokens labelled [`token_label`]`(0..tokens)`,
    /// each with the user PIN [`PIN`].
    pub fn with_tokens(tokens: usize) -> Self {
        let module = module_path();
        let dir = tempfile::tempdir().expect("temporary directory");
        let token_dir = dir.path().join("tokens");
        std::fs::create_dir(&token_dir).expect("token directory");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_dir.display()
            ),
        )
        .expect("write softhsm2.conf");
        let hsm = Self {
            dir,
            module,
            tokens,
            next: AtomicUsize::new(0),
            tool: Mutex::new(()),
        };
        for i in 0..tokens {
            hsm.run(
                "softhsm2-util",
                &["--init-token", "--free", "--label", &token_label(i)],
                &["--pin", PIN, "--so-pin", SO_PIN],
            );
        }
        hsm
    }

    /// The directory of the configuration file and the tokens.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PKCS#11 module.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The configuration file `SOFTHSM2_CONF` must name.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// What a child process needs in its environment to see the tokens.
    pub fn env(&self) -> [(&'static str, PathBuf); 1] {
        [("SOFTHSM2_CONF", self.conf())]
    }

    /// A fresh token no other test uses; returns its label.
    pub fn token(&self) -> String {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        assert!(
            i < self.tokens,
            "more tests than tokens: make the SoftHsm with more"
        );
        token_label(i)
    }

    /// Makes an AES-256 key labelled `label` with CKA_ID `id_hex` in token `token`,
    /// usable to encrypt and decrypt, as its holder would (HYOK).
    pub fn customer_key(&self, token: &str, label: &str, id_hex: &str) {
        self.pkcs11_tool(
            token,
            &[
                "--keygen",
                "--key-type",
                "AES:32",
                "--label",
                label,
                "--id",
                id_hex,
                "--usage-decrypt",
                "--sensitive",
            ],
        );
    }

    /// Deletes the secret key labelled `label` from token `token`, as its holder
    /// revoking it would.
    pub fn delete_key(&self, token: &str, label: &str) {
        self.pkcs11_tool(
            token,
            &["--delete-object", "--type", "secrkey", "--label", label],
        );
    }

    fn pkcs11_tool(&self, token: &str, args: &[&str]) {
        let module = self.module.display().to_string();
        let login = [
            "--module",
            &module,
            "--token-label",
            token,
            "--login",
            "--pin",
            PIN,
        ];
        let _one_at_a_time = self.tool.lock().unwrap_or_else(|e| e.into_inner());
        self.run("pkcs11-tool", &login, args);
    }

    /// Runs `program` with `args` and `more` and the token directory's environment;
    /// panics with its output unless it succeeds.
    fn run(&self, program: &str, args: &[&str], more: &[&str]) {
        let out = Command::new(program)
            .envs(self.env())
            .args(args)
            .args(more)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {program} ({e}): install the softhsm2 and opensc packages \
                     (scripts/test does it as root)"
                )
            });
        assert!(
            out.status.success(),
            "{program} {} failed: {}{}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
