//! The keystore providers a server uses: the embedded `software` one and one per
//! `[keystores.<name>]` table of its settings. [`launch`](crate::launch) and the
//! [restore](crate::restore) both open them here, so an archive whose key lives in
//! an HSM restores with the same configuration the server runs with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use kcm_core::keystore::KeystoreProvider;
use kcm_core::secret::SecretString;
use kcm_keystore_pkcs11::{Pkcs11Config, Pkcs11Keystore};
use kcm_keystore_plugin::{PluginConfig, PluginKeystore};
use kcm_keystore_software::{MasterKeySource, SoftwareKeystore};
use kcm_keystore_xks::{XksConfig, XksKeystore};
use kcm_sigv4::Credentials;
use zeroize::Zeroizing;

use crate::config::{
    KeystoreConfig, Pkcs11Settings, PluginSettings, Settings, XksSettings, SOFTWARE_KEYSTORE,
};

/// Keystore providers by name, as the core takes them.
pub type Keystores = HashMap<String, Arc<dyn KeystoreProvider>>;

/// The software keystore's passphrase, from `KCM_MASTER_PASSPHRASE` when it is set
/// and not empty. It is removed from the environment once read, so nothing kcm
/// starts (a keystore plugin) inherits it.
pub fn take_passphrase() -> Option<SecretString> {
    let passphrase = std::env::var("KCM_MASTER_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty())?;
    std::env::remove_var("KCM_MASTER_PASSPHRASE");
    Some(SecretString::new(passphrase))
}

/// Opens the software keystore in `dir` with the master key from `source`, then
/// every configured one: all the keystores the core is given.
pub async fn open_all(
    dir: &Path,
    source: MasterKeySource,
    settings: &Settings,
) -> Result<Keystores> {
    let keystore =
        SoftwareKeystore::open(dir, source).context("cannot open the software keystore")?;
    let mut keystores: Keystores = HashMap::new();
    keystores.insert(SOFTWARE_KEYSTORE.into(), Arc::new(keystore));
    open_configured(settings, &mut keystores).await?;
    Ok(keystores)
}

/// Opens every configured keystore (loading its module and logging in) and adds it
/// to `keystores`. Fails, naming the keystore, if any cannot be opened: a server
/// that silently lacked a keystore would refuse every key below its root keys.
async fn open_configured(settings: &Settings, keystores: &mut Keystores) -> Result<()> {
    for (name, config) in &settings.keystores {
        let provider: Arc<dyn KeystoreProvider> = match config {
            KeystoreConfig::Pkcs11(p) => Arc::new(open_pkcs11(name, p)?),
            KeystoreConfig::Xks(x) => Arc::new(open_xks(name, x)?),
            KeystoreConfig::Plugin(p) => Arc::new(start_plugin(name, p).await?),
        };
        tracing::info!(keystore = %name, kind = provider.kind(), "keystore opened");
        keystores.insert(name.clone(), provider);
    }
    Ok(())
}

/// Asks every keystore besides the embedded one for its health once and logs a
/// warning for each that is not usable, so a wrong endpoint, credential or
/// token shows at start rather than at the first request below it. A keystore
/// that is down does not stop the server: only the systems below its root keys
/// are locked until it is back.
pub async fn report_health(keystores: &Keystores) {
    for (name, keystore) in keystores {
        if name == SOFTWARE_KEYSTORE {
            continue;
        }
        if let Err(e) = keystore.health().await {
            tracing::warn!(keystore = %name, error = %e, "keystore is not usable now; systems below its root keys are locked until it is");
        }
    }
}

/// Starts a plugin and waits until it is healthy; kcm supervises it from then on
/// (restarting it if it exits) and stops it when kcm stops.
async fn start_plugin(name: &str, settings: &PluginSettings) -> Result<PluginKeystore> {
    let mut config = PluginConfig::new(
        name,
        &settings.command,
        settings
            .socket_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir),
    );
    config.args = settings.args.clone();
    config.env = settings.env.clone();
    config.start_timeout = Duration::from_millis(settings.start_timeout_ms);
    config.call_timeout = Duration::from_millis(settings.call_timeout_ms);
    let plugin = PluginKeystore::start(config)
        .await
        .map_err(|e| anyhow!("keystore {name:?}: {e}"))?;
    tracing::info!(keystore = %name, plugin = plugin.plugin_name(), version = plugin.plugin_version(), "keystore plugin started");
    Ok(plugin)
}

fn open_pkcs11(name: &str, settings: &Pkcs11Settings) -> Result<Pkcs11Keystore> {
    let pin = read_secret(
        &format!("keystore {name:?}"),
        "PIN",
        &settings.pin_file,
        &settings.pin_env,
    )?;
    Pkcs11Keystore::open(Pkcs11Config {
        module: settings.module.clone(),
        token_label: settings.token_label.trim().to_string(),
        pin,
        max_sessions: settings.max_sessions,
    })
    .map_err(|e| anyhow!("keystore {name:?}: {e}"))
}

/// An XKS proxy client. It does not call the proxy: a proxy that is down only
/// locks the systems below its keys until it is back ([`report_health`] says so
/// at start).
fn open_xks(name: &str, settings: &XksSettings) -> Result<XksKeystore> {
    let secret = read_secret(
        &format!("keystore {name:?}"),
        "secret access key",
        &settings.secret_file,
        &settings.secret_env,
    )?;
    XksKeystore::new(XksConfig {
        name: name.to_string(),
        endpoint: settings.endpoint.clone(),
        uri_path: settings.uri_path.clone(),
        credentials: Credentials::new(settings.access_key_id.clone(), secret.expose_secret()),
        region: settings.region.clone(),
        ca_file: settings.ca_file.clone(),
        timeout: Duration::from_millis(settings.timeout_ms),
    })
    .map_err(|e| anyhow!("keystore {name:?}: {e}"))
}

/// A secret (a PIN, an access key, a password) from `file` (which must be private
/// to its owner) or from the environment variable `env` (removed once read, so
/// nothing kcm starts inherits it). Exactly one is set (checked with the settings).
/// `owner` names the setting in errors (`keystore "hsm"`, `barbican.keystone`).
pub(crate) fn read_secret(
    owner: &str,
    what: &str,
    file: &Option<PathBuf>,
    env: &Option<String>,
) -> Result<SecretString> {
    let secret = match (file, env) {
        (Some(path), _) => {
            let shown = path.display();
            crate::files::ensure_owner_only(path, what).with_context(|| owner.to_string())?;
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("{owner}: cannot read {what} file {shown}"))?,
            );
            Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_string())
        }
        (None, Some(var)) => {
            let value = std::env::var(var).map_err(|_| {
                anyhow!("{owner}: environment variable {var} (holding the {what}) is not set")
            })?;
            std::env::remove_var(var);
            Zeroizing::new(value)
        }
        (None, None) => bail!("{owner}: no {what} configured"),
    };
    if secret.is_empty() {
        bail!("{owner}: the {what} is empty");
    }
    Ok(SecretString::new(secret.to_string()))
}
