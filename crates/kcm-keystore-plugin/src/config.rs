//! How to start a keystore plugin.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable that tells a plugin which Unix socket to listen on.
pub const SOCKET_ENV: &str = "KCM_PLUGIN_SOCKET";

/// The only variables of kcm's environment a plugin inherits (when set).
pub const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];

/// Default for [`PluginConfig::start_timeout`].
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Default for [`PluginConfig::call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How kcm starts and talks to one keystore plugin.
///
/// kcm runs `command args…` with a minimal environment — of kcm's own variables
/// only [`crate::INHERITED_ENV`] (`PATH`, `HOME`, locale, …), never the rest, which
/// may hold kcm's secrets — plus `env` plus `KCM_PLUGIN_SOCKET=<socket path>`, where the socket path lies in a fresh private
/// directory (mode 0700) that kcm creates inside `socket_dir`.
///
/// `Debug` shows the names of `env` entries but never their values (they may hold
/// credentials for the plugin's backend).
#[derive(Clone)]
pub struct PluginConfig {
    /// The keystore's name in kcm (used in logs and error messages).
    pub name: String,
    /// The plugin executable.
    pub command: PathBuf,
    /// Arguments passed to the plugin.
    pub args: Vec<String>,
    /// Environment variables for the plugin (added to the few it inherits from kcm,
    /// [`crate::INHERITED_ENV`]; these win).
    pub env: BTreeMap<String, String>,
    /// The directory in which kcm creates the plugin's private socket directory.
    /// Created if missing. Keep it short: a Unix socket path is limited to 107 bytes.
    pub socket_dir: PathBuf,
    /// How long a (re)started plugin has to answer `Health` on its socket.
    pub start_timeout: Duration,
    /// How long one call to the plugin may take before it fails as unavailable.
    pub call_timeout: Duration,
}

impl PluginConfig {
    /// A configuration with no arguments, no extra environment and the default
    /// timeouts ([`DEFAULT_START_TIMEOUT`], [`DEFAULT_CALL_TIMEOUT`]).
    pub fn new(
        name: impl Into<String>,
        command: impl Into<PathBuf>,
        socket_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name: name.into(),
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            socket_dir: socket_dir.into(),
            start_timeout: DEFAULT_START_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginConfig")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("args", &self.args)
            .field(
                "env",
                &self
                    .env
                    .keys()
                    .map(|k| (k.as_str(), "[REDACTED]"))
                    .collect::<BTreeMap<_, _>>(),
            )
            .field("socket_dir", &self.socket_dir)
            .field("start_timeout", &self.start_timeout)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_env_values() {
        let mut config = PluginConfig::new("hsm", "/usr/bin/plugin", "/run/kcm");
        config
            .env
            .insert("BACKEND_TOKEN".into(), "s3cr3t-token".into());
        let shown = format!("{config:?}");
        assert!(shown.contains("BACKEND_TOKEN"), "{shown}");
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
        assert_eq!(config.start_timeout, DEFAULT_START_TIMEOUT);
        assert_eq!(config.call_timeout, DEFAULT_CALL_TIMEOUT);
    }
}
