//! Child processes a test binary starts and must not leave behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Starts a process that waits until this test process has exited, however it
/// exits, and then runs the shell command `cleanup` (stop a server, kill a child,
/// delete a directory). For servers shared by all the tests of a binary, which
/// live in a `static` and so are never dropped.
///
/// The watcher runs in its own process group: a Ctrl-C (SIGINT to the terminal's
/// foreground group) or a harness killing the test's group must not take it along.
// Never waited for: it is meant to outlive this process.
#[allow(clippy::zombie_processes)]
pub fn after_exit(cleanup: &str) {
    use std::os::unix::process::CommandExt;
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {cleanup}",
        pid = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the clean-up watcher: {e}"));
}

/// The root of the kcm workspace (where `Cargo.toml`, `tests/` and `scripts/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/kcm-test-support lies two levels below the workspace root")
        .to_owned()
}

/// The example keystore plugin binary (`plugins/example-keystore`):
/// `$KCM_EXAMPLE_PLUGIN` if set, else `kcm-keystore-example` in the target
/// directory the calling test binary runs from (`cargo test --workspace`, or
/// `cargo test -p kcm-keystore-plugin -p kcm-keystore-example`, builds it).
pub fn example_plugin() -> PathBuf {
    if let Some(path) = std::env::var_os("KCM_EXAMPLE_PLUGIN") {
        return PathBuf::from(path);
    }
    // <target>/<profile>/deps/<test binary> → <target>/<profile>/kcm-keystore-example
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps");
    let path = profile_dir.join("kcm-keystore-example");
    assert!(
        path.exists(),
        "{} is missing: build it (`cargo build -p kcm-keystore-example`, or run \
         `cargo test -p kcm-keystore-plugin -p kcm-keystore-example`) or set KCM_EXAMPLE_PLUGIN",
        path.display()
    );
    path
}
