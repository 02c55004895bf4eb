//! One REST call from start to finish: the request path every door shares
//! ([`kcm_frontdoor::Call`]), plus what is REST's own: reading the body and choosing
//! between bearer and SigV4 authentication.
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
//! [`Call::finish`] is [`kcm_frontdoor::Call::finish`]: the audit record (durable
//! before the response goes out; if it cannot be written, the caller gets that error
//! instead), the log line of a refusal, the `x-kcm-request-id` header and the metrics.

use axum::extract::Request;
use axum::response::Response;
use kcm_core::auth::Caller;

use crate::error::RestError;
use crate::request::Incoming;
use crate::RestApi;

/// A request in progress.
pub(crate) struct Call<'a> {
    inner: kcm_frontdoor::Call<'a>,
}

impl RestApi {
    /// Starts serving `operation` (its stable name, as in the audit log).
    pub(crate) fn begin(&self, operation: &'static str, request: &Request) -> Call<'_> {
        Call {
            inner: self.front.begin_http(operation, request),
        }
    }
}

impl Call<'_> {
    /// Reads and authenticates the request; the caller is kept for the audit record.
    pub(crate) async fn accept(
        &mut self,
        request: Request,
    ) -> Result<(Incoming, &Caller), RestError> {
        let incoming = Incoming::read(request).await?;
        let caller = incoming.authenticate(&mut self.inner).await?;
        Ok((incoming, caller))
    }

    /// Audits the outcome and turns it into the response.
    pub(crate) async fn finish(self, result: Result<Response, RestError>) -> Response {
        self.inner.finish(result).await
    }
}
