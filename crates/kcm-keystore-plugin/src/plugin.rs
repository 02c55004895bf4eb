//! [`PluginKeystore`]: starting the plugin, supervising it, and getting a client.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreResult};
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::PluginConfig;
use crate::process::{launch, Client, Launched};
use crate::proto::{GetCapabilitiesRequest, GetCapabilitiesResponse};

/// First wait before restarting a plugin that exited.
pub const RESTART_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between restart attempts (the wait doubles up to this).
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A plugin that stayed up this long is restarted after the initial wait again.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Longest Unix socket path (`sun_path` is 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

enum State {
    Up { client: Client, pid: Option<u32> },
    Restarting { why: String },
    ShutDown,
}

pub(crate) struct Inner {
    pub(crate) config: PluginConfig,
    socket: PathBuf,
    state: Mutex<State>,
    restarts: AtomicU64,
    /// What the plugin reported at start; kcm keeps using it.
    capabilities: Capabilities,
    /// The private directory holding the socket; removed when the last user goes.
    _socket_dir: tempfile::TempDir,
}

impl Inner {
    fn set_state(&self, state: State) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// A client for the running plugin, or an immediate `Unavailable` while it is
    /// down (calls fail fast rather than wait for a restart).
    pub(crate) fn client(&self) -> KeystoreResult<Client> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Up { client, .. } => Ok(client.clone()),
            State::Restarting { why } => Err(KeystoreError::Unavailable(format!(
                "plugin {} is restarting ({why})",
                self.config.name
            ))),
            State::ShutDown => Err(KeystoreError::Unavailable(format!(
                "plugin {} is shut down",
                self.config.name
            ))),
        }
    }
}

/// A kcm keystore backed by an external plugin process that speaks the
/// `kcm.keystore.v1` gRPC protocol on a private Unix socket.
///
/// [`PluginKeystore::start`] runs the plugin and waits until it is healthy; a
/// background task then restarts it whenever it exits. Dropping the value (or
/// [`PluginKeystore::shutdown`]) kills the plugin. It implements
/// [`kcm_core::keystore::KeystoreProvider`]; `kind()` is `"plugin"`.
pub struct PluginKeystore {
    pub(crate) inner: Arc<Inner>,
    pub(crate) capabilities: Capabilities,
    plugin_name: String,
    plugin_version: String,
    shutdown: watch::Sender<bool>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for PluginKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginKeystore")
            .field("name", &self.inner.config.name)
            .field("command", &self.inner.config.command)
            .field("plugin", &self.plugin_name)
            .field("plugin_version", &self.plugin_version)
            .field("pid", &self.child_pid())
            .finish()
    }
}

impl PluginKeystore {
    /// Starts the plugin described by `config`: creates a private (0700) socket
    /// directory inside `config.socket_dir`, runs the command with
    /// `KCM_PLUGIN_SOCKET` set, waits at most `config.start_timeout` until it
    /// answers `Health`, fetches its capabilities, and starts supervising it.
    ///
    /// Must be called inside a Tokio runtime with I/O, time and process support.
    ///
    /// Errors: [`KeystoreError::Misconfigured`] when the configuration is unusable,
    /// the command cannot be run, or the plugin exits during start-up;
    /// [`KeystoreError::Unavailable`] when it does not become healthy in time or
    /// does not answer `GetCapabilities`. Each message names the keystore and the
    /// command.
    pub async fn start(config: PluginConfig) -> KeystoreResult<Self> {
        let name = config.name.clone();
        if name.is_empty() {
            return Err(KeystoreError::Misconfigured(
                "keystore plugin: the name is empty".into(),
            ));
        }
        if config.command.as_os_str().is_empty() {
            return Err(KeystoreError::Misconfigured(format!(
                "keystore plugin {name}: the command is empty"
            )));
        }
        let misconfigured =
            |what: String| KeystoreError::Misconfigured(format!("keystore plugin {name}: {what}"));
        std::fs::create_dir_all(&config.socket_dir).map_err(|e| {
            misconfigured(format!(
                "cannot create socket directory {}: {e}",
                config.socket_dir.display()
            ))
        })?;
        let socket_dir = tempfile::Builder::new()
            .prefix("kcm-plugin-")
            .tempdir_in(&config.socket_dir)
            .map_err(|e| {
                misconfigured(format!(
                    "cannot create a private directory in {}: {e}",
                    config.socket_dir.display()
                ))
            })?;
        std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| {
                misconfigured(format!(
                    "cannot restrict {}: {e}",
                    socket_dir.path().display()
                ))
            })?;
        let socket = socket_dir.path().join("plugin.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(misconfigured(format!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes; choose a shorter socket directory",
                socket.display()
            )));
        }

        let Launched { child, client } = launch(&config, &socket).await?;
        let pid = child.id();
        let response = match tokio::time::timeout(
            config.call_timeout,
            client.clone().get_capabilities(GetCapabilitiesRequest {}),
        )
        .await
        {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                return Err(KeystoreError::Unavailable(format!(
                    "keystore plugin {name}: GetCapabilities failed: {:?}: {}",
                    status.code(),
                    status.message()
                )))
            }
            Err(_) => {
                return Err(KeystoreError::Unavailable(format!(
                    "keystore plugin {name}: GetCapabilities did not answer within {:?}",
                    config.call_timeout
                )))
            }
        };
        let capabilities = capabilities_of(&response);
        tracing::info!(
            keystore = %name,
            plugin = %response.plugin_name,
            plugin_version = %response.plugin_version,
            plugin_pid = ?pid,
            generate = capabilities.generate,
            import = capabilities.import,
            reference = capabilities.reference,
            "keystore plugin started"
        );

        let inner = Arc::new(Inner {
            config,
            socket,
            state: Mutex::new(State::Up { client, pid }),
            restarts: AtomicU64::new(0),
            capabilities,
            _socket_dir: socket_dir,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(inner.clone(), child, shutdown_rx));
        Ok(Self {
            inner,
            capabilities,
            plugin_name: response.plugin_name,
            plugin_version: response.plugin_version,
            shutdown,
            supervisor: Mutex::new(Some(supervisor)),
        })
    }

    /// The keystore's name (from the configuration).
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The plugin's own name, as it reported in `GetCapabilities`.
    pub fn plugin_name(&self) -> &str {
        &self.plugin_name
    }

    /// The plugin's version, as it reported in `GetCapabilities`.
    pub fn plugin_version(&self) -> &str {
        &self.plugin_version
    }

    /// The process id of the running plugin; `None` while it is restarting or
    /// after shutdown.
    pub fn child_pid(&self) -> Option<u32> {
        match &*self.inner.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Up { pid, .. } => *pid,
            _ => None,
        }
    }

    /// Whether the plugin is running and connected (not restarting, not shut down).
    pub fn is_up(&self) -> bool {
        matches!(
            &*self.inner.state.lock().unwrap_or_else(|e| e.into_inner()),
            State::Up { .. }
        )
    }

    /// How many times the plugin was restarted successfully after exiting.
    pub fn restarts(&self) -> u64 {
        self.inner.restarts.load(Ordering::Relaxed)
    }

    /// The Unix socket path the plugin listens on.
    pub fn socket_path(&self) -> &std::path::Path {
        &self.inner.socket
    }

    /// Stops supervising and kills the plugin, waiting (at most 5 s) until it is
    /// gone. Later calls fail with [`KeystoreError::Unavailable`]. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let task = self
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut task) = task {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        self.inner.set_state(State::ShutDown);
    }
}

impl Drop for PluginKeystore {
    fn drop(&mut self) {
        // Aborting the supervisor drops the child, which kills it (kill_on_drop).
        let _ = self.shutdown.send(true);
        if let Some(task) = self
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// Waits until the shutdown flag is set (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn kill(name: &str, child: &mut Child) {
    if let Err(e) = child.kill().await {
        tracing::warn!(keystore = %name, error = %e, "could not kill the keystore plugin");
    }
}

/// What a `GetCapabilities` answer says the plugin can do (read at start, and
/// again after each restart to notice a change).
fn capabilities_of(response: &GetCapabilitiesResponse) -> Capabilities {
    Capabilities {
        generate: response.generate,
        import: response.import,
        reference: response.reference,
    }
}

/// Asks a restarted plugin `GetCapabilities` again, for the log: kcm keeps the
/// capabilities from the first start, and warns if they changed.
async fn recheck_capabilities(inner: &Inner, client: &Client) {
    let name = &inner.config.name;
    let answer = tokio::time::timeout(
        inner.config.call_timeout,
        client.clone().get_capabilities(GetCapabilitiesRequest {}),
    )
    .await;
    match answer {
        Ok(Ok(response)) => {
            let response = response.into_inner();
            let now = capabilities_of(&response);
            tracing::info!(
                keystore = %name,
                plugin = %response.plugin_name,
                plugin_version = %response.plugin_version,
                "restarted keystore plugin identified itself"
            );
            if now != inner.capabilities {
                tracing::warn!(
                    keystore = %name,
                    before = ?inner.capabilities,
                    now = ?now,
                    "keystore plugin capabilities changed across a restart; kcm keeps those from its start"
                );
            }
        }
        Ok(Err(status)) => tracing::warn!(
            keystore = %name,
            code = ?status.code(),
            message = %status.message(),
            "restarted keystore plugin failed GetCapabilities"
        ),
        Err(_) => tracing::warn!(
            keystore = %name,
            "restarted keystore plugin did not answer GetCapabilities in time"
        ),
    }
}

/// Watches the child; when it exits, restarts it with bounded exponential backoff.
async fn supervise(inner: Arc<Inner>, mut child: Child, mut shutdown: watch::Receiver<bool>) {
    let name = inner.config.name.clone();
    let mut backoff = RESTART_BACKOFF_INITIAL;
    let mut up_since = Instant::now();
    loop {
        let pid = child.id();
        let status = tokio::select! {
            status = child.wait() => status,
            _ = stopped(&mut shutdown) => {
                inner.set_state(State::ShutDown);
                kill(&name, &mut child).await;
                tracing::info!(keystore = %name, plugin_pid = ?pid, "keystore plugin stopped");
                return;
            }
        };
        let why = match &status {
            Ok(status) => format!("it exited: {status}"),
            Err(e) => format!("it could not be watched: {e}"),
        };
        inner.set_state(State::Restarting { why: why.clone() });
        if up_since.elapsed() >= STABLE_AFTER {
            backoff = RESTART_BACKOFF_INITIAL;
        }
        tracing::warn!(
            keystore = %name,
            plugin_pid = ?pid,
            exit_status = %why,
            restart_in = ?backoff,
            "keystore plugin exited; restarting it"
        );
        if status.is_err() {
            kill(&name, &mut child).await;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped(&mut shutdown) => {
                    inner.set_state(State::ShutDown);
                    return;
                }
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            let launched = tokio::select! {
                launched = launch(&inner.config, &inner.socket) => launched,
                _ = stopped(&mut shutdown) => {
                    inner.set_state(State::ShutDown);
                    return;
                }
            };
            match launched {
                Ok(Launched {
                    child: new_child,
                    client,
                }) => {
                    child = new_child;
                    let pid = child.id();
                    recheck_capabilities(&inner, &client).await;
                    inner.restarts.fetch_add(1, Ordering::Relaxed);
                    inner.set_state(State::Up { client, pid });
                    up_since = Instant::now();
                    tracing::info!(keystore = %name, plugin_pid = ?pid, "keystore plugin restarted");
                    break;
                }
                Err(e) => {
                    let why = format!("restart failed: {e}");
                    tracing::warn!(keystore = %name, error = %e, retry_in = ?backoff, "keystore plugin restart failed");
                    inner.set_state(State::Restarting { why });
                }
            }
        }
    }
}
