//! The `[kmip_server]` table of `kcm serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::listener::ClientMap;

/// The `[kmip_server]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmipServerSettings {
    /// Where KMIP listens (`host:port`; KMIP's own port is 5696). Always TLS with
    /// the server's `[tls]` certificate, and a client certificate required.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The PEM file of the CAs whose client certificates are accepted.
    pub client_ca_file: PathBuf,
    /// The clients: which access key each certificate acts as.
    #[serde(default)]
    pub clients: Vec<KmipClientSettings>,
}

/// One `[[kmip_server.clients]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmipClientSettings {
    /// A name for the log.
    #[serde(default)]
    pub name: String,
    /// The SHA-256 fingerprint of the client's certificate (hex; `:` allowed), as
    /// `openssl x509 -noout -fingerprint -sha256` prints it.
    pub fingerprint: String,
    /// The kcm access key the client acts as; scoped to the system its objects
    /// live in.
    pub access_key_id: String,
}

fn default_listen() -> String {
    "127.0.0.1:5696".into()
}

impl KmipServerSettings {
    /// Checks the table: the address it listens on.
    pub fn validate(&self) -> Result<SocketAddr, String> {
        for client in &self.clients {
            let hex: String = client.fingerprint.chars().filter(|c| *c != ':').collect();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "kmip_server.clients {:?}: fingerprint must be the certificate's SHA-256 fingerprint, 64 hex digits (got {:?})",
                    client.name, client.fingerprint
                ));
            }
            if client.access_key_id.is_empty() {
                return Err(format!(
                    "kmip_server.clients {:?}: access_key_id is empty",
                    client.name
                ));
            }
        }
        self.listen.parse().map_err(|_| {
            format!(
                "kmip_server.listen {:?} is not an address and port (e.g. 0.0.0.0:5696)",
                self.listen
            )
        })
    }

    /// The clients as the listener maps them.
    pub fn client_map(&self) -> ClientMap {
        let mut map = ClientMap::default();
        for client in &self.clients {
            map.fingerprint(&client.fingerprint, &client.access_key_id);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_checked() {
        let good = KmipServerSettings {
            listen: "127.0.0.1:5696".into(),
            client_ca_file: "/ca.pem".into(),
            clients: vec![KmipClientSettings {
                name: "rgw".into(),
                fingerprint: "AB:".repeat(31) + "AB",
                access_key_id: "KCMKEY".into(),
            }],
        };
        assert!(good.validate().is_ok());
        assert!(good.client_map().access_key_of(b"not this one").is_none());
        let mut bad = good.clone();
        bad.clients[0].fingerprint = "abc".into();
        assert!(bad.validate().unwrap_err().contains("64 hex digits"));
        let mut bad = good;
        bad.listen = "nowhere".into();
        assert!(bad.validate().unwrap_err().contains("kmip_server.listen"));
    }
}
