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
    /// `openssl x509 -noout -fingerprint -sha256` prints it. One of this and
    /// `subject`.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The subject of the client's certificates, as
    /// `openssl x509 -noout -subject -nameopt RFC2253` prints it (`CN=rgw,O=Example`):
    /// every certificate of that subject the client CA issues, so a renewed
    /// certificate needs no change here. One of this and `fingerprint`.
    #[serde(default)]
    pub subject: Option<String>,
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
            match (&client.fingerprint, &client.subject) {
                (Some(fingerprint), None) => {
                    let hex: String = fingerprint.chars().filter(|c| *c != ':').collect();
                    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(format!(
                            "kmip_server.clients {:?}: fingerprint must be the certificate's SHA-256 fingerprint, 64 hex digits (got {fingerprint:?})",
                            client.name
                        ));
                    }
                }
                (None, Some(subject)) if subject.contains('=') => {}
                (None, Some(subject)) => {
                    return Err(format!(
                        "kmip_server.clients {:?}: subject must be a distinguished name such as \"CN=rgw,O=Example\" (got {subject:?})",
                        client.name
                    ))
                }
                _ => {
                    return Err(format!(
                        "kmip_server.clients {:?}: give exactly one of fingerprint and subject",
                        client.name
                    ))
                }
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
            if let Some(fingerprint) = &client.fingerprint {
                map.fingerprint(fingerprint, &client.access_key_id);
            }
            if let Some(subject) = &client.subject {
                map.subject(subject, &client.access_key_id);
            }
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
                fingerprint: Some("AB:".repeat(31) + "AB"),
                subject: None,
                access_key_id: "KCMKEY".into(),
            }],
        };
        assert!(good.validate().is_ok());
        assert!(good.client_map().access_key_of(b"not this one").is_none());
        let mut bad = good.clone();
        bad.clients[0].fingerprint = Some("abc".into());
        assert!(bad.validate().unwrap_err().contains("64 hex digits"));
        let mut both = good.clone();
        both.clients[0].subject = Some("CN=rgw".into());
        assert!(both.validate().unwrap_err().contains("exactly one"));
        let mut by_subject = good.clone();
        by_subject.clients[0].fingerprint = None;
        by_subject.clients[0].subject = Some("CN=rgw,O=Example".into());
        assert!(by_subject.validate().is_ok());
        by_subject.clients[0].subject = Some("rgw".into());
        assert!(by_subject
            .validate()
            .unwrap_err()
            .contains("distinguished name"));
        let mut bad = good;
        bad.listen = "nowhere".into();
        assert!(bad.validate().unwrap_err().contains("kmip_server.listen"));
    }
}
