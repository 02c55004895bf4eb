//! # kcm-tls-client
//!
//! The one TLS client configuration of kcm's outgoing calls — to Keystone, to an
//! XKS proxy, to a Kubernetes API server: TLS 1.2 and 1.3 with aws-lc-rs (kcm's one
//! crypto provider, handed over explicitly so no process-wide default is needed),
//! trusting either the certificates of a PEM file the operator names (a private CA)
//! or the operating system's roots.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::Path;
use std::sync::Arc;

/// A client certificate and its private key (PEM files), for a server that asks
/// the client to prove who it is (mutual TLS).
#[derive(Clone, Copy, Debug)]
pub struct ClientIdentity<'a> {
    /// The certificate chain, leaf first.
    pub cert_file: &'a Path,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: &'a Path,
}

/// A client configuration for calls to `base_url`, trusting the certificates in
/// `ca_file`, or the system's roots without one. `setting` names the configuration
/// field in errors (for example `barbican.keystone.ca_file`), so the operator knows
/// what to fix. For a plain `http://` URL no roots are loaded (the HTTP client
/// still wants a TLS configuration, which it will not use).
pub fn client_config(
    base_url: &str,
    ca_file: Option<&Path>,
    setting: &str,
) -> Result<rustls::ClientConfig, String> {
    client_config_with_identity(base_url, ca_file, None, setting)
}

/// [`client_config`], presenting `identity` to a server that asks for a client
/// certificate.
pub fn client_config_with_identity(
    base_url: &str,
    ca_file: Option<&Path>,
    identity: Option<ClientIdentity<'_>>,
    setting: &str,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        _ if !base_url.starts_with("https://") => {}
        Some(path) => {
            for cert in read_certificates(path, setting)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{setting} {}: {e}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(format!(
                    "no CA certificates found in the operating system; set {setting}"
                ));
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => {
            let chain = read_certificates(id.cert_file, "the client certificate")?;
            let pem = std::fs::read(id.key_file).map_err(|e| {
                format!("cannot read the client key {}: {e}", id.key_file.display())
            })?;
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|e| format!("the client key {}: {e}", id.key_file.display()))?
                .ok_or_else(|| format!("{} holds no PEM private key", id.key_file.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!(
                    "the client certificate {} and key {} do not go together: {e}",
                    id.cert_file.display(),
                    id.key_file.display()
                )
            })
        }
    }
}

/// The certificates of a PEM file: at least one.
fn read_certificates(
    path: &Path,
    what: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_certificate_and_errors_name_the_setting() {
        let dir = std::env::temp_dir().join(format!("kcm-tls-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config("https://h", Some(&empty), "x.ca_file").unwrap_err();
        assert!(
            err.contains("x.ca_file") && err.contains("no PEM certificate"),
            "{err}"
        );
        let missing =
            client_config("https://h", Some(&dir.join("missing.pem")), "x.ca_file").unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        assert!(client_config("http://h", Some(&empty), "x.ca_file").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
