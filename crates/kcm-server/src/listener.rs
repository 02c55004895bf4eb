//! Every TCP listener of `kcm serve` — the main one (AWS API, `/v1`, the operational
//! endpoints) and the Barbican door's, and any door's to come — goes through
//! [`serve`]: one accept loop, plain HTTP or TLS, HTTP/1.1 or HTTP/2, bounded by the
//! process's [`Connections`] (see `kcm_frontdoor::connections` for the rules: the
//! cap and who is evicted at it, the header and idle timeouts). The request path
//! bounds bodies (`kcm_frontdoor::read_proven` / `read_unproven`).
//!
//! Here is only what needs the sockets: admitting or refusing each accepted
//! connection, telling its [`Connection`] when bytes arrive and when requests start
//! and end, and closing it when its deadline passes or it is evicted.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use kcm_frontdoor::connections::{Admission, Connection, Connections, InFlight};
use kcm_frontdoor::Transport;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::Service as _;

/// The largest request head HTTP/1.1 accepts (hyper answers 431 past it), which is
/// also the most hyper buffers per connection: 16 KiB. A SigV4-signed request's head
/// is under 2 KiB and a Keystone token a few hundred bytes, while hyper's default
/// (about 400 KiB) would let each slow client make the server hold that much.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// HTTP/2 flow-control windows, per stream and per connection: 64 KiB, the
/// protocol's own default. hyper's 1 MiB would let a client make the server buffer
/// 1 MiB of body per connection before anything reads it; the window is reopened as
/// the body is read, so a small one costs only throughput.
const H2_WINDOW: u32 = 64 * 1024;

/// Requests in flight on one HTTP/2 connection at most.
const H2_MAX_STREAMS: u32 = 100;

/// How long accepting pauses after an error that is not the client's (the process
/// is out of descriptors, say): without a pause the loop would spin on it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What a plain-HTTP client refused at the cap reads before the connection closes.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    connection: close\r\ncontent-length: 0\r\nretry-after: 1\r\n\r\n";

/// Serves `app` on `listener` — over TLS when `tls` is set — until `shutdown`
/// resolves; then stops accepting, lets the requests in flight finish (idle
/// connections close at once) and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let builder = Arc::new(http_builder());
    let graceful = GracefulShutdown::new();
    let refusals = Refusals::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // At the cap this waits for the evicted connection to close: accepting
        // slows to the pace of closing, and descriptors stay under the cap.
        let connection = match connections.admit().await {
            Admission::Admitted(connection) => connection,
            Admission::Refused => {
                refusals.refused(&connections);
                if tls.is_none() {
                    // Best effort and never waiting: a client that does not read
                    // gets the close alone.
                    let _ = tcp.try_write(BUSY_RESPONSE);
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(
            tcp,
            peer,
            tls.clone(),
            app.clone(),
            connection,
            Arc::clone(&builder),
            graceful.watcher(),
        ));
    }
    graceful.shutdown().await;
    Ok(())
}

/// hyper's connection settings (see the constants above). Heads and idleness are
/// timed by the connection's own deadlines, not hyper's `header_read_timeout`,
/// which would also cut kept-alive connections at the header timeout.
fn http_builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .initial_stream_window_size(H2_WINDOW)
        .initial_connection_window_size(H2_WINDOW);
    builder
}

/// Accepting failed. A connection reset before it was accepted is the client's
/// business; anything else (out of descriptors, out of memory) is the server's, is
/// logged, and pauses accepting for a moment rather than spinning.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; pausing");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Counts connections refused at the cap, and says so in the log at most every
/// ten seconds: an attack must not flood the log too.
#[derive(Default)]
struct Refusals {
    count: AtomicU64,
    last_warned: std::sync::Mutex<Option<Instant>>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn refused(&self, connections: &Connections) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self
            .last_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Self::EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                max_connections = connections.limits().max_connections,
                refused_so_far = count,
                "connection cap reached and every connection serves an authenticated request: refusing new connections"
            );
        }
    }
}

/// Serves one admitted connection: TLS first when set, then HTTP, each bounded by
/// the connection's deadline and ended at once if it is evicted.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    connection: Connection,
    builder: Arc<Builder<TokioExecutor>>,
    watcher: Watcher,
) {
    let io = Watched {
        io: tcp,
        connection: connection.clone(),
    };
    // Each request is in flight on the connection until its response has been
    // sent in full, and carries the client's address (for audit records) and its
    // InFlight (for the request path).
    let requests = connection.clone();
    let secure = tls.is_some();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = requests.request_started();
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(Transport { tls: secure });
        request.extensions_mut().insert(in_flight.clone());
        let mut app = app.clone();
        async move {
            let response = app.call(request).await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(Answering {
                    body,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    match tls {
        Some(acceptor) => {
            // The handshake counts against the first head's deadline.
            let tls = match bounded(&connection, acceptor.accept(io)).await {
                Some(Ok(tls)) => tls,
                Some(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                None => return,
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            let _ = bounded(&connection, watcher.watch(conn.into_owned())).await;
        }
        None => {
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let _ = bounded(&connection, watcher.watch(conn.into_owned())).await;
        }
    }
}

/// Runs `work` until it ends — or, dropping it (which closes the connection), until
/// the connection is evicted or its deadline passes. `None` then.
async fn bounded<F: Future>(connection: &Connection, work: F) -> Option<F::Output> {
    tokio::pin!(work);
    loop {
        if connection.is_evicted() {
            return None;
        }
        let deadline = connection.deadline();
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            output = &mut work => return Some(output),
            () = expired => {
                // A change may have moved the deadline since it was read.
                if connection.deadline().is_some_and(|at| at <= Instant::now()) {
                    return None;
                }
            }
            () = connection.changed() => {}
        }
    }
}

/// A response body that keeps its request in flight until it has been sent in
/// full (or the connection dropped it).
struct Answering {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Answering {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's stream, telling its connection when bytes arrive (which starts a
/// head's timeout after an idle spell).
struct Watched<T> {
    io: T,
    connection: Connection,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.bytes_arrived();
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open files to the hard limit, so that the connection
/// cap derived from it is as large as the operator allowed; returns the limit in
/// force (`u64::MAX` when unlimited). A failure keeps the limit as it was.
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if limit.current == limit.maximum {
        return soft;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
            tracing::debug!(from = soft, to = now, "raised the open-file limit");
            now
        }
        Err(e) => {
            tracing::warn!(limit = soft, error = %e, "cannot raise the open-file limit to its hard limit");
            soft
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_frontdoor::connections::ConnectionLimits;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A listener with `limits` serving `GET /` → "ok", on a loopback port.
    async fn start(limits: ConnectionLimits) -> (SocketAddr, Arc<Connections>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Connections::new(limits);
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let served = Arc::clone(&connections);
        tokio::spawn(
            async move { serve(listener, None, app, served, std::future::pending()).await },
        );
        (address, connections)
    }

    async fn get(address: SocketAddr) -> io::Result<String> {
        let mut tcp = TcpStream::connect(address).await?;
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    /// Waits (at most 5 s) until `connections` has `n` open.
    async fn until_open(connections: &Connections, n: usize) {
        for _ in 0..500 {
            if connections.open() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} connections open, not {n}", connections.open());
    }

    #[tokio::test]
    async fn silent_connections_are_closed_at_the_header_timeout_and_make_room() {
        let (address, connections) = start(ConnectionLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        })
        .await;
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(TcpStream::connect(address).await.unwrap());
        }
        until_open(&connections, 4).await;
        // A real request still gets through: it evicts the longest-idle one.
        let answer = get(address).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // And silence is cut at the header timeout.
        until_open(&connections, 0).await;
        let mut buf = [0u8; 1];
        for mut tcp in idle {
            assert_eq!(tcp.read(&mut buf).await.unwrap_or(0), 0);
        }
    }

    #[tokio::test]
    async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
        let (address, connections) = start(ConnectionLimits {
            idle_timeout: Duration::from_millis(300),
            header_read_timeout: Duration::from_secs(30),
            ..ConnectionLimits::default()
        })
        .await;
        let mut tcp = TcpStream::connect(address).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let started = Instant::now();
        assert_eq!(tcp.read(&mut buf).await.unwrap_or(0), 0);
        assert!(started.elapsed() < Duration::from_secs(5));
        until_open(&connections, 0).await;
    }

    #[test]
    fn the_descriptor_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{getrlimit, Resource};
        let limit = raise_descriptor_limit();
        let now = getrlimit(Resource::Nofile);
        assert_eq!(now.current.unwrap_or(u64::MAX), limit);
        assert_eq!(now.current, now.maximum);
    }
}
