//! The audit record every request ends with, written before the answer goes out.

use std::net::SocketAddr;

use http::HeaderMap;
use kcm_core::audit::AuditEvent;
use kcm_core::authz::Caller;
use kcm_core::error::Error;
use kcm_core::model::AuditOutcome;
use kcm_core::service::Service;

/// What a front door knows about a request for its audit record. Made by
/// [`FrontDoor::begin`](crate::FrontDoor::begin), written by
/// [`Call::finish`](crate::Call::finish).
#[derive(Debug)]
pub(crate) struct RequestAudit {
    /// The door's name (`aws`, `rest`, …).
    pub(crate) front_door: &'static str,
    /// The request id sent back to the caller.
    pub(crate) request_id: String,
    /// The client's address.
    pub(crate) source: Option<SocketAddr>,
    /// The id the client gave the request, when it gave a valid one.
    pub(crate) client_request_id: Option<String>,
    /// What the request said of itself, recorded as given.
    pub(crate) detail: Option<std::collections::BTreeMap<String, String>>,
    /// The request's credential (`Authorization`), read only if authentication fails
    /// (to name the access key the request claimed).
    pub(crate) authorization: Option<http::HeaderValue>,
}

impl RequestAudit {
    /// Writes the audit record of the request and waits until it is durable. An
    /// `Err` means the record could not be written: the front door must then answer
    /// with that error instead of the result (nothing unaudited goes out).
    pub(crate) async fn finish(
        &self,
        service: &Service,
        operation: &str,
        caller: Option<&Caller>,
        refusal: Option<(AuditOutcome, &str)>,
    ) -> Result<(), Error> {
        let (outcome, error) = match refusal {
            None => (AuditOutcome::Success, None),
            Some((outcome, error)) => (outcome, Some(error)),
        };
        // Only unauthenticated requests need the claimed id: parse it only for them.
        let claimed = match (caller, &self.authorization) {
            (None, Some(value)) => {
                let mut headers = HeaderMap::new();
                headers.insert(http::header::AUTHORIZATION, value.clone());
                claimed_access_key(&headers)
            }
            _ => None,
        };
        let result = service
            .record_audit(AuditEvent {
                front_door: self.front_door,
                operation,
                request_id: &self.request_id,
                source: self.source.map(|a| a.ip().to_string()),
                client_request_id: self.client_request_id.as_deref(),
                detail: self.detail.as_ref(),
                caller,
                claimed_access_key: claimed.as_deref(),
                outcome,
                error,
            })
            .await;
        if let Err(e) = &result {
            tracing::error!(error = %e, request_id = %self.request_id, "audit record could not be written; refusing the response");
        }
        result
    }
}

/// The access key id a request claims, from a SigV4 `Authorization` header or a
/// bearer token (never the secret).
pub(crate) fn claimed_access_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        let id = token.split(':').next()?.trim();
        return valid_id(id);
    }
    let auth = kcm_sigv4::parse_authorization(headers).ok()?;
    valid_id(&auth.access_key_id)
}

/// Claimed ids go into audit records: keep them short and printable.
fn valid_id(id: &str) -> Option<String> {
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| id.to_string())
}

/// A client's id for its request, kept for the audit record when it is 1 to 128
/// characters of letters, digits and `. _ : / -` (a UUID, a Kubernetes uid, an
/// OpenStack `req-…` id); anything else is not recorded: it would only be a label,
/// and the log is no place for arbitrary client bytes.
pub(crate) fn valid_client_request_id(id: &str) -> Option<String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._:/-".contains(&b);
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(allowed)).then(|| id.to_string())
}

/// A request id unique within this process without a random-number call per request.
pub(crate) fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string());
    format!("{prefix}-{:016x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
