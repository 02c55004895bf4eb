//! Drives [`PluginKeystore`] against the real example plugin binary
//! (`plugins/example-keystore`): the shared keystore conformance suite (with every
//! capability, and with generation only), what the plugin reports about itself,
//! the error contract where it is the plugin's own, supervision (restart after
//! SIGKILL, fail-fast while down, call timeouts) and start-up failures.
//!
//! The binary is found by `kcm_test_support::process::example_plugin`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider};
use kcm_core::secret::SecretBytes;
use kcm_keystore_plugin::{
    PluginConfig, PluginKeystore, DEFAULT_CALL_TIMEOUT, DEFAULT_START_TIMEOUT,
};
use kcm_test_support::keystore_conformance::{Destroy, Disable, Expected, KeyHolder, Subject};
use kcm_test_support::process::example_plugin;

/// A temp dir with a key directory, a KEK file and a socket directory.
struct Setup {
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let kek = tmp.path().join("kek");
        std::fs::write(&kek, [0x42u8; 32]).unwrap();
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self { tmp }
    }

    fn kek(&self) -> PathBuf {
        self.tmp.path().join("kek")
    }

    fn config(&self, name: &str, extra_args: &[&str]) -> PluginConfig {
        let mut config = PluginConfig::new(name, example_plugin(), self.tmp.path().join("run"));
        config.args = vec![
            "--dir".into(),
            self.tmp.path().join("keys").display().to_string(),
        ];
        config.args.extend(extra_args.iter().map(|s| s.to_string()));
        // Through `env`, to exercise it.
        config.env.insert(
            "KCM_EXAMPLE_KEYSTORE_KEK_FILE".into(),
            self.kek().display().to_string(),
        );
        config.env.insert("RUST_LOG".into(), "warn".into());
        config.start_timeout = Duration::from_secs(15);
        config
    }

    async fn start(&self) -> PluginKeystore {
        PluginKeystore::start(self.config("example", &[]))
            .await
            .expect("the example plugin starts")
    }

    /// Starts the plugin as `name` with calls bounded by `call_timeout`, and makes
    /// one root key with it: where the supervision tests begin.
    async fn start_with_root(
        &self,
        name: &str,
        call_timeout: Duration,
    ) -> (PluginKeystore, Vec<u8>) {
        let mut config = self.config(name, &[]);
        config.call_timeout = call_timeout;
        let ks = PluginKeystore::start(config)
            .await
            .expect("the example plugin starts");
        let root = ks.create_root_key("root").await.unwrap();
        (ks, root)
    }
}

/// Starts a plugin that must not come up: `command args…` in a fresh socket
/// directory, given `start_timeout`. Returns the error and how long start took.
async fn failed_start(
    name: &str,
    command: &str,
    args: &[&str],
    start_timeout: Duration,
) -> (KeystoreError, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = PluginConfig::new(name, command, tmp.path());
    config.args = args.iter().map(|a| a.to_string()).collect();
    config.start_timeout = start_timeout;
    let began = Instant::now();
    let err = PluginKeystore::start(config)
        .await
        .expect_err("the plugin must not start");
    (err, began.elapsed())
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

/// Whether every thread of `pid` is stopped (state `T`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    })
}

/// Polls `cond` every 10 ms until it holds; panics after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::copy_from(bytes)
}

/// The plugin's own keys stand for the holder's: in the example plugin a reference
/// is the id of a key in its key directory.
struct PluginHolder(Arc<PluginKeystore>);

#[async_trait::async_trait]
impl KeyHolder for PluginHolder {
    async fn new_key(&self) -> String {
        let handle = self.0.create_root_key("holder").await.unwrap();
        let handle = String::from_utf8(handle).expect("the example's handles are text");
        let (_, id) = handle.split_once(':').expect("o1:<key id>");
        id.to_owned()
    }

    fn missing_reference(&self) -> String {
        "0123456789abcdef0123456789abcdef".into()
    }
}

/// The example plugin started with `args`, as a conformance subject offering the
/// capabilities `capabilities`.
async fn conformance_subject(args: &[&str], capabilities: Capabilities) -> Subject {
    let setup = Setup::new();
    let keystore = Arc::new(
        PluginKeystore::start(setup.config("conformance", args))
            .await
            .expect("the example plugin starts"),
    );
    let expected = Expected {
        kind: "plugin",
        capabilities,
        destroy: Destroy::ErasesKey,
        disable: Disable::RefusesUse,
    };
    let subject = Subject::new(keystore.clone(), expected, setup);
    if capabilities.reference {
        subject.with_holder(PluginHolder(keystore))
    } else {
        subject
    }
}

/// The suite against the example plugin with every capability.
mod conformance {
    use super::*;

    async fn subject() -> Subject {
        let all = Capabilities {
            generate: true,
            import: true,
            reference: true,
        };
        conformance_subject(&[], all).await
    }

    kcm_test_support::keystore_conformance_tests!(subject);
}

/// The suite against the example plugin without import and reference: both are
/// refused as `Unsupported`.
mod conformance_generate_only {
    use super::*;

    async fn subject() -> Subject {
        let generate_only = Capabilities {
            generate: true,
            import: false,
            reference: false,
        };
        conformance_subject(&["--no-import", "--no-reference"], generate_only).await
    }

    kcm_test_support::keystore_conformance_tests!(subject);
}

/// What the plugin reports about itself, and the private directory its socket
/// lives in.
#[tokio::test]
async fn the_plugin_names_itself_and_its_socket_is_private() {
    let setup = Setup::new();
    let ks = setup.start().await;
    assert_eq!(ks.name(), "example");
    assert_eq!(ks.plugin_name(), "kcm-keystore-example");
    assert!(!ks.plugin_version().is_empty());
    assert!(ks.child_pid().is_some());
    let socket_dir = ks.socket_path().parent().unwrap();
    let mode = std::fs::metadata(socket_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "socket dir mode {mode:o}");
    assert!(socket_dir.starts_with(setup.tmp.path().join("run")));
}

/// Where the error contract carries the plugin's own words: a disabled key says so;
/// INVALID_ARGUMENT on anything but Unwrap is no unwrap failure; a refused
/// capability names the keystore. (The rest of the contract is the suite's.)
#[tokio::test]
async fn error_mapping() {
    let setup = Setup::new();
    let (ks, h) = setup.start_with_root("example", DEFAULT_CALL_TIMEOUT).await;
    let blob = ks.wrap(&h, &secret(b"k"), b"right").await.unwrap();
    ks.disable_root_key(&h).await.unwrap();
    assert!(matches!(
        ks.unwrap(&h, &blob, b"right").await,
        Err(KeystoreError::KeyUnusable(m)) if m.contains("disabled")
    ));
    let short = ks.import_root_key("byok", &secret(&[1u8; 31])).await;
    assert!(
        matches!(&short, Err(KeystoreError::Unavailable(m)) if m.contains("32 bytes")),
        "{short:?}"
    );
    let limited = PluginKeystore::start(setup.config("limited", &["--no-import"]))
        .await
        .unwrap();
    assert!(matches!(
        limited.import_root_key("byok", &secret(&[1u8; 32])).await,
        Err(KeystoreError::Unsupported(m)) if m.contains("limited")
    ));
}

#[tokio::test]
async fn killed_plugin_is_restarted() {
    let setup = Setup::new();
    let (ks, h) = setup.start_with_root("example", DEFAULT_CALL_TIMEOUT).await;
    let blob = ks.wrap(&h, &secret(b"survives"), b"a").await.unwrap();
    let old_pid = ks.child_pid().unwrap();

    signal(old_pid, "KILL");
    wait_for("the plugin to come back", Duration::from_secs(20), || {
        ks.is_up() && ks.child_pid().is_some_and(|p| p != old_pid)
    })
    .await;
    assert_eq!(ks.restarts(), 1);
    ks.health().await.unwrap();
    assert_eq!(
        ks.unwrap(&h, &blob, b"a").await.unwrap().expose_secret(),
        b"survives"
    );
    wait_for(
        "the old process to be reaped",
        Duration::from_secs(5),
        || process_gone(old_pid),
    )
    .await;
}

#[tokio::test]
async fn calls_fail_fast_while_the_plugin_is_down_and_recover() {
    let setup = Setup::new();
    let (ks, h) = setup.start_with_root("flaky", Duration::from_secs(3)).await;
    let blob = ks.wrap(&h, &secret(b"k"), b"").await.unwrap();

    // Make every restart fail (the plugin refuses a KEK file others can read), then kill it.
    std::fs::set_permissions(setup.kek(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let old_pid = ks.child_pid().unwrap();
    signal(old_pid, "KILL");
    wait_for("the plugin to be seen down", Duration::from_secs(5), || {
        !ks.is_up()
    })
    .await;
    for _ in 0..3 {
        let began = Instant::now();
        let result = ks.unwrap(&h, &blob, b"").await;
        assert!(
            matches!(&result, Err(KeystoreError::Unavailable(m)) if m.contains("flaky") && m.contains("restarting")),
            "{result:?}"
        );
        assert!(began.elapsed() < Duration::from_millis(500), "failed fast");
        assert!(matches!(
            ks.health().await,
            Err(KeystoreError::Unavailable(_))
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        !ks.is_up(),
        "restarts keep failing while the KEK file is refused"
    );
    assert_eq!(ks.restarts(), 0);

    // Repair: a later restart succeeds (bounded backoff: at most 5 s between tries).
    std::fs::set_permissions(setup.kek(), std::fs::Permissions::from_mode(0o600)).unwrap();
    wait_for("the plugin to recover", Duration::from_secs(20), || {
        ks.is_up()
    })
    .await;
    assert_eq!(ks.restarts(), 1);
    assert_eq!(
        ks.unwrap(&h, &blob, b"").await.unwrap().expose_secret(),
        b"k"
    );
}

#[tokio::test]
async fn a_hung_plugin_times_out() {
    let setup = Setup::new();
    let (ks, h) = setup
        .start_with_root("hung", Duration::from_millis(500))
        .await;
    let pid = ks.child_pid().unwrap();

    signal(pid, "STOP");
    // SIGSTOP takes effect asynchronously, thread by thread: wait until all are stopped.
    wait_for(
        "every plugin thread to stop",
        Duration::from_secs(5),
        || all_threads_stopped(pid),
    )
    .await;
    let began = Instant::now();
    let result = ks.wrap(&h, &secret(b"k"), b"").await;
    let took = began.elapsed();
    signal(pid, "CONT");
    assert!(
        matches!(&result, Err(KeystoreError::Unavailable(m)) if m.contains("did not answer")),
        "{result:?}"
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // A stopped process has not exited: no restart, and it answers again.
    ks.wrap(&h, &secret(b"k"), b"").await.unwrap();
    assert_eq!(ks.child_pid(), Some(pid));
    assert_eq!(ks.restarts(), 0);
}

#[tokio::test]
async fn missing_command_is_a_clear_error() {
    let command = "/nonexistent/kcm-plugin-ghost";
    let (err, _) = failed_start("ghost", command, &[], DEFAULT_START_TIMEOUT).await;
    let KeystoreError::Misconfigured(message) = &err else {
        panic!("wrong error: {err:?}");
    };
    assert!(message.contains(command), "{message}");
    assert!(message.contains("ghost"), "{message}");
}

#[tokio::test]
async fn a_plugin_that_never_listens_fails_within_the_timeout() {
    let (err, took) = failed_start("silent", "sleep", &["30"], Duration::from_secs(1)).await;
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let KeystoreError::Unavailable(message) = &err else {
        panic!("wrong error: {err:?}");
    };
    assert!(
        message.contains("silent") && message.contains("sleep"),
        "{message}"
    );
    assert!(message.contains("did not answer Health"), "{message}");
}

#[tokio::test]
async fn a_plugin_that_exits_at_once_fails_start_quickly() {
    let (err, took) = failed_start("quitter", "false", &[], Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5));
    assert!(
        matches!(&err, KeystoreError::Misconfigured(m) if m.contains("exited during start-up")),
        "{err:?}"
    );
}

#[tokio::test]
async fn drop_and_shutdown_kill_the_plugin() {
    let setup = Setup::new();
    let ks = setup.start().await;
    let pid = ks.child_pid().unwrap();
    let socket_dir = ks.socket_path().parent().unwrap().to_owned();
    drop(ks);
    wait_for("the dropped plugin to die", Duration::from_secs(5), || {
        process_gone(pid)
    })
    .await;
    wait_for(
        "the socket dir to be removed",
        Duration::from_secs(5),
        || !socket_dir.exists(),
    )
    .await;

    let ks = setup.start().await;
    let pid = ks.child_pid().unwrap();
    ks.shutdown().await;
    assert!(!ks.is_up());
    assert_eq!(ks.child_pid(), None);
    assert!(matches!(
        ks.health().await,
        Err(KeystoreError::Unavailable(m)) if m.contains("shut down")
    ));
    wait_for(
        "the shut-down plugin to die",
        Duration::from_secs(5),
        || process_gone(pid),
    )
    .await;
    ks.shutdown().await; // idempotent
}

#[tokio::test]
async fn the_plugin_gets_a_minimal_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("env.txt");
    let mut config = PluginConfig::new("env", "sh", tmp.path().join("run"));
    config.args = vec!["-c".into(), "env > \"$DUMP\"; exit 3".into()];
    config.env.insert("DUMP".into(), dump.display().to_string());
    config.env.insert("PLUGIN_SETTING".into(), "value-1".into());
    let err = PluginKeystore::start(config).await.unwrap_err();
    assert!(
        matches!(&err, KeystoreError::Misconfigured(m) if m.contains("exit status: 3")),
        "{err:?}"
    );
    let env = std::fs::read_to_string(&dump).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(env.contains("PLUGIN_SETTING=value-1"), "{env}");
    assert!(
        env.lines()
            .any(|l| l.starts_with("KCM_PLUGIN_SOCKET=") && l.ends_with("/plugin.sock")),
        "{env}"
    );
    // Nothing else of this process's environment (under cargo: CARGO_PKG_NAME, …);
    // the shell itself may add PWD, SHLVL, _ and OLDPWD.
    for name in names {
        assert!(
            kcm_keystore_plugin::INHERITED_ENV.contains(&name)
                || [
                    "DUMP",
                    "PLUGIN_SETTING",
                    "KCM_PLUGIN_SOCKET",
                    "PWD",
                    "SHLVL",
                    "_",
                    "OLDPWD"
                ]
                .contains(&name),
            "unexpected variable {name} in the plugin's environment"
        );
    }
}
