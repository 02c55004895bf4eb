//! # kcm-frontdoor
//!
//! What every front door of kcm shares, so that none of them re-implements it — and
//! the doors to come (Kubernetes KMS v2, Barbican, KMIP, XKS, console) copy nothing.
//! Every request of every door goes one way:
//!
//! ```text
//! FrontDoor::begin(_http) ─► Call::sigv4_head · body · sigv4_body / bearer / admit ─► one core call ─► Call::finish
//! ```
//!
//! - [`FrontDoor`]: a door's shared state (its [`Door`] names, the core, the
//!   authenticator, the metrics); [`FrontDoor::begin`] starts a [`Call`].
//! - [`Call`]: one request. It authenticates and keeps the caller; [`Call::finish`]
//!   is the single exit: the audit record (durable before the answer goes out, or
//!   the caller gets that error instead), the log line of a refusal, the request-id
//!   header and the metrics.
//! - [`DoorError`] and [`Answer`]: what `finish` needs from a door's errors (the
//!   audit classification they carry from where they were made, their code) and
//!   responses (a status, a place for the request id). The HTTP doors' responses
//!   implement `Answer` here; a gRPC door implements it for tonic's result type.
//!   An HTTP door's error is an [`HttpError`] rendered its own way: implementing
//!   [`HttpDoorError`] gives it `DoorError`.
//! - [`Authenticator`]: proves which access key sent a request (AWS SigV4, or a
//!   bearer `id:secret` for scripts) by asking the core for the credential. It only
//!   authenticates; authorisation is the core's.
//! - [`Metrics`]: request counters and latency histograms in Prometheus text format.
//! - [`read_proven`] / [`read_unproven`]: a request body read within the door's
//!   limit and the listener's body timeout; one read before authentication also
//!   within the process's budget of unauthenticated bytes, held until
//!   [`Call::sigv4_body`] has checked the signature over it.
//! - [`connections`]: what every listener bounds — the connection cap (room made by
//!   evicting the least recently active connection that serves no authenticated
//!   request), the header and idle timeouts — kept here, free of I/O, and applied
//!   by kcm-server's listener to every door; [`Call::admit`] tells it which
//!   requests are authenticated.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod authn;
mod body;
mod call;
pub mod certificate;
pub mod connections;
mod http_layer;
mod metrics;

#[cfg(test)]
mod tests;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use authn::{Authenticator, AuthnError, SigV4Head, SigV4Service};
pub use body::{read_proven, read_unproven, BodyBytes, BodyError, UnprovenBody};
pub use call::{Answer, Call, Door, DoorError, FrontDoor, Requested};
pub use http_layer::{HttpDoorError, HttpError, Transport, CLIENT_REQUEST_ID_HEADER};
pub use metrics::Metrics;
