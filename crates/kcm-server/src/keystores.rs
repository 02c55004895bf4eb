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

/// The environment variable that may hold the software keystore's passphrase. It is
/// removed from kcm's environment once read (so nothing kcm starts inherits it), but
/// the kernel keeps the environment kcm was started with readable in
/// `/proc/<pid>/environ` to the same user and root for as long as kcm runs: the file
/// forms ([`PASSPHRASE_CREDENTIAL`], `keystore.passphrase_file`) do not have that.
pub const PASSPHRASE_ENV: &str = "KCM_MASTER_PASSPHRASE";

/// The name of the systemd credential that holds the passphrase:
/// `$CREDENTIALS_DIRECTORY/kcm-master-passphrase` (`LoadCredential=` or
/// `LoadCredentialEncrypted=kcm-master-passphrase:…` in the unit).
pub const PASSPHRASE_CREDENTIAL: &str = "kcm-master-passphrase";

/// The software keystore's passphrase, if one is configured, from the first of:
/// `keystore.passphrase_file` (`--passphrase-file`, `KCM_MASTER_PASSPHRASE_FILE`;
/// readable by its owner only), the systemd credential [`PASSPHRASE_CREDENTIAL`]
/// when it exists, or the variable [`PASSPHRASE_ENV`] when set and not empty.
///
/// A file and the variable together are refused rather than one silently
/// preferred. The variable is removed from the environment whatever happens.
pub fn passphrase(settings: &Settings) -> Result<Option<SecretString>> {
    let from_env = std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty());
    std::env::remove_var(PASSPHRASE_ENV);
    let from_env = from_env.map(SecretString::new);
    let file = match &settings.keystore.passphrase_file {
        Some(path) => Some((path.clone(), false)),
        None => std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|dir| PathBuf::from(dir).join(PASSPHRASE_CREDENTIAL))
            .filter(|path| path.exists())
            .map(|path| (path, true)),
    };
    let Some((path, credential)) = file else {
        return Ok(from_env);
    };
    if from_env.is_some() {
        bail!(
            "the master passphrase is given twice, in {} and in {PASSPHRASE_ENV}: unset {PASSPHRASE_ENV}",
            path.display()
        );
    }
    if credential {
        // systemd gives a credential to the unit's user alone, often through an ACL on
        // a root-owned file, which shows as group bits in the mode: only "others" is
        // checked here.
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("cannot read the passphrase credential {shown}"))?;
        if meta.permissions().mode() & 0o007 != 0 {
            bail!("the passphrase credential {shown} is readable by others; fix with: chmod o-rwx {shown}");
        }
        return read_secret_file("systemd credential", "passphrase", &path).map(Some);
    }
    read_secret("keystore.passphrase_file", "passphrase", &Some(path), &None).map(Some)
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
        client_identity: match (&settings.client_cert_file, &settings.client_key_file) {
            (Some(cert), Some(key)) => {
                crate::files::ensure_owner_only(key, "client key")
                    .with_context(|| format!("keystore {name:?}"))?;
                Some((cert.clone(), key.clone()))
            }
            _ => None,
        },
        timeout: Duration::from_millis(settings.timeout_ms),
    })
    .map_err(|e| anyhow!("keystore {name:?}: {e}"))
}

/// A secret (a PIN, an access key, a password) from `file` (which must be private
/// to its owner) or from the environment variable `env` (removed once read, so
/// nothing kcm starts inherits it; it stays readable in `/proc/<pid>/environ` to the
/// same user and root, which is why the file is the better choice). Exactly one is
/// set (checked with the settings). `owner` names the setting in errors
/// (`keystore "hsm"`, `barbican.keystone`).
pub(crate) fn read_secret(
    owner: &str,
    what: &str,
    file: &Option<PathBuf>,
    env: &Option<String>,
) -> Result<SecretString> {
    match (file, env) {
        (Some(path), _) => {
            crate::files::ensure_owner_only(path, what).with_context(|| owner.to_string())?;
            read_secret_file(owner, what, path)
        }
        (None, Some(var)) => {
            let value = Zeroizing::new(std::env::var(var).map_err(|_| {
                anyhow!("{owner}: environment variable {var} (holding the {what}) is not set")
            })?);
            std::env::remove_var(var);
            if value.is_empty() {
                bail!("{owner}: the {what} is empty");
            }
            Ok(SecretString::new(value.to_string()))
        }
        (None, None) => bail!("{owner}: no {what} configured"),
    }
}

/// The secret in `path` without its trailing line break; an empty one is an error.
/// The caller has checked who may read the file.
fn read_secret_file(owner: &str, what: &str, path: &Path) -> Result<SecretString> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("{owner}: cannot read {what} file {}", path.display()))?,
    );
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        bail!("{owner}: the {what} is empty");
    }
    Ok(SecretString::new(secret.to_string()))
}
