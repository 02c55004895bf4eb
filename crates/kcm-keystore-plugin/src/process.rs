//! Starting the plugin process, waiting until it answers, and forwarding its output.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use kcm_core::keystore::KeystoreError;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::config::{PluginConfig, INHERITED_ENV, SOCKET_ENV};
use crate::proto::keystore_plugin_client::KeystorePluginClient;
use crate::proto::HealthRequest;
use crate::truncate;

/// The gRPC client type for a plugin.
pub(crate) type Client = KeystorePluginClient<Channel>;

/// How often a starting plugin is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Longest plugin output line forwarded to the log (longer lines are cut).
const MAX_LINE: usize = 2048;

/// A started, healthy plugin process and a client connected to it.
pub(crate) struct Launched {
    pub child: Child,
    pub client: Client,
}

/// A client for the plugin listening on `socket` (connects once, eagerly).
async fn connect(socket: &Path) -> Result<Client, tonic::transport::Error> {
    let socket: PathBuf = socket.to_owned();
    // The URI is required by the HTTP/2 layer but never resolved: every connection
    // goes to the Unix socket.
    let channel = Endpoint::from_static("http://kcm-keystore-plugin.invalid")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await?;
    Ok(KeystorePluginClient::new(channel))
}

/// Connects and asks `Health`, within `limit`.
async fn probe(socket: &Path, limit: Duration) -> Result<Client, String> {
    let attempt = async {
        let mut client = connect(socket).await.map_err(|e| format!("connect: {e}"))?;
        client
            .health(HealthRequest {})
            .await
            .map_err(|s| format!("Health: {:?}: {}", s.code(), s.message()))?;
        Ok(client)
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// Runs the plugin and waits (at most `start_timeout`) until it answers `Health` on
/// `socket`. On failure the child is killed and the error says why, naming the
/// keystore and the command.
pub(crate) async fn launch(
    config: &PluginConfig,
    socket: &Path,
) -> Result<Launched, KeystoreError> {
    let name = &config.name;
    let command = config.command.display();
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(KeystoreError::Misconfigured(format!(
                "keystore plugin {name}: cannot remove old socket {}: {e}",
                socket.display()
            )))
        }
    }
    let mut command_line = Command::new(&config.command);
    // A minimal environment: kcm's own may hold kcm's secrets (a master passphrase).
    command_line.env_clear();
    for var in INHERITED_ENV {
        if let Some(value) = std::env::var_os(var) {
            command_line.env(var, value);
        }
    }
    let mut child = command_line
        .args(&config.args)
        .envs(&config.env)
        .env(SOCKET_ENV, socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            KeystoreError::Misconfigured(format!(
                "keystore plugin {name}: cannot run command {command}: {e}"
            ))
        })?;
    let pid = child.id();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward(name.clone(), pid, "stdout", stdout));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward(name.clone(), pid, "stderr", stderr));
    }

    let deadline = Instant::now() + config.start_timeout;
    let mut last_error = String::from("its socket never appeared");
    loop {
        if let Some(status) = child.try_wait().map_err(|e| {
            KeystoreError::Unavailable(format!(
                "keystore plugin {name}: cannot watch {command}: {e}"
            ))
        })? {
            return Err(KeystoreError::Misconfigured(format!(
                "keystore plugin {name}: {command} exited during start-up ({status}); see its output in the log"
            )));
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if socket.exists() {
            let limit = (deadline - now).min(config.call_timeout);
            match probe(socket, limit).await {
                Ok(client) => return Ok(Launched { child, client }),
                Err(e) => last_error = e,
            }
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
    let _ = child.kill().await;
    Err(KeystoreError::Unavailable(format!(
        "keystore plugin {name}: {command} did not answer Health on {} within {:?} (last: {last_error})",
        socket.display(),
        config.start_timeout
    )))
}

/// Forwards the plugin's output to the log, one event per line, tagged with the
/// keystore name. Lines that look like warnings or errors are logged at warn.
async fn forward(
    name: String,
    pid: Option<u32>,
    stream: &'static str,
    output: impl AsyncRead + Unpin,
) {
    let mut lines = BufReader::new(output).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                let line = truncate(&line, MAX_LINE);
                if looks_like_a_problem(line) {
                    tracing::warn!(keystore = %name, plugin_pid = ?pid, stream, "plugin: {line}");
                } else {
                    tracing::info!(keystore = %name, plugin_pid = ?pid, stream, "plugin: {line}");
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(keystore = %name, stream, error = %e, "plugin output unreadable");
                return;
            }
        }
    }
}

fn looks_like_a_problem(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    ["error", "warn", "panic", "fatal"]
        .iter()
        .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_classification_and_truncation() {
        assert!(looks_like_a_problem(
            "2026-01-01T00:00:00Z ERROR backend down"
        ));
        assert!(looks_like_a_problem(" WARN slow"));
        assert!(looks_like_a_problem(
            "thread 'main' panicked at src/main.rs"
        ));
        assert!(!looks_like_a_problem(" INFO listening"));
        let long = "é".repeat(MAX_LINE);
        let cut = truncate(&long, MAX_LINE);
        assert!(cut.len() <= MAX_LINE && cut.len() >= MAX_LINE - 1);
        assert_eq!(truncate("short", MAX_LINE), "short");
    }
}
