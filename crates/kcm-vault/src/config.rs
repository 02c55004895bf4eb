//! The `[vault_server]` table of `kcm serve`.

use std::net::SocketAddr;

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
}
