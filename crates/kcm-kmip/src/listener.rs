//! The KMIP listener: TCP with mutual TLS, one message at a time per connection,
//! each framed by its TTLV header. Every connection is admitted by the process's
//! [`Connections`] (the cap and its eviction, shared with the HTTP listeners) and
//! bounded by its deadlines: the handshake and each message's head by the header
//! timeout, the rest of a message by the body timeout, silence by the idle timeout.
//! The client's certificate, verified against the configured CA by rustls, names
//! the access key the connection acts as ([`ClientMap`], by the certificate's
//! SHA-256 fingerprint or its subject); a certificate the map does not name is
//! refused before any message is read. The access key is looked up for every message, so disabling it
//! cuts an open connection off within the revocation bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use kcm_core::authz::Principal;
use kcm_frontdoor::connections::{Admission, Connection, Connections};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::door::KmipDoor;
use crate::ttlv::{self, HEADER_LEN};

/// Which access key each client certificate acts as: by the SHA-256 fingerprint
/// of the certificate (lower-case hex), or by its subject (RFC 4514, as
/// `openssl x509 -noout -subject -nameopt RFC2253` prints it) — for clients whose
/// certificates a CA renews. A fingerprint is looked up first.
#[derive(Clone, Debug, Default)]
pub struct ClientMap {
    by_fingerprint: HashMap<String, String>,
    by_subject: HashMap<String, String>,
}

impl ClientMap {
    /// Maps the certificate with SHA-256 `fingerprint` (hex, any case, `:` allowed)
    /// to `access_key_id`.
    pub fn fingerprint(&mut self, fingerprint: &str, access_key_id: &str) {
        let normal: String = fingerprint
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        self.by_fingerprint.insert(normal, access_key_id.to_owned());
    }

    /// Maps every certificate (trusted by the client CA) whose subject is
    /// `subject` (RFC 4514) to `access_key_id`.
    pub fn subject(&mut self, subject: &str, access_key_id: &str) {
        self.by_subject
            .insert(subject.to_owned(), access_key_id.to_owned());
    }

    /// The access key of the certificate `der`, if the map names it.
    pub fn access_key_of(&self, der: &[u8]) -> Option<&str> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        if let Some(key) = self.by_fingerprint.get(&hex::encode(digest.as_ref())) {
            return Some(key);
        }
        if self.by_subject.is_empty() {
            return None;
        }
        let subject = kcm_frontdoor::certificate::subject_of(der)?;
        self.by_subject.get(&subject).map(String::as_str)
    }

    /// Whether no certificate is mapped.
    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty() && self.by_subject.is_empty()
    }
}

/// Serves KMIP on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    door: KmipDoor,
    clients: Arc<ClientMap>,
    connections: Arc<Connections>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "KMIP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Admission::Admitted(connection) = connections.admit().await else {
            drop(stream);
            continue;
        };
        let (tls, door, clients) = (tls.clone(), door.clone(), Arc::clone(&clients));
        tokio::spawn(async move {
            if let Err(why) = connection_task(stream, peer, tls, door, clients, connection).await {
                tracing::debug!(%peer, why, "KMIP connection closed");
            }
        });
    }
}

/// The deadline of `connection` now (its head's or its idle one), or a far one.
fn deadline(connection: &Connection) -> Instant {
    connection
        .deadline()
        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600))
}

async fn connection_task(
    stream: TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    door: KmipDoor,
    clients: Arc<ClientMap>,
    connection: Connection,
) -> Result<(), &'static str> {
    let _ = stream.set_nodelay(true);
    let mut stream = tokio::time::timeout_at(deadline(&connection), tls.accept(stream))
        .await
        .map_err(|_| "the TLS handshake did not finish in time")?
        .map_err(|_| "the TLS handshake failed")?;
    let access_key = {
        let (_, session) = stream.get_ref();
        let der = session
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or("no client certificate")?;
        let Some(access_key) = clients.access_key_of(der.as_ref()) else {
            tracing::warn!(%peer, "KMIP client certificate is trusted but mapped to no access key; refused");
            return Err("client certificate mapped to no access key");
        };
        access_key.to_owned()
    };
    let limits = *door.limits();
    let body_timeout = connection.connections().limits().body_read_timeout;
    loop {
        let mut header = [0u8; HEADER_LEN];
        tokio::select! {
            read = stream.read_exact(&mut header[..1]) => { read.map_err(|_| "the client left")?; }
            () = tokio::time::sleep_until(deadline(&connection)) => return Err("idle"),
            () = connection.changed(), if connection.is_evicted() => return Err("evicted"),
        }
        connection.bytes_arrived();
        tokio::time::timeout_at(deadline(&connection), stream.read_exact(&mut header[1..]))
            .await
            .map_err(|_| "a message head did not arrive in time")?
            .map_err(|_| "the client left")?;
        let in_flight = connection.request_started();
        in_flight.authenticated();
        let total = ttlv::message_len(&header, &limits).map_err(|_| "not a KMIP message")?;
        let mut message = zeroize::Zeroizing::new(vec![0u8; total]);
        message[..HEADER_LEN].copy_from_slice(&header);
        tokio::time::timeout(body_timeout, stream.read_exact(&mut message[HEADER_LEN..]))
            .await
            .map_err(|_| "a message body did not arrive in time")?
            .map_err(|_| "the client left")?;
        let principal = principal_of(&door, &access_key).await?;
        let answer = door.serve(&message, &principal, Some(peer)).await;
        stream
            .write_all(&answer)
            .await
            .map_err(|_| "the answer could not be written")?;
        drop(in_flight);
        if connection.is_evicted() {
            return Err("evicted");
        }
    }
}

/// The principal of `access_key` (the credential cache bounds how long a disabled
/// key keeps working to the revocation bound).
async fn principal_of(door: &KmipDoor, access_key: &str) -> Result<Principal, &'static str> {
    door.principal(access_key)
        .await
        .map_err(|_| "the access key of this client certificate is unknown or disabled")
}
