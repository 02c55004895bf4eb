//! The `[vault_server]` table of `kcm serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The `[vault_server]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultServerSettings {
    /// Where the Vault-compatible API listens (`host:port`), apart from kcm's main
    /// listener; HTTPS with the server's `[tls]` certificate when it has one.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The mount path of the Transit engine (`transit`: `/v1/transit/…`).
    #[serde(default = "default_transit")]
    pub transit_mount: String,
    /// The mount path of the KV version 2 engine (`secret`: `/v1/secret/data/…`).
    #[serde(default = "default_kv")]
    pub kv_mount: String,
    /// Kubernetes service-account login (`auth/kubernetes/login`); off without it.
    #[serde(default)]
    pub kubernetes: Option<KubernetesAuthSettings>,
}

/// The `[vault_server.kubernetes]` table: where kcm checks a service account's
/// token (the cluster's TokenReview API), and which service accounts log in as
/// which Vault token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAuthSettings {
    /// The API server (`https://kubernetes.default.svc`, or the cluster's address).
    pub api_server: String,
    /// The CA that signed the API server's certificate (PEM); the system's roots
    /// without it.
    pub ca_file: Option<PathBuf>,
    /// A token kcm presents to TokenReview (a service account allowed to create
    /// `tokenreviews`). Without it, each login's own token is presented, as Vault
    /// does when kcm runs in the cluster without a reviewer.
    pub reviewer_token_file: Option<PathBuf>,
    /// The audiences a token must be for (TokenReview checks them); none: the API
    /// server's default.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// How long a login's session lasts, seconds (default 3600, at most 86400).
    #[serde(default = "default_ttl")]
    pub token_ttl_seconds: u64,
    /// Seconds to wait for the API server (default 10).
    #[serde(default = "default_review_timeout")]
    pub timeout_seconds: u64,
    /// The roles a login names.
    pub roles: Vec<KubernetesRole>,
}

/// A role of `auth/kubernetes/login`: the service accounts it admits and the Vault
/// token whose rights their sessions carry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRole {
    /// Its name (the login's `role`).
    pub name: String,
    /// Service account names admitted (`*`: any).
    pub service_account_names: Vec<String>,
    /// Namespaces admitted (`*`: any).
    pub service_account_namespaces: Vec<String>,
    /// The access key id of a Vault token (`kcm access-key create --kind vault`):
    /// a session acts as it, with its role and system.
    pub access_key: String,
}

fn default_ttl() -> u64 {
    3600
}

fn default_review_timeout() -> u64 {
    10
}

impl KubernetesAuthSettings {
    /// Checks the table: an `https://` API server (plain `http://` only on the
    /// loopback, where tokens do not cross a network), a session of 1 s to a day,
    /// and roles with a unique name, service accounts, namespaces and an access key.
    pub fn validate(&self) -> Result<(), String> {
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| self.api_server.starts_with(p));
        if !(self.api_server.starts_with("https://") || loopback) {
            return Err(format!(
                "vault_server.kubernetes.api_server {:?} must be an https:// URL (service account tokens travel to it)",
                self.api_server
            ));
        }
        if !(1..=86_400).contains(&self.token_ttl_seconds) {
            return Err("vault_server.kubernetes.token_ttl_seconds must be 1 to 86400".into());
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err("vault_server.kubernetes.timeout_seconds must be 1 to 300".into());
        }
        if self.roles.is_empty() {
            return Err(
                "vault_server.kubernetes needs at least one [[vault_server.kubernetes.roles]]"
                    .into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for role in &self.roles {
            let named = |what: &str, list: &[String]| {
                if list.is_empty() || list.iter().any(String::is_empty) {
                    Err(format!(
                        "vault_server.kubernetes role {:?}: {what} must list at least one name (or \"*\")",
                        role.name
                    ))
                } else {
                    Ok(())
                }
            };
            if role.name.is_empty() || !names.insert(role.name.as_str()) {
                return Err(format!(
                    "vault_server.kubernetes role names must be unique and not empty: {:?}",
                    role.name
                ));
            }
            named("service_account_names", &role.service_account_names)?;
            named(
                "service_account_namespaces",
                &role.service_account_namespaces,
            )?;
            if role.access_key.is_empty() {
                return Err(format!(
                    "vault_server.kubernetes role {:?}: access_key must name a Vault token's access key",
                    role.name
                ));
            }
        }
        Ok(())
    }
}

fn default_listen() -> String {
    "127.0.0.1:8200".into()
}

fn default_transit() -> String {
    "transit".into()
}

fn default_kv() -> String {
    "secret".into()
}

impl VaultServerSettings {
    /// Where the engines are mounted.
    pub fn mounts(&self) -> crate::route::Mounts {
        crate::route::Mounts {
            transit: self.transit_mount.clone(),
            kv: self.kv_mount.clone(),
        }
    }

    /// Checks the table: the address it listens on, and mount paths of letters,
    /// digits, `-` and `_`, not one of Vault's own (`sys`, `auth`), one per engine.
    pub fn validate(&self) -> Result<SocketAddr, String> {
        check_mount("transit_mount", &self.transit_mount)?;
        check_mount("kv_mount", &self.kv_mount)?;
        if self.kv_mount == self.transit_mount {
            return Err(format!(
                "vault_server.kv_mount and transit_mount are both {:?}: each engine needs its own",
                self.kv_mount
            ));
        }
        if let Some(kubernetes) = &self.kubernetes {
            kubernetes.validate()?;
        }
        self.listen.parse().map_err(|_| {
            format!(
                "vault_server.listen {:?} is not an address and port (e.g. 0.0.0.0:8200)",
                self.listen
            )
        })
    }
}

fn check_mount(field: &str, mount: &str) -> Result<(), String> {
    let fine = !mount.is_empty()
        && mount.len() <= 64
        && mount
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !matches!(mount, "sys" | "auth" | "identity" | "cubbyhole");
    if fine {
        Ok(())
    } else {
        Err(format!(
            "vault_server.{field} {mount:?} must be 1 to 64 letters, digits, - or _, and not sys, auth, identity or cubbyhole"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_checked() {
        let good = VaultServerSettings {
            listen: "127.0.0.1:8200".into(),
            transit_mount: "transit".into(),
            kv_mount: "secret".into(),
            kubernetes: None,
        };
        assert!(good.validate().is_ok());
        for bad in ["", "sys", "a/b", "tr ansit"] {
            let s = VaultServerSettings {
                transit_mount: bad.into(),
                ..good.clone()
            };
            assert!(s.validate().unwrap_err().contains("transit_mount"), "{bad}");
        }
        let same = VaultServerSettings {
            kv_mount: "transit".into(),
            ..good.clone()
        };
        assert!(same.validate().unwrap_err().contains("its own"));
        let s = VaultServerSettings {
            listen: "nowhere".into(),
            ..good
        };
        assert!(s.validate().unwrap_err().contains("vault_server.listen"));
    }

    #[test]
    fn the_kubernetes_table_is_checked() {
        let role = KubernetesRole {
            name: "csi".into(),
            service_account_names: vec!["rbd-csi".into()],
            service_account_namespaces: vec!["*".into()],
            access_key: "KCMEXAMPLE".into(),
        };
        let good = KubernetesAuthSettings {
            api_server: "https://10.0.0.1:6443".into(),
            ca_file: None,
            reviewer_token_file: None,
            audiences: vec![],
            token_ttl_seconds: 3600,
            timeout_seconds: 10,
            roles: vec![role.clone()],
        };
        assert!(good.validate().is_ok());
        let local = KubernetesAuthSettings {
            api_server: "http://127.0.0.1:8080".into(),
            ..good.clone()
        };
        assert!(local.validate().is_ok());
        let bad = [
            KubernetesAuthSettings {
                api_server: "http://10.0.0.1".into(),
                ..good.clone()
            },
            KubernetesAuthSettings {
                token_ttl_seconds: 0,
                ..good.clone()
            },
            KubernetesAuthSettings {
                roles: vec![],
                ..good.clone()
            },
            KubernetesAuthSettings {
                roles: vec![role.clone(), role.clone()],
                ..good.clone()
            },
            KubernetesAuthSettings {
                roles: vec![KubernetesRole {
                    service_account_names: vec![],
                    ..role.clone()
                }],
                ..good.clone()
            },
            KubernetesAuthSettings {
                roles: vec![KubernetesRole {
                    access_key: String::new(),
                    ..role
                }],
                ..good
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
    }
}
