//! HTTPS: the rustls (aws-lc-rs provider) acceptor the listeners put in front of
//! the same axum application (`listener.rs`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::server::danger::ClientCertVerifier;
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor from PEM files. The private key file must be readable by its owner
/// only, as every other secret file kcm reads.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let mut config = server_config(cert, key, None)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS acceptor that also requires a client certificate issued by a CA of
/// `client_ca` (PEM), as KMIP's mutual TLS does, and, when `subjects` names any,
/// with one of those subjects (RFC 4514): the XKS door's mutual TLS toward AWS
/// KMS, whose certificates a public CA issues.
pub fn mutual_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    subjects: &[String],
) -> Result<TlsAcceptor> {
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
    let verifier: Arc<dyn ClientCertVerifier> = if subjects.is_empty() {
        verifier
    } else {
        Arc::new(SubjectVerifier {
            chain: verifier,
            subjects: subjects.to_vec(),
        })
    };
    Ok(TlsAcceptor::from(Arc::new(server_config(
        cert,
        key,
        Some(verifier),
    )?)))
}

/// A client verifier that, once the chain verifies, also requires the client
/// certificate's subject (RFC 4514) to be one of `subjects`: a public CA issues
/// certificates to many, so the CA alone does not say who is calling.
#[derive(Debug)]
struct SubjectVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    subjects: Vec<String>,
}

impl ClientCertVerifier for SubjectVerifier {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        match kcm_frontdoor::certificate::subject_of(end_entity.as_ref()) {
            Some(subject) if self.subjects.contains(&subject) => Ok(verified),
            subject => {
                tracing::warn!(
                    subject = subject.as_deref().unwrap_or("(unreadable)"),
                    "client certificate refused: its subject is not one the listener accepts"
                );
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The server side of TLS with `cert` and `key`, and a client verifier if given.
fn server_config(
    cert: &Path,
    key: &Path,
    clients: Option<Arc<dyn ClientCertVerifier>>,
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
