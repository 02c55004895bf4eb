//! HTTPS: the rustls (aws-lc-rs provider) acceptor the listeners put in front of
//! the same axum application (`listener.rs`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor from PEM files. The private key file must be readable by its owner
/// only, as every other secret file kcm reads.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let mut config = server_config(cert, key, None)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS acceptor that also requires a client certificate issued by a CA of
/// `client_ca` (PEM), as KMIP's mutual TLS does.
pub fn mutual_acceptor(cert: &Path, key: &Path, client_ca: &Path) -> Result<TlsAcceptor> {
    let mut roots = rustls::RootCertStore::empty();
    let pems = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(client_ca)
            .with_context(|| format!("cannot open client CA file {}", client_ca.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("client CA file {} is not valid PEM", client_ca.display()))?;
    for ca in pems {
        roots
            .add(ca)
            .with_context(|| format!("a certificate in {} is not a CA", client_ca.display()))?;
    }
    if roots.is_empty() {
        anyhow::bail!(
            "client CA file {} holds no certificate",
            client_ca.display()
        );
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .context("client certificate verifier")?;
    Ok(TlsAcceptor::from(Arc::new(server_config(
        cert,
        key,
        Some(verifier),
    )?)))
}

/// The server side of TLS with `cert` and `key`, and a client verifier if given.
fn server_config(
    cert: &Path,
    key: &Path,
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<rustls::ServerConfig> {
    crate::files::ensure_owner_only(key, "TLS private key")?;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert)
            .with_context(|| format!("cannot open TLS certificate {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("TLS certificate {} is not valid PEM", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key)
            .with_context(|| format!("cannot open TLS key {}", key.display()))?,
    ))
    .with_context(|| format!("TLS key {} is not valid PEM", key.display()))?
    .with_context(|| format!("no private key found in {}", key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol setup")?;
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not form a valid pair")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_key_that_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "").unwrap();
        std::fs::write(&key, "").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = acceptor(&cert, &key).err().expect("refused").to_string();
        assert!(e.contains("TLS private key file"), "{e}");
        assert!(e.contains(&format!("chmod 600 {}", key.display())), "{e}");
        // Private, it is read (and here found to be no key at all).
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = format!("{:#}", acceptor(&cert, &key).err().expect("not a key"));
        assert!(e.contains("no private key found"), "{e}");
    }
}
