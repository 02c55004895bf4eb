//! # kcm-frontdoor
//!
//! What every HTTP front door of kcm shares, so none of them re-implements it:
//!
//! - [`Authenticator`]: proves which access key signed a request (AWS SigV4, or a
//!   bearer `id:secret` for scripts) by asking the core for the credential. It only
//!   authenticates; authorisation is the core's.
//! - [`RequestAudit`]: the one audit record each request ends with, written before
//!   the response goes out.
//! - [`Metrics`]: request counters and latency histograms in Prometheus text format.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod authn;
mod metrics;

pub use audit::{claimed_access_key, next_request_id, RequestAudit};
pub use authn::{Authenticator, AuthnError};
pub use metrics::Metrics;
