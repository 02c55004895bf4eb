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
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        _ if !base_url.starts_with("https://") => {}
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("{setting} {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{setting} {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "{setting} {} holds no PEM certificate",
                    path.display()
                ));
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
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
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
