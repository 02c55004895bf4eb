//! One REST call from start to finish: authenticate, run, audit, answer.
//!
//! Every handler has the same shape:
//!
//! ```ignore
//! let mut call = api.begin("ListSystems", &request);
//! let result: Outcome = async {
//!     let (incoming, caller) = call.accept(request).await?;
//!     /* one core call with `caller` */
//! }
//! .await;
//! call.finish(result).await
//! ```
//!
//! [`Call::finish`] writes the request's audit record — durable before the response
//! goes out; if it cannot be written, the caller gets that error instead — logs
//! refusals (code and message only) and records metrics.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use kcm_core::authz::Caller;
use kcm_core::model::AuditOutcome;
use kcm_frontdoor::RequestAudit;

use crate::error::{code, RestError};
use crate::request::Incoming;
use crate::{RestApi, METRICS_DOOR};

/// Response header carrying the request id (also in the audit record).
pub const REQUEST_ID_HEADER: &str = "x-kcm-request-id";

/// A request in progress.
pub(crate) struct Call {
    api: RestApi,
    operation: &'static str,
    started: Instant,
    audit: RequestAudit,
    caller: Option<Caller>,
}

impl RestApi {
    /// Starts serving `operation` (its stable name, as in the audit log).
    pub(crate) fn begin(&self, operation: &'static str, request: &Request) -> Call {
        Call {
            api: self.clone(),
            operation,
            started: Instant::now(),
            audit: RequestAudit::of(METRICS_DOOR, kcm_frontdoor::next_request_id(), request),
            caller: None,
        }
    }
}

impl Call {
    /// Reads and authenticates the request; the caller is kept for the audit record.
    pub(crate) async fn accept(
        &mut self,
        request: Request,
    ) -> Result<(Incoming, &Caller), RestError> {
        let (incoming, principal) = self.api.accept(request).await?;
        Ok((incoming, self.caller.insert(Caller::new(principal))))
    }

    /// Audits the outcome and turns it into the response.
    pub(crate) async fn finish(self, result: Result<Response, RestError>) -> Response {
        let refusal = result.as_ref().err().map(|e| {
            let outcome = if e.code == code::UNAUTHENTICATED || e.code == code::ACCESS_DENIED {
                AuditOutcome::Denied
            } else {
                AuditOutcome::Failed
            };
            (outcome, e.code)
        });
        let request_id = self.audit.request_id.clone();
        let audited = self
            .audit
            .finish(
                &self.api.service,
                self.operation,
                self.caller.as_ref(),
                refusal,
            )
            .await;
        let result = match audited {
            Ok(()) => result,
            Err(e) => Err(RestError::from(e)),
        };
        let operation = self.operation;
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                if e.status.is_server_error() {
                    tracing::warn!(operation, code = e.code, message = %e.message, "request failed");
                } else {
                    tracing::debug!(operation, code = e.code, message = %e.message, "request refused");
                }
                e.into_response()
            }
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        self.api.metrics.record(
            METRICS_DOOR,
            operation,
            response.status().as_u16(),
            self.started.elapsed(),
        );
        response
    }
}
