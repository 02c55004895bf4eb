//! The plugin's stderr reaches kcm's log, tagged with the keystore name.
//!
//! A test binary of its own, with one test and a process-wide subscriber:
//! `tracing`'s per-callsite interest cache is global, so a scoped subscriber in a
//! binary whose other tests log concurrently could miss events.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kcm_core::keystore::KeystoreError;
use kcm_keystore_plugin::{PluginConfig, PluginKeystore};
use kcm_test_support::process::example_plugin;

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn plugin_stderr_reaches_the_log_tagged_with_the_keystore() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();

    let tmp = tempfile::tempdir().unwrap();
    let kek = tmp.path().join("kek");
    std::fs::write(&kek, [0x42u8; 32]).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut config = PluginConfig::new("chatty", example_plugin(), tmp.path().join("run"));
    config.args = vec![
        "--dir".into(),
        tmp.path().join("keys").display().to_string(),
        "--kek-file".into(),
        kek.display().to_string(),
    ];
    config.env.insert("RUST_LOG".into(), "info".into());

    // A good start: the plugin's own info line is forwarded at info.
    let ks = PluginKeystore::start(config.clone()).await.unwrap();
    wait_for(&captured, "kcm-keystore-example listening").await;
    let line = line_with(&captured, "kcm-keystore-example listening");
    assert_eq!(line.split_whitespace().nth(1), Some("INFO"), "{line}");
    assert!(line.contains("keystore=chatty"), "{line}");
    drop(ks);

    // A bad start: clap's error on stderr is forwarded at warn.
    config.args.push("--no-such-flag".into());
    let err = PluginKeystore::start(config).await.unwrap_err();
    assert!(matches!(err, KeystoreError::Misconfigured(_)), "{err:?}");
    wait_for(&captured, "--no-such-flag").await;
    let line = line_with(&captured, "--no-such-flag");
    assert_eq!(line.split_whitespace().nth(1), Some("WARN"), "{line}");
    assert!(line.contains("keystore=chatty"), "{line}");
    assert!(line.contains("stderr"), "{line}");
}

async fn wait_for(captured: &Captured, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !captured.text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never reached the log:\n{}",
            captured.text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn line_with(captured: &Captured, needle: &str) -> String {
    captured
        .text()
        .lines()
        .find(|l| l.contains(needle))
        .unwrap()
        .to_owned()
}
