//! The door's configuration: the `[xks_server]` table of `kcm serve`.

use std::net::SocketAddr;

use serde::Deserialize;

use kcm_core::xks_policy::{XksPolicy, XksRule};

use crate::route::check_prefix;

/// The `[xks_server]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XksServerSettings {
    /// Where the door listens (`host:port`), apart from kcm's main listener; always
    /// HTTPS, with the server's `[tls]` certificate.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The optional path prefix: the API is at `<prefix>/kms/xks/v1`, the
    /// `XksProxyUriPath` to give AWS KMS.
    #[serde(default)]
    pub uri_path_prefix: String,
    /// The secondary authorisation (`[[xks_server.allow]]`): with rules, a call must
    /// match one of them by its request metadata, else `AccessDeniedException`; see
    /// [`kcm_core::xks_policy`].
    #[serde(default)]
    pub allow: Vec<XksRule>,
    /// Mutual TLS (the specification's recommendation): the PEM file of the CAs
    /// whose client certificates are accepted. With it, a connection without a
    /// certificate that chains to one of them is refused in the handshake.
    #[serde(default)]
    pub client_ca_file: Option<std::path::PathBuf>,
    /// With `client_ca_file`: the subjects (RFC 4514, as
    /// `openssl x509 -noout -subject -nameopt RFC2253` prints them) a client
    /// certificate must have — AWS KMS's is `CN=cks.kms.<region>.amazonaws.com`.
    /// A public CA issues certificates to anyone: name the subject.
    #[serde(default)]
    pub client_subjects: Vec<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8446".into()
}

impl XksServerSettings {
    /// Checks the table: the address it listens on.
    pub fn validate(&self) -> Result<SocketAddr, String> {
        check_prefix(&self.uri_path_prefix).map_err(|e| format!("xks_server.{e}"))?;
        self.policy()?;
        if !self.client_subjects.is_empty() && self.client_ca_file.is_none() {
            return Err("xks_server.client_subjects needs client_ca_file: the CA that issues the certificates of those subjects".into());
        }
        self.listen.parse().map_err(|_| {
            format!(
                "xks_server.listen {:?} is not an address and port (e.g. 0.0.0.0:8446)",
                self.listen
            )
        })
    }

    /// The secondary authorisation the rules make.
    pub fn policy(&self) -> Result<XksPolicy, String> {
        XksPolicy::new(self.allow.clone()).map_err(|e| format!("xks_server.allow: {e}"))
    }

    /// The `XksProxyUriPath` AWS KMS is given: `<prefix>/kms/xks/v1`.
    pub fn uri_path(&self) -> String {
        format!("{}{}", self.uri_path_prefix, crate::route::API_PATH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> Result<XksServerSettings, String> {
        let s: XksServerSettings = serde_json::from_str(toml_text).map_err(|e| e.to_string())?;
        s.validate().map(|_| s)
    }

    #[test]
    fn the_table_is_checked() {
        let s = settings(r#"{"listen":"127.0.0.1:9000","uri_path_prefix":"/a"}"#).unwrap();
        assert_eq!(s.uri_path(), "/a/kms/xks/v1");
        assert!(settings(r#"{"listen":"nowhere"}"#)
            .unwrap_err()
            .contains("xks_server.listen"));
        assert!(settings(r#"{"uri_path_prefix":"a"}"#)
            .unwrap_err()
            .contains("uri_path_prefix"));
        assert!(settings(r#"{"lissten":"x"}"#)
            .unwrap_err()
            .contains("lissten"));
        let rules = settings(
            r#"{"allow":[{"name":"apps","aws_principal_arn":["arn:aws:iam::1:role/app-*"]}]}"#,
        )
        .unwrap();
        assert!(!rules.policy().unwrap().is_empty());
        assert!(settings(r#"{"allow":[{"name":"all"}]}"#)
            .unwrap_err()
            .contains("xks_server.allow"));
    }
}
