//! Reading a request body, bounded the same way for every HTTP door: by the door's
//! own limit (refused from `Content-Length` before a byte is read, else as soon as
//! the bytes read pass it), by the listener's body timeout, and — for a body read
//! before its request is authenticated — by the process's budget of
//! unauthenticated body bytes.
//!
//! A door authenticates what it can from the head first (a bearer token, a Keystone
//! token, or everything of a SigV4 signature but the body's hash: see
//! [`Call::sigv4_head`](crate::Call::sigv4_head)). A body read after that is
//! [`read_proven`]; a SigV4 body, whose signature covers it, is [`read_unproven`]:
//! it holds its share of the budget until [`Call::sigv4_body`](crate::Call::sigv4_body)
//! has checked the signature.
//!
//! Bodies are read into zeroizing buffers: they may carry plaintext or key material.

use std::time::Duration;

use axum::body::Body;
use http::request::Parts;
use http::{header, HeaderMap};
use http_body_util::BodyExt as _;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::connections::{Connections, InFlight};

/// A request body: wiped when dropped.
pub type BodyBytes = Zeroizing<Vec<u8>>;

/// Why a body was not read. Each door answers it in its own shape, choosing the
/// status and code in one exhaustive match.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than the door accepts (usually answered 413).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The door's limit, in bytes.
        limit: usize,
    },
    /// Not all of it arrived within the body timeout (usually 408).
    #[error("the request body did not arrive within {} ms", after.as_millis())]
    TimedOut {
        /// The body timeout.
        after: Duration,
    },
    /// The budget of unauthenticated body bytes stayed spent for the whole body
    /// timeout: the server is busy with other clients' bodies (usually 503; retry).
    #[error("the server is reading too many unauthenticated request bodies; retry later")]
    Busy,
    /// The connection failed while the body was read (the client left, or its
    /// chunked encoding was malformed).
    #[error("the request body could not be read")]
    Unreadable,
}

/// A body read before its request was authenticated. While it exists it holds its
/// share of the budget of unauthenticated bytes;
/// [`Call::sigv4_body`](crate::Call::sigv4_body) checks the signature over it and
/// only then hands the bytes over.
pub struct UnprovenBody {
    bytes: BodyBytes,
    _budget: OwnedSemaphorePermit,
}

impl std::fmt::Debug for UnprovenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnprovenBody")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl UnprovenBody {
    /// The bytes, for checking the signature over them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes once the request is authenticated; the budget is released.
    pub(crate) fn proven(self) -> BodyBytes {
        self.bytes
    }
}

/// The process's bounds, through the listener's connection of the request (the
/// default ones for a request that came through no listener).
fn bounds_of(parts: &Parts) -> &Connections {
    match parts.extensions.get::<InFlight>() {
        Some(request) => request.connection().connections(),
        None => Connections::unlistened(),
    }
}

/// The length `Content-Length` declares, refused at once when over `limit`.
fn declared_length(headers: &HeaderMap, limit: usize) -> Result<Option<usize>, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(BodyError::TooLarge { limit }),
        Some(n) => Ok(Some(n as usize)),
        None => Ok(None),
    }
}

/// Reads the body of a request whose caller is already authenticated (from its
/// head): at most `limit` bytes, within the body timeout.
pub async fn read_proven(parts: &Parts, body: Body, limit: usize) -> Result<BodyBytes, BodyError> {
    let declared = declared_length(&parts.headers, limit)?;
    let connections = bounds_of(parts);
    let after = connections.limits().body_read_timeout;
    read_until(Instant::now() + after, after, body, declared, limit).await
}

/// Reads the body of a request that is not authenticated yet (SigV4, whose
/// signature covers the body): at most `limit` bytes, within the body timeout, after
/// taking its share of the budget of unauthenticated body bytes — its declared
/// length, or `limit` when it declares none. Waiting for the budget counts against
/// the body timeout.
pub async fn read_unproven(
    parts: &Parts,
    body: Body,
    limit: usize,
) -> Result<UnprovenBody, BodyError> {
    let declared = declared_length(&parts.headers, limit)?;
    let connections = bounds_of(parts);
    let after = connections.limits().body_read_timeout;
    let deadline = Instant::now() + after;
    let share = declared
        .unwrap_or(limit)
        .min(connections.limits().unauthenticated_body_bytes);
    let share = u32::try_from(share).unwrap_or(u32::MAX);
    let budget = tokio::time::timeout_at(
        deadline,
        std::sync::Arc::clone(connections.budget()).acquire_many_owned(share),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or(BodyError::Busy)?;
    let bytes = read_until(deadline, after, body, declared, limit).await?;
    Ok(UnprovenBody {
        bytes,
        _budget: budget,
    })
}

/// Reads `body` whole by `deadline`: at most `limit` bytes.
async fn read_until(
    deadline: Instant,
    after: Duration,
    mut body: Body,
    declared: Option<usize>,
    limit: usize,
) -> Result<BodyBytes, BodyError> {
    let read = async {
        let mut out = Zeroizing::new(Vec::with_capacity(declared.unwrap_or(0)));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Unreadable)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers: nothing a door reads
            };
            if out.len() + data.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            append(&mut out, &data, limit);
        }
        Ok(out)
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| BodyError::TimedOut { after })?
}

/// Appends `data` to `out`, growing it into a fresh buffer when it is full: a `Vec`
/// growing in place would free its old buffer unwiped.
fn append(out: &mut BodyBytes, data: &[u8], limit: usize) {
    let needed = out.len() + data.len();
    if needed > out.capacity() {
        let capacity = (out.capacity() * 2).clamp(needed, limit.max(needed));
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(out);
        *out = grown;
    }
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connections::{Admission, Connection, ConnectionLimits};

    fn parts(content_length: Option<&str>, connection: Option<&Connection>) -> Parts {
        let mut builder = http::Request::builder();
        if let Some(n) = content_length {
            builder = builder.header(header::CONTENT_LENGTH, n);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        if let Some(c) = connection {
            parts.extensions.insert(c.request_started());
        }
        parts
    }

    /// A body that sends `first` and then nothing, ever.
    fn stalled(first: &'static [u8]) -> Body {
        let once = futures_util::stream::once(async move {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(first))
        });
        Body::from_stream(futures_util::StreamExt::chain(
            once,
            futures_util::stream::pending(),
        ))
    }

    async fn connection(limits: ConnectionLimits) -> Connection {
        match Connections::new(limits).admit().await {
            Admission::Admitted(c) => c,
            Admission::Refused => unreachable!(),
        }
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        // The body would never end: only the header can have refused it.
        let e = read_proven(&parts(Some("1048576"), None), stalled(b"x"), 1024)
            .await
            .unwrap_err();
        assert_eq!(e, BodyError::TooLarge { limit: 1024 });
        let e = read_unproven(&parts(Some("1025"), None), stalled(b"x"), 1024)
            .await
            .unwrap_err();
        assert_eq!(e, BodyError::TooLarge { limit: 1024 });
    }

    #[tokio::test]
    async fn an_undeclared_body_is_cut_at_the_limit() {
        let ok = read_proven(&parts(None, None), Body::from(vec![7u8; 1024]), 1024)
            .await
            .unwrap();
        assert_eq!(ok.len(), 1024);
        let e = read_proven(&parts(None, None), Body::from(vec![7u8; 1025]), 1024)
            .await
            .unwrap_err();
        assert_eq!(e, BodyError::TooLarge { limit: 1024 });
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out() {
        let c = connection(ConnectionLimits {
            body_read_timeout: Duration::from_secs(2),
            ..ConnectionLimits::default()
        })
        .await;
        let e = read_proven(&parts(Some("10"), Some(&c)), stalled(b"12345"), 64)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            BodyError::TimedOut {
                after: Duration::from_secs(2)
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unauthenticated_bodies_share_one_budget_released_when_proven() {
        let c = connection(ConnectionLimits {
            unauthenticated_body_bytes: 100,
            body_read_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        })
        .await;
        let budget = Arc::clone(c.connections().budget());
        let first = read_unproven(&parts(Some("60"), Some(&c)), Body::from(vec![1u8; 60]), 64)
            .await
            .unwrap();
        assert_eq!(budget.available_permits(), 40);
        // A second one does not fit until the first is proven (or dropped).
        let e = read_unproven(&parts(Some("60"), Some(&c)), Body::from(vec![1u8; 60]), 64)
            .await
            .unwrap_err();
        assert_eq!(e, BodyError::Busy);
        // One that declares no length takes the door's whole limit.
        let undeclared = read_unproven(&parts(None, Some(&c)), Body::from(vec![1u8; 10]), 30)
            .await
            .unwrap();
        assert_eq!(budget.available_permits(), 10);
        assert_eq!(first.proven().len(), 60);
        drop(undeclared);
        assert_eq!(budget.available_permits(), 100);
    }

    #[test]
    fn growing_keeps_every_byte_and_respects_the_limit() {
        let mut out = Zeroizing::new(Vec::new());
        for chunk in [&[1u8; 3][..], &[2; 5], &[3; 1]] {
            append(&mut out, chunk, 9);
        }
        assert_eq!(&out[..], &[1, 1, 1, 2, 2, 2, 2, 2, 3]);
        assert!(out.capacity() <= 9);
    }
}
