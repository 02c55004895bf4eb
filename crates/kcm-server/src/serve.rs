//! The server itself: the core over its store and keystores, the HTTP application
//! (operational endpoints, `/v1`, the AWS API), and [`launch`], which runs them
//! until a shutdown signal.

use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use kcm_core::config::ServiceConfig;
use kcm_core::service::{BootstrapCredentials, Service};
use kcm_core::store::Store;
use kcm_frontdoor::connections::{ConnectionLimits, Connections};
use kcm_frontdoor::{Authenticator, FrontDoor, Metrics};
use kcm_keystore_software::MasterKeySource;
use kcm_store_postgres::{PostgresOptions, PostgresStore};
use kcm_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use crate::config::{DatabaseUrl, KubernetesKmsSettings, MetricsAccess, Settings};
use crate::keystores;

/// Name of the embedded database file in the data directory.
pub(crate) const DB_FILE: &str = "kcm.db";
/// Name of the bootstrap credentials file in the data directory.
pub(crate) const CREDENTIALS_FILE: &str = "credentials";

/// State of the unauthenticated operational endpoints.
#[derive(Clone)]
struct Ops {
    service: Arc<Service>,
    metrics: Arc<Metrics>,
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    match ops.service.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

async fn render_metrics(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        ops.metrics.render(),
    )
}

/// The whole HTTP application: operational endpoints (`/metrics` only when
/// `metrics_access` makes it public), `/v1`, and the AWS API on `/`.
fn app(
    service: Arc<Service>,
    auth: &Arc<Authenticator>,
    metrics: &Arc<Metrics>,
    metrics_access: MetricsAccess,
) -> Router {
    let aws = kcm_aws_api::AwsApi::new(Arc::clone(&service), Arc::clone(auth), Arc::clone(metrics));
    let rest =
        kcm_rest_api::RestApi::new(Arc::clone(&service), Arc::clone(auth), Arc::clone(metrics));
    let metrics = Arc::clone(metrics);
    let mut ops = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready));
    if metrics_access == MetricsAccess::Public {
        ops = ops.route("/metrics", get(render_metrics));
    }
    ops.with_state(Ops { service, metrics })
        .merge(kcm_aws_api::router(aws))
        .merge(kcm_rest_api::router(rest))
}

/// The directory in the data directory where audit records wait while the store
/// cannot take them.
pub const AUDIT_SPOOL_DIR: &str = "audit-spool";
/// The file, in the data directory, where this node keeps the newest record it
/// appended and checkpoint it signed to each audit chain (see `kcm_core::audit`).
pub const AUDIT_HEADS_FILE: &str = "audit-heads.json";

/// Builds the core over the data directory (created and locked by the caller).
async fn open_service(settings: &Settings) -> Result<Arc<Service>> {
    let dir = &settings.data_dir;
    let store = open_store(settings).await?;
    let source = match keystores::passphrase(settings)? {
        Some(passphrase) => MasterKeySource::Passphrase(passphrase),
        None => MasterKeySource::File(settings.master_key_file()),
    };
    let keystores = keystores::open_all(dir, source, settings).await?;
    keystores::report_health(&keystores).await;
    let config = ServiceConfig {
        region: settings.region.clone(),
        revocation_bound: settings.revocation_bound(),
        external_check_interval: std::time::Duration::from_millis(
            settings.external_check_interval_ms,
        ),
        day: settings.day(),
        import_token_lifetime: settings.import_token_lifetime(),
        default_keystore: settings.default_keystore.clone(),
        audit: settings.audit,
        audit_checkpoint_interval: std::time::Duration::from_millis(
            settings.audit_checkpoint_interval_ms,
        ),
        rate_limits: settings.rate_limits.limits(),
        audit_spool: settings
            .audit_spool
            .then(|| settings.data_dir.join(AUDIT_SPOOL_DIR)),
        audit_heads_file: settings
            .audit
            .then(|| settings.data_dir.join(AUDIT_HEADS_FILE)),
        xks_policy: match &settings.xks_server {
            Some(xks) => xks.policy().map_err(|e| anyhow::anyhow!(e))?,
            None => Default::default(),
        },
    };
    log_rate_limits(&config.rate_limits);
    if !settings.audit {
        tracing::warn!("the audit log is OFF (audit = false): requests are not recorded");
    }
    let service = Service::new(store, keystores, config)
        .map_err(|e| anyhow::anyhow!("cannot start the service: {e}"))?;
    Ok(Arc::new(service))
}

/// Says which request-rate quotas this node enforces, if any.
fn log_rate_limits(limits: &kcm_core::rate_limit::RateLimits) {
    let describe = |rate: Option<kcm_core::rate_limit::Rate>| match rate {
        Some(r) => format!("{}/s, bursts of {}", r.per_second, r.burst),
        None => "none".to_owned(),
    };
    tracing::info!(
        access_key = %describe(limits.access_key),
        tenant = %describe(limits.tenant),
        "request-rate quotas (per node)"
    );
}

/// The store: PostgreSQL when `database_url` is set (shared by every node of a
/// cluster), else the SQLite file in the data directory.
async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>> {
    match &settings.database_url {
        Some(url) => {
            let store = open_postgres(url, settings).await?;
            tracing::info!(store = ?store, "store: PostgreSQL");
            Ok(Arc::new(store))
        }
        None => {
            let dir = &settings.data_dir;
            let store = SqliteStore::open(&dir.join(DB_FILE))
                .with_context(|| format!("cannot open the store in {}", dir.display()))?;
            Ok(Arc::new(store))
        }
    }
}

/// Opens (and migrates) the PostgreSQL store at `url` with the settings' pool
/// size. Its errors never hold the password.
pub(crate) async fn open_postgres(url: &DatabaseUrl, settings: &Settings) -> Result<PostgresStore> {
    let options = PostgresOptions {
        max_connections: settings.database_max_connections,
        ..PostgresOptions::default()
    };
    PostgresStore::open(url.expose_secret(), options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL store: {e}"))
}

/// Writes the bootstrap credentials in the AWS shared-credentials format, mode 0600,
/// atomically (temporary file, fsync, rename).
fn write_credentials(path: &Path, creds: &BootstrapCredentials) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut text = zeroize::Zeroizing::new(String::new());
    for (profile, (id, secret)) in [
        ("default", &creds.tenant_admin),
        ("system-admin", &creds.system_admin),
    ] {
        text.push_str(&format!(
            "[{profile}]\naws_access_key_id = {id}\naws_secret_access_key = {}\n\n",
            secret.expose_secret()
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Resolves at SIGTERM or Ctrl-C: what stops `kcm serve`. Other callers of
/// [`launch`] (tests) pass a future of their own instead.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// Where [`launch`] accepts connections.
#[derive(Debug)]
pub enum Listen {
    /// Bind the settings' `listen` address once the service is ready, so that the
    /// port opens only when requests can be served (what `kcm serve` does).
    Configured,
    /// Accept on a listener the caller bound already: a test binds port 0 and knows
    /// the address before the server starts.
    On(TcpListener),
}

/// Runs a kcm server with `settings` until `shutdown` resolves, then finishes the
/// requests in flight and stops the background work.
///
/// In order: opens the data directory (creating it mode 0700 if needed, refusing one
/// that group or others can enter, and locking it against a second server), the
/// store and every keystore, and builds the core; on a fresh store bootstraps it and
/// writes the `credentials` file into the data directory, otherwise refuses to start
/// unless the keystore opens this store; listens (see [`Listen`]); serves HTTP, or HTTPS when
/// the settings name a certificate and key; runs deletions, rotations and
/// checkpoints in the background.
///
/// The settings are used as given: call [`Settings::validate`] first. Logging is the
/// caller's (see [`init_logging`](crate::init_logging)), as is the rustls crypto
/// provider of the process, which the XKS client uses.
pub async fn launch(
    settings: Settings,
    listen: Listen,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Held until the server has stopped: a second server on this directory is refused.
    let _data_dir = crate::data_dir::DataDirLock::acquire(&settings.data_dir)?;
    let service = open_service(&settings).await?;
    let credentials = settings.data_dir.join(CREDENTIALS_FILE);
    let fresh = service
        .bootstrap_if_fresh(|creds| write_credentials(&credentials, creds))
        .await
        .map_err(|e| anyhow::anyhow!("first-start bootstrap failed: {e}"))?;
    if fresh {
        tracing::info!(
            path = %credentials.display(),
            "first start: created the default tenant; its tenant-admin (profile default) and the operator's system-admin (profile system-admin) credentials are in this file"
        );
    } else {
        // A node joining a cluster (or restarted) must hold the store's master key.
        service
            .check_keystore_opens_store()
            .await
            .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
    }
    let listener = match listen {
        Listen::Configured => TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?,
        Listen::On(listener) => listener,
    };
    let local = listener.local_addr()?;
    let nofile = crate::listener::raise_descriptor_limit();
    let connections = Connections::new(settings.connection_limits(nofile));
    log_connection_limits(connections.limits(), nofile);
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(Metrics::default());
    let auth = Arc::new(Authenticator::new(Arc::clone(&service)));
    // Every door shares the core, the authenticator and the metrics.
    let front = |door| {
        FrontDoor::new(
            door,
            Arc::clone(&service),
            Arc::clone(&auth),
            Arc::clone(&metrics),
        )
    };
    // The doors beside the main listener, each a task that ends when `stop_rx` turns.
    let mut doors = Vec::new();
    if let Some(k8s) = &settings.kubernetes_kms {
        doors.push(spawn_kubernetes_kms(
            k8s,
            &settings,
            front(kcm_k8s_kms::embedded::DOOR),
            stop_rx.clone(),
        )?);
    }
    if let Some(barbican) = &settings.barbican {
        let front = front(kcm_barbican::DOOR);
        let connections = Arc::clone(&connections);
        doors.push(spawn_barbican(barbican, &settings, front, connections, stop_rx.clone()).await?);
    }
    if let Some(xks) = &settings.xks_server {
        let front = front(kcm_xks_server::DOOR);
        let connections = Arc::clone(&connections);
        doors.push(spawn_xks_server(xks, &settings, front, connections, stop_rx.clone()).await?);
    }
    if let Some(vault) = &settings.vault_server {
        let front = front(kcm_vault::DOOR);
        let connections = Arc::clone(&connections);
        doors
            .push(spawn_vault_server(vault, &settings, front, connections, stop_rx.clone()).await?);
    }
    if let Some(kmip) = &settings.kmip_server {
        let front = front(kcm_kmip::door::DOOR);
        let connections = Arc::clone(&connections);
        doors.push(spawn_kmip_server(kmip, &settings, front, connections, stop_rx.clone()).await?);
    }
    let background = service.spawn_background(settings.scheduler_interval(), stop_rx);
    let app = app(Arc::clone(&service), &auth, &metrics, settings.metrics);
    let tls = match (&settings.tls.cert, &settings.tls.key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "HTTPS" } else { "HTTP" };
    tracing::info!(address = %local, "kcm listening ({scheme})");
    crate::listener::serve(listener, tls, app, connections, shutdown)
        .await
        .context("server failed")?;
    let _ = stop_tx.send(true);
    let _ = background.await;
    for task in doors {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves the Kubernetes KMS v2 API on the configured socket (the door `k8s-kms`)
/// until `stop` turns true; removes the socket then.
fn spawn_kubernetes_kms(
    k8s: &KubernetesKmsSettings,
    settings: &Settings,
    front: FrontDoor,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    use kcm_k8s_kms::{bind_socket, embedded, serve, KmsV2, StatusCache};
    let key =
        embedded::parse_key(&k8s.key_id).map_err(|e| anyhow::anyhow!("kubernetes_kms: {e}"))?;
    let backend = Arc::new(embedded::EmbeddedKey::new(
        front,
        &k8s.access_key_id,
        key,
        &k8s.cluster,
    ));
    let max_age = k8s.status_max_age_ms.map_or(
        settings.revocation_bound(),
        std::time::Duration::from_millis,
    );
    let timeout = KUBERNETES_KMS_TIMEOUT;
    let status = Arc::new(StatusCache::new(Arc::clone(&backend), max_age, timeout));
    let listener = bind_socket(&k8s.socket).context("kubernetes_kms")?;
    let socket = k8s.socket.clone();
    tracing::info!(socket = %socket.display(), key = %k8s.key_id, cluster = %k8s.cluster, "Kubernetes KMS v2 plugin listening");
    Ok(tokio::spawn(async move {
        let stopped = stopped(stop);
        if let Err(e) = serve(KmsV2::new(backend, status, timeout), listener, stopped).await {
            tracing::error!(error = %e, "the Kubernetes KMS v2 plugin stopped");
        }
        let _ = std::fs::remove_file(&socket);
    }))
}

/// Serves the OpenStack Key Manager API (the door `barbican`) on its own listener,
/// over HTTPS when the server's `[tls]` is set, until `stop` turns true. Its
/// connections count against the same cap as the main listener's (`connections`):
/// the descriptors are the process's. Kcm's
/// Keystone password is read here (from its file or environment variable).
async fn spawn_barbican(
    barbican: &kcm_barbican::BarbicanSettings,
    settings: &Settings,
    front: FrontDoor,
    connections: Arc<Connections>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let config = barbican
        .clone()
        .into_config(settings.revocation_bound(), |keystone| {
            keystones_password(keystone).map_err(|e| format!("{e:#}"))
        })
        .map_err(|e| anyhow::anyhow!("barbican: {e}"))?;
    let tls = match (&settings.tls.cert, &settings.tls.key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let api = kcm_barbican::BarbicanApi::new(front, &config, tls.is_some())
        .map_err(|e| anyhow::anyhow!("barbican: {e}"))?;
    let app = kcm_barbican::router(api);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("barbican: cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    match &config.auth {
        kcm_barbican::config::AuthMode::NoAuth(caller) => tracing::warn!(
            address = %address,
            user = %caller.user_id,
            project = %caller.project_id,
            "Barbican API listening WITHOUT authentication (no_auth): every request acts as this user"
        ),
        kcm_barbican::config::AuthMode::Keystone(keystone) => tracing::info!(
            address = %address,
            keystone = %keystone.base_url,
            tls = tls.is_some(),
            "Barbican API listening"
        ),
    }
    Ok(spawn_http_door(
        "the Barbican API",
        listener,
        tls,
        app,
        connections,
        stop,
    ))
}

/// Serves the Vault-compatible API (the door `vault`) on its own listener, over
/// HTTPS when the server's `[tls]` is set, until `stop` turns true. Its connections
/// count against the process's one cap.
async fn spawn_vault_server(
    vault: &kcm_vault::config::VaultServerSettings,
    settings: &Settings,
    front: FrontDoor,
    connections: Arc<Connections>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listen = vault.validate().map_err(|e| anyhow::anyhow!(e))?;
    let tls = match (&settings.tls.cert, &settings.tls.key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let mut api = kcm_vault::VaultApi::new(front, vault.mounts());
    if let Some(kubernetes) = &vault.kubernetes {
        let auth = kcm_vault::kubernetes::KubernetesAuth::new(kubernetes.clone())
            .map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(api_server = %kubernetes.api_server, roles = kubernetes.roles.len(), "Vault API: Kubernetes login on");
        api = api.with_kubernetes(auth);
    }
    let app = kcm_vault::router(api);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("vault_server: cannot listen on {listen}"))?;
    if tls.is_none() {
        tracing::warn!(
            address = %listener.local_addr()?,
            "Vault API listening over plain HTTP: tokens and key material cross the network in clear; set [tls]"
        );
    } else {
        tracing::info!(address = %listener.local_addr()?, transit = %vault.transit_mount, kv = %vault.kv_mount, "Vault API listening (HTTPS)");
    }
    Ok(spawn_http_door(
        "the Vault API",
        listener,
        tls,
        app,
        connections,
        stop,
    ))
}

/// Serves the AWS XKS proxy API (the door `xks`) on its own listener, over HTTPS
/// with the server's certificate (the settings refuse `[xks_server]` without one),
/// until `stop` turns true. Its connections count against the process's one cap.
async fn spawn_xks_server(
    xks: &kcm_xks_server::config::XksServerSettings,
    settings: &Settings,
    front: FrontDoor,
    connections: Arc<Connections>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let (cert, key) = tls_files(
        settings,
        "xks_server",
        "the XKS proxy API is served over HTTPS only",
    )?;
    let tls = match &xks.client_ca_file {
        Some(ca) => crate::tls::mutual_acceptor(cert, key, ca, &xks.client_subjects)
            .context("xks_server")?,
        None => crate::tls::acceptor(cert, key)?,
    };
    let listen = xks.validate().map_err(|e| anyhow::anyhow!(e))?;
    let app = kcm_xks_server::router(kcm_xks_server::XksApi::new(front, &xks.uri_path_prefix));
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("xks_server: cannot listen on {listen}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        uri_path = %xks.uri_path(),
        mutual_tls = xks.client_ca_file.is_some(),
        "XKS proxy API listening (HTTPS)"
    );
    Ok(spawn_http_door(
        "the XKS proxy API",
        listener,
        Some(tls),
        app,
        connections,
        stop,
    ))
}

/// Serves KMIP (the door `kmip`) on its own listener, over TLS with the server's
/// certificate and a client certificate from `client_ca_file` required, until
/// `stop` turns true. Its connections count against the process's one cap.
async fn spawn_kmip_server(
    kmip: &kcm_kmip::config::KmipServerSettings,
    settings: &Settings,
    front: FrontDoor,
    connections: Arc<Connections>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let (cert, key) = tls_files(
        settings,
        "kmip_server",
        "KMIP is served over mutual TLS only",
    )?;
    let tls =
        crate::tls::mutual_acceptor(cert, key, &kmip.client_ca_file, &[]).context("kmip_server")?;
    let listen = kmip.validate().map_err(|e| anyhow::anyhow!(e))?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("kmip_server: cannot listen on {listen}"))?;
    let clients = Arc::new(kmip.client_map());
    if clients.is_empty() {
        tracing::warn!("kmip_server has no clients: every client certificate will be refused");
    }
    tracing::info!(address = %listener.local_addr()?, clients = kmip.clients.len(), "KMIP listening (mutual TLS)");
    front.service().set_kmip_clients(
        kmip.clients
            .iter()
            .map(|c| {
                let name = if c.name.is_empty() {
                    &c.access_key_id
                } else {
                    &c.name
                };
                (c.access_key_id.clone(), name.clone())
            })
            .collect(),
    );
    let door = kcm_kmip::door::KmipDoor::new(front);
    Ok(tokio::spawn(async move {
        kcm_kmip::listener::serve(listener, tls, door, clients, connections, stopped(stop)).await;
    }))
}

/// Serves `app` on a door's own `listener` (TLS when `tls` is given) until `stop`
/// turns true, its connections counted against the process's one cap; `door` names
/// it in the log if it fails.
fn spawn_http_door(
    door: &'static str,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    connections: Arc<Connections>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stopped = stopped(stop);
        if let Err(e) = crate::listener::serve(listener, tls, app, connections, stopped).await {
            tracing::error!(error = %e, "{door} stopped");
        }
    })
}

/// Resolves when `stop` turns true (or its sender is gone): when a door's task ends.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The server's certificate and key, which the door `table` serves with; refused
/// without them, saying `why` the door needs TLS.
fn tls_files<'s>(
    settings: &'s Settings,
    table: &str,
    why: &str,
) -> Result<(&'s std::path::Path, &'s std::path::Path)> {
    match (&settings.tls.cert, &settings.tls.key) {
        (Some(cert), Some(key)) => Ok((cert, key)),
        _ => anyhow::bail!("{table} needs tls.cert and tls.key: {why}"),
    }
}

/// kcm's own Keystone password, from the file or variable `[barbican.keystone]` names.
fn keystones_password(
    keystone: &kcm_barbican::config::KeystoneSettings,
) -> Result<kcm_core::secret::SecretString> {
    keystores::read_secret(
        "barbican.keystone",
        "Keystone password",
        &keystone.password_file,
        &keystone.password_env,
    )
}

/// Says at start what bounds the listeners, and warns when a configured cap leaves
/// too few descriptors for the rest of the server.
fn log_connection_limits(limits: &ConnectionLimits, nofile: u64) {
    tracing::info!(
        max_connections = limits.max_connections,
        open_file_limit = nofile,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        body_read_timeout_ms = limits.body_read_timeout.as_millis() as u64,
        idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
        max_unauthenticated_body_bytes = limits.unauthenticated_body_bytes,
        "connection limits"
    );
    if limits.max_connections > ConnectionLimits::max_connections_for(nofile)
        && limits.max_connections as u64 >= nofile.saturating_sub(64)
    {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_file_limit = nofile,
            "max_connections leaves almost no file descriptors for the store and keystores; lower it or raise the limit"
        );
    }
}

/// How long one call of the embedded Kubernetes plugin may take (the API server's
/// own default timeout is 3 s).
const KUBERNETES_KMS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2500);

/// Sends the process's log to stderr with `filter` (tracing syntax; the settings'
/// `log`) in `format` (`text` or `json`, one JSON object a line; the settings'
/// `log_format`). Colours (ANSI escapes) only when stderr is a terminal, so a log
/// file, the journal or a pipe gets plain text. A filter that does not parse is an
/// error (as [`Settings::validate`] says too), never a silent change of what is
/// logged.
///
/// Once per process, before [`launch`]: it installs the process-wide subscriber,
/// which is why `launch` does not do it (a test may launch several servers in one
/// process).
pub fn init_logging(filter: &str, format: &str) -> Result<()> {
    use std::io::IsTerminal as _;
    let filter = crate::config::log_filter(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}
