//! One request through a front door, from start to finish. Every door takes the
//! same path:
//!
//! ```text
//! FrontDoor::begin ─► Call::sigv4_head + sigv4_body / Call::bearer / Call::admit ─► one core call ─► Call::finish
//!                     (authenticate; the caller is kept)                                               (audit, log, request id, metrics)
//! ```
//!
//! Nothing here knows a wire protocol. A door describes its errors through
//! [`DoorError`] and its responses through [`Answer`]; the HTTP doors' response type
//! implements `Answer` in this crate's HTTP layer, and a gRPC door (tonic) would
//! implement it for `Result<tonic::Response<T>, tonic::Status>`, with the request id
//! going into the response metadata instead of a header.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method, Uri};
use kcm_core::authz::{Caller, Op, Principal};
use kcm_core::error::Error;
use kcm_core::model::AuditOutcome;
use kcm_core::policy::Connection;
use kcm_core::service::Service;

use crate::audit::{next_request_id, valid_client_request_id, RequestAudit};
use crate::authn::{SigV4Head, SigV4Service};
use crate::body::{BodyBytes, UnprovenBody};
use crate::connections::InFlight;
use crate::{Authenticator, AuthnError, Metrics};

/// How a front door is named wherever its requests are accounted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Door {
    /// The name in audit records (`front_door`) and in the `door` label of the
    /// metrics: `aws`, `rest`, and for the doors to come `k8s-kms`, `barbican`, …
    pub name: &'static str,
    /// Where the request id goes back to the caller: an HTTP header name, or a gRPC
    /// metadata key (lower case). The AWS door uses `x-amzn-requestid`, which AWS SDKs read.
    pub request_id_header: &'static str,
}

/// What a front door shares across its requests: its name, the core, the
/// authenticator and the metrics. Each door crate wraps one; [`FrontDoor::begin`]
/// starts a request.
#[derive(Clone)]
pub struct FrontDoor {
    door: Door,
    service: Arc<Service>,
    auth: Arc<Authenticator>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for FrontDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontDoor")
            .field("door", &self.door)
            .finish_non_exhaustive()
    }
}

impl FrontDoor {
    /// The front door `door` over `service`, authenticating with `auth` and recording
    /// into `metrics` (both shared with the other doors of the process).
    pub fn new(
        door: Door,
        service: Arc<Service>,
        auth: Arc<Authenticator>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            door,
            service,
            auth,
            metrics,
        }
    }

    /// The front door `door` over `service` on its own, with an authenticator and
    /// metrics of its own: a door run alone, as its tests run it.
    pub fn alone(door: Door, service: Arc<Service>) -> Self {
        let auth = Arc::new(Authenticator::new(Arc::clone(&service)));
        Self::new(door, service, auth, Arc::new(Metrics::default()))
    }

    /// The door's names.
    pub fn door(&self) -> Door {
        self.door
    }

    /// The core.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The metrics, for what a door counts outside a [`Call`] (public documents that
    /// are neither authenticated nor audited).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts serving `operation` (an operation of the core's table, or what a
    /// request that names none is recorded as) for a client at `source`. `authorization` is the credential the request
    /// carries (an HTTP `Authorization` header or the same gRPC metadata), read only if
    /// authentication fails, to name the access key the request claimed.
    pub fn begin(
        &self,
        operation: impl Into<Requested>,
        source: Option<SocketAddr>,
        authorization: Option<HeaderValue>,
    ) -> Call<'_> {
        let requested = operation.into();
        Call {
            front: self,
            operation: requested.name(),
            op: match requested {
                Requested::Op(op) => Some(op),
                Requested::Unrecognised(_) => None,
            },
            started: Instant::now(),
            audit: RequestAudit {
                front_door: self.door.name,
                request_id: next_request_id(),
                source,
                client_request_id: None,
                detail: None,
                authorization,
            },
            caller: None,
            in_flight: None,
            transport: None,
            throttled: false,
        }
    }
}

/// What a request asked for, as its audit record and metrics name it: one of the
/// core's operations (the one vocabulary of every door), or — for a request that
/// names none a door serves — a fixed name saying so (`Unknown`, `UnknownPath`,
/// `MethodNotAllowed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requested {
    /// An operation of the core's table.
    Op(Op),
    /// A request that names no operation this door serves.
    Unrecognised(&'static str),
}

impl Requested {
    /// The stable name: the operation's, or the fixed one.
    pub fn name(self) -> &'static str {
        match self {
            Requested::Op(op) => op.as_str(),
            Requested::Unrecognised(name) => name,
        }
    }
}

impl From<Op> for Requested {
    fn from(op: Op) -> Self {
        Requested::Op(op)
    }
}

/// A request in progress: started by [`FrontDoor::begin`], ended by
/// [`Call::finish`], which every request must reach (it writes the audit record).
#[must_use = "a request ends with Call::finish, which writes its audit record"]
pub struct Call<'a> {
    front: &'a FrontDoor,
    operation: &'static str,
    /// The core operation asked for, when the request names one.
    op: Option<Op>,
    started: Instant,
    audit: RequestAudit,
    caller: Option<Caller>,
    /// The request as its listener tracks it, when it came through one.
    in_flight: Option<InFlight>,
    /// How its connection is carried, when the listener said.
    transport: Option<crate::Transport>,
    /// The caller's request-rate quota refused the request: it did nothing, and it
    /// is counted in the metrics and logged by the limiter, not written to the audit
    /// log one record each — a caller flooding past its quota would otherwise spend
    /// the audit writer that the quota protects for every other caller.
    throttled: bool,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("operation", &self.operation)
            .field("request_id", &self.audit.request_id)
            .finish_non_exhaustive()
    }
}

impl Call<'_> {
    /// The core, for the call's one core call.
    pub fn service(&self) -> &Service {
        &self.front.service
    }

    /// The id this request is known by in the audit log and to the caller.
    pub fn request_id(&self) -> &str {
        &self.audit.request_id
    }

    /// Records `detail` in the audit record: what the request said of itself (the
    /// XKS door: AWS KMS's request metadata), name by name, as given. The door
    /// bounds it (names and values of a known, small set).
    pub fn set_audit_detail(&mut self, detail: std::collections::BTreeMap<String, String>) {
        self.audit.detail = (!detail.is_empty()).then_some(detail);
    }

    /// The caller, once admitted ([`Call::admit`], [`Call::sigv4_body`],
    /// [`Call::bearer`]).
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// Records `id`, the client's own id for this request, in the audit record
    /// (when it is a valid one: 1 to 128 characters of letters, digits and
    /// `. _ : / -`; otherwise it is left out).
    pub fn set_client_request_id(&mut self, id: &str) {
        self.audit.client_request_id = valid_client_request_id(id);
    }

    /// Ties the call to its request as the listener tracks it (an HTTP door finds
    /// it in the request's extensions; [`FrontDoor::begin_http`] does this itself),
    /// so that [`Call::admit`] can tell the listener the caller is authenticated.
    pub fn track(&mut self, in_flight: Option<&InFlight>) {
        self.in_flight = in_flight.cloned();
    }

    /// Records how the request's connection is carried (the listener's
    /// [`crate::Transport`], when it said), for the core's key policies.
    pub fn set_transport(&mut self, transport: Option<crate::Transport>) {
        self.transport = transport;
    }

    /// Admits the caller a door authenticated by its own means, through the core's
    /// request-rate quotas ([`Service::admit_caller`]); the core notes what it
    /// touches in the caller, for the audit record. Returns it for the core call, or
    /// the core's `Throttled` error, which the door answers in its own protocol's
    /// words (AWS `ThrottlingException`, HTTP 429, gRPC `RESOURCE_EXHAUSTED`). From
    /// now on the request's connection is not evicted to make room for another.
    pub fn admit(&mut self, principal: Principal) -> Result<&Caller, Error> {
        if let Some(in_flight) = &self.in_flight {
            in_flight.authenticated();
        }
        match self.front.service.admit_caller(principal) {
            Ok(caller) => {
                let connection = Connection {
                    source_ip: self.audit.source.map(|s| s.ip()),
                    secure_transport: self.transport.map(|t| t.tls),
                };
                Ok(self.caller.insert(caller.over(connection)))
            }
            Err(e) => {
                self.throttled = true;
                Err(e)
            }
        }
    }

    /// Checks the head of a SigV4-signed request for `service`
    /// ([`Authenticator::sigv4_head`]), before its body is read. Nobody is admitted
    /// yet: [`Call::sigv4_body`] does that once the signature over the body holds.
    pub async fn sigv4_head(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        service: SigV4Service,
    ) -> Result<SigV4Head, AuthnError> {
        self.front.auth.sigv4_head(uri, headers, service).await
    }

    /// Checks the signature of a request whose head passed [`Call::sigv4_head`] over
    /// its `body` (read with [`read_unproven`](crate::read_unproven)), admits its
    /// caller, and hands over the body, now authenticated: its share of the budget
    /// of unauthenticated bytes is returned.
    pub fn sigv4_body(
        &mut self,
        head: SigV4Head,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: UnprovenBody,
    ) -> Result<(&Caller, BodyBytes), AuthnError> {
        let principal = self
            .front
            .auth
            .sigv4_body(head, method, uri, headers, body.bytes())?;
        Ok((self.admit(principal)?, body.proven()))
    }

    /// Authenticates a bearer `<access key id>:<secret>` and admits its caller.
    pub async fn bearer(&mut self, token: &str) -> Result<&Caller, AuthnError> {
        let principal = self.front.auth.authenticate_bearer(token).await?;
        Ok(self.admit(principal)?)
    }

    /// Ends the request: writes its audit record and waits until it is durable (if it
    /// cannot be written, the caller gets that error instead of the result: nothing
    /// unaudited goes out), logs a refusal, puts the request id on the answer and
    /// records the metrics. The one exit of every request of every door.
    pub async fn finish<E: DoorError>(self, result: Result<E::Answer, E>) -> E::Answer {
        let door = self.front.door;
        let operation = self.operation;
        let refusal = result.as_ref().err().map(|e| (e.audit_outcome(), e.code()));
        let audited = if self.throttled {
            self.front.metrics.record_throttled(door.name);
            Ok(())
        } else {
            self.audit
                .finish(
                    &self.front.service,
                    operation,
                    self.caller.as_ref(),
                    refusal,
                )
                .await
        };
        let result = match audited {
            Ok(()) => result,
            // A committed change must not be answered "nothing was changed".
            Err(e) => Err(E::from(match self.op {
                Some(op) if result.is_ok() && op.changes_state() => {
                    Error::carried_out_unaudited(operation, &e)
                }
                _ => e,
            })),
        };
        let mut answer = match result {
            Ok(answer) => answer,
            Err(e) => {
                let (code, message) = (e.code(), e.message());
                if e.is_server_error() {
                    tracing::warn!(door = door.name, operation, code, message, "request failed");
                } else {
                    tracing::debug!(
                        door = door.name,
                        operation,
                        code,
                        message,
                        "request refused"
                    );
                }
                e.into_answer()
            }
        };
        answer.set_request_id(door.request_id_header, &self.audit.request_id);
        self.front.metrics.record(
            door.name,
            operation,
            answer.status_code(),
            self.started.elapsed(),
        );
        answer
    }
}

/// What [`Call::finish`] needs from a front door's error type.
///
/// The audit classification is the error's own: a door sets it where the error is
/// made — from the core's [`ErrorKind`](kcm_core::error::ErrorKind) through
/// [`kcm_core::audit::outcome_of`], from an [`AuthnError`] through
/// [`AuthnError::audit_outcome`], `failed` for the door's own refusals (bad input) —
/// never by reading the code it will be given on the wire.
pub trait DoorError: From<Error> {
    /// What the door answers with.
    type Answer: Answer;
    /// `denied` (authentication or authorisation refused) or `failed` (anything else).
    fn audit_outcome(&self) -> AuditOutcome;
    /// The error as the caller sees it (an AWS error type, a REST code): what the
    /// audit record names and the log shows.
    fn code(&self) -> &str;
    /// The caller-safe message, for the log.
    fn message(&self) -> &str;
    /// Whether the server is at fault (an outage, a bug): logged as a warning, while a
    /// refusal the caller caused is logged at debug level.
    fn is_server_error(&self) -> bool;
    /// The answer that carries the error to the caller.
    fn into_answer(self) -> Self::Answer;
}

/// What [`Call::finish`] needs from a front door's answer.
pub trait Answer {
    /// The status the metrics count it under: the HTTP status, or a gRPC code.
    fn status_code(&self) -> u16;
    /// Carries the request id back to the caller under `name`.
    fn set_request_id(&mut self, name: &'static str, request_id: &str);
}
