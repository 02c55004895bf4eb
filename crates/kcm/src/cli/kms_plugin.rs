//! `kcm kms-plugin`: the Kubernetes KMS v2 plugin, run beside an API server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use kcm_client::{load_credentials, KmsClient};
use kcm_k8s_kms::{bind_socket, serve, KmsV2, RemoteKey, StatusCache, CLUSTER_CONTEXT_KEY};

use super::ClientOptions;

/// Arguments of `kcm kms-plugin` (its help is the command's doc comment in
/// `cli/mod.rs`).
#[derive(Args, Debug)]
pub struct KmsPluginArgs {
    /// The Unix socket to listen on; the EncryptionConfiguration's endpoint is
    /// `unix://` followed by this path. A socket left by a plugin that stopped is
    /// replaced; one another plugin listens on is not.
    #[arg(long, env = "KCM_KMS_PLUGIN_SOCKET")]
    socket: PathBuf,
    /// The kcm key that encrypts: key id, key ARN or `alias/NAME`.
    #[arg(long, env = "KCM_KMS_PLUGIN_KEY_ID")]
    key_id: String,
    /// The cluster's name, bound to every ciphertext as the encryption context
    /// `kcm:kubernetes-cluster`: another cluster's plugin cannot decrypt it, even
    /// with the same key. Never change it for a cluster that has encrypted data.
    #[arg(long, env = "KCM_KMS_PLUGIN_CLUSTER")]
    cluster: String,
    /// How old the answer to Status may be (milliseconds). Keep it at or below the
    /// kcm server's revocation bound, so that a disabled key shows within it.
    #[arg(long, env = "KCM_KMS_PLUGIN_STATUS_MAX_AGE_MS", default_value_t = 1000)]
    status_max_age_ms: u64,
    /// How long a call to kcm may take before the plugin answers "unavailable"
    /// (milliseconds; the API server gives up after its own timeout, 3 s by default).
    #[arg(long, env = "KCM_KMS_PLUGIN_TIMEOUT_MS", default_value_t = 2500)]
    timeout_ms: u64,
    /// Log filter (tracing syntax, e.g. `info` or `kcm_k8s_kms=debug`).
    #[arg(long, env = "KCM_LOG", default_value = "info")]
    log: String,
}

impl KmsPluginArgs {
    /// Runs the plugin until SIGTERM or Ctrl-C.
    pub async fn run(&self, opts: &ClientOptions) -> Result<ExitCode> {
        kcm_k8s_kms::check_cluster_name(&self.cluster).map_err(|e| anyhow!("--cluster: {e}"))?;
        if self.status_max_age_ms == 0 || self.timeout_ms == 0 {
            bail!("--status-max-age-ms and --timeout-ms must be at least 1");
        }
        kcm_server::init_logging(&self.log, "text")?;
        let file = opts.credentials_file.as_deref().context(
            "--credentials-file is required: the file (mode 0600) holding the plugin's access key",
        )?;
        kcm_server::files::ensure_owner_only(file, "credentials")?;
        let credentials = load_credentials(Some(&opts.profile), Some(file))
            .context("cannot load the plugin's access key")?;
        let client = KmsClient::new(&opts.endpoint, credentials)?.with_region(opts.region.clone());
        let timeout = Duration::from_millis(self.timeout_ms);
        let backend = Arc::new(RemoteKey::new(client, &self.key_id, &self.cluster));
        let status = Arc::new(StatusCache::new(
            backend.clone(),
            Duration::from_millis(self.status_max_age_ms),
            timeout,
        ));
        let listener = bind_socket(&self.socket)?;
        tracing::info!(
            socket = %self.socket.display(),
            key = %self.key_id,
            cluster = %self.cluster,
            context_key = CLUSTER_CONTEXT_KEY,
            "kms-plugin: listening (Kubernetes KMS v2)"
        );
        // Say at once whether kcm answers, instead of at the API server's first poll.
        let first = status.current().await;
        if first.is_healthy() {
            tracing::info!(key_id = %first.key_id, "kms-plugin: kcm answers; the key can encrypt");
        } else {
            tracing::warn!(reason = %first.healthz, "kms-plugin: not healthy yet");
        }
        let served = serve(
            KmsV2::new(backend, status, timeout),
            listener,
            kcm_server::shutdown_signal(),
        )
        .await;
        let _ = std::fs::remove_file(&self.socket);
        tracing::info!("kms-plugin: stopped");
        served.context("the gRPC server failed")?;
        Ok(ExitCode::SUCCESS)
    }
}
