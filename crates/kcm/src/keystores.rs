//! The keystore providers a server uses besides the embedded `software` one: one
//! per `[keystores.<name>]` table of its settings. `kcm serve` and `kcm restore`
//! both open them, so an archive whose key lives in an HSM restores with the same
//! configuration the server runs with.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use kcm_core::keystore::KeystoreProvider;
use kcm_core::secret::SecretString;
use kcm_keystore_pkcs11::{Pkcs11Config, Pkcs11Keystore};
use zeroize::Zeroizing;

use crate::config::{KeystoreConfig, Pkcs11Settings, Settings};

/// Keystore providers by name, as the core takes them.
pub type Keystores = HashMap<String, Arc<dyn KeystoreProvider>>;

/// Opens every configured keystore (loading its module and logging in) and adds it
/// to `keystores`. Fails, naming the keystore, if any cannot be opened: a server
/// that silently lacked a keystore would refuse every key below its root keys.
pub fn open_configured(settings: &Settings, keystores: &mut Keystores) -> Result<()> {
    for (name, config) in &settings.keystores {
        let provider: Arc<dyn KeystoreProvider> = match config {
            KeystoreConfig::Pkcs11(p) => Arc::new(open_pkcs11(name, p)?),
        };
        tracing::info!(keystore = %name, kind = provider.kind(), "keystore opened");
        keystores.insert(name.clone(), provider);
    }
    Ok(())
}

fn open_pkcs11(name: &str, settings: &Pkcs11Settings) -> Result<Pkcs11Keystore> {
    let pin = read_pin(name, settings)?;
    Pkcs11Keystore::open(Pkcs11Config {
        module: settings.module.clone(),
        token_label: settings.token_label.trim().to_string(),
        pin,
        max_sessions: settings.max_sessions,
    })
    .map_err(|e| anyhow!("keystore {name:?}: {e}"))
}

/// The PIN from `pin_file` (which must be private to its owner) or from the
/// environment variable `pin_env` (removed once read, so nothing kcm starts
/// inherits it).
fn read_pin(name: &str, settings: &Pkcs11Settings) -> Result<SecretString> {
    let pin = match (&settings.pin_file, &settings.pin_env) {
        (Some(path), _) => {
            let shown = path.display();
            let meta = std::fs::metadata(path)
                .with_context(|| format!("keystore {name:?}: cannot read PIN file {shown}"))?;
            if meta.permissions().mode() & 0o077 != 0 {
                bail!(
                    "keystore {name:?}: PIN file {shown} is accessible by group or others; \
                     fix with: chmod 600 {shown}"
                );
            }
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("keystore {name:?}: cannot read PIN file {shown}"))?,
            );
            Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_string())
        }
        (None, Some(var)) => {
            let value = std::env::var(var).map_err(|_| {
                anyhow!("keystore {name:?}: environment variable {var} (pin_env) is not set")
            })?;
            std::env::remove_var(var);
            Zeroizing::new(value)
        }
        (None, None) => bail!("keystore {name:?}: set pin_file or pin_env"),
    };
    if pin.is_empty() {
        bail!("keystore {name:?}: the PIN is empty");
    }
    Ok(SecretString::new(pin.to_string()))
}
