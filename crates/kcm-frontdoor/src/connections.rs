//! What a connection may cost before its requests prove who sent them: the
//! bookkeeping behind every listener's connection cap, its header and idle
//! timeouts, and the budget of bytes of bodies not yet authenticated.
//!
//! The listener (kcm-server's `listener.rs`) owns the sockets; this is the part
//! that decides, kept free of I/O so it is tested on its own:
//!
//! - [`Connections`] — one per process, shared by every listener, because the file
//!   descriptors it protects are the process's. It admits a new connection while
//!   fewer than `max_connections` are open. At the cap it makes room by closing the
//!   least recently active connection that is *evictable* — one serving no
//!   authenticated request: idle, still sending a head, or with requests whose
//!   callers have not been proved yet (a body still arriving, an unauthenticated
//!   refusal still being written) — as nginx reuses its idle keep-alive
//!   connections when it runs out. The new connection waits (briefly) until the
//!   evicted one has closed, so the cap bounds descriptors even in a flood. Only
//!   when every open connection serves an authenticated request is the new one
//!   refused. So a crowd of idle or slow
//!   clients cannot lock a real client out, and an authenticated request is never
//!   cut off to make room.
//! - [`Connection`] — one connection's handle. The listener marks each request
//!   ([`Connection::request_started`], which gives an [`InFlight`]) and bytes
//!   arriving ([`Connection::bytes_arrived`]); it asks [`Connection::deadline`] when
//!   the connection must be closed and [`Connection::is_evicted`] whether it was
//!   chosen to make room.
//! - [`InFlight`] — one request, put in its extensions by the listener. The request
//!   path ([`Call::admit`](crate::Call::admit)) marks it authenticated; the body
//!   reader finds the process's bounds through it.
//!
//! The timeouts are those of Go's `http.Server`, which operators know: a new
//! connection has `header_read_timeout` to send its first request head (and finish
//! TLS); between requests a kept-alive connection may stay silent for
//! `idle_timeout`, and once the first byte of the next request arrives its head must
//! be complete within `header_read_timeout`; a body must arrive within
//! `body_read_timeout` (the body reader's). hyper's own `header_read_timeout` is not
//! used: it runs from the moment a connection turns idle, so it would also cut every
//! kept-alive connection at the header timeout, and HTTP/2 has none.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// The bounds every listener applies. The defaults are what `kcm serve` uses when
/// nothing is configured (except `max_connections`, which the server derives from
/// its file-descriptor limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once, over all listeners.
    pub max_connections: usize,
    /// How long a client has to send a request head: from the connection's accept
    /// (TLS handshake included), or from the first byte of a later request.
    pub header_read_timeout: Duration,
    /// How long a client has to send a request's body, from when its head was read.
    pub body_read_timeout: Duration,
    /// How long a kept-alive connection may wait silent for its next request.
    pub idle_timeout: Duration,
    /// Most bytes of request bodies read but not yet authenticated, over all
    /// connections: what unauthenticated clients can make the server hold.
    pub unauthenticated_body_bytes: usize,
}

impl ConnectionLimits {
    /// 10 s for a head: an HTTP client writes its head at once, so this is time for
    /// a slow network, not for a slow client (HAProxy's advice for `timeout
    /// http-request` is the same).
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// 10 s for a body: the largest any door accepts (128 KiB) arrives in that time
    /// at about 100 kbit/s.
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// 60 s idle: what load balancers commonly use (AWS's ALB default), so an SDK's
    /// pooled connection is rarely closed under it.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// 32 MiB of unauthenticated bodies: 256 of the largest body any door accepts,
    /// thousands of ordinary requests, whose bodies are a few hundred bytes and are
    /// authenticated microseconds after they arrive.
    pub const DEFAULT_UNAUTHENTICATED_BODY_BYTES: usize = 32 << 20;
    /// The cap when none is configured and none is derived (tests, and callers that
    /// serve without `kcm serve`'s start-up): 1024, the usual default descriptor limit.
    pub const FALLBACK_MAX_CONNECTIONS: usize = 1024;
    /// The most connections [`ConnectionLimits::max_connections_for`] ever derives:
    /// past that the memory of the connections (buffers of a few KiB to tens of KiB
    /// each) matters more than descriptors.
    pub const MAX_DERIVED_CONNECTIONS: usize = 16_384;

    /// The connection cap for a process allowed `nofile` descriptors: three
    /// quarters of them, keeping at least 256 (or half, for a tiny limit) for what
    /// else the server opens — the store, its pool of PostgreSQL connections,
    /// keystore plugins, the log — and at most [`Self::MAX_DERIVED_CONNECTIONS`].
    pub fn max_connections_for(nofile: u64) -> usize {
        let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
        let reserve = (nofile / 4).max(256).min(nofile / 2);
        (nofile - reserve).clamp(1, Self::MAX_DERIVED_CONNECTIONS)
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: Self::FALLBACK_MAX_CONNECTIONS,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            unauthenticated_body_bytes: Self::DEFAULT_UNAUTHENTICATED_BODY_BYTES,
        }
    }
}

/// The open connections of a process, and its budget of unauthenticated body bytes.
pub struct Connections {
    limits: ConnectionLimits,
    /// One permit per byte of unauthenticated body a reader may hold.
    budget: Arc<Semaphore>,
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    /// Woken when a connection's slot is freed (its last handle dropped).
    freed: Notify,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("limits", &self.limits)
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

/// Every open connection's state, under one lock: transitions are a few per request
/// and short, and one lock keeps the eviction order exact.
#[derive(Default)]
struct Registry {
    /// Every connection holding a slot, the evicted ones still closing included.
    open: HashMap<u64, Entry>,
    /// The evictable connections, by their last activity (oldest first).
    evictable: BTreeSet<(Instant, u64)>,
    /// How many of `open` were evicted and have not closed yet.
    closing: usize,
}

struct Entry {
    /// Requests started and not yet answered in full.
    in_flight: u32,
    /// Of those, the ones whose caller was authenticated.
    proven: u32,
    /// The key of this connection in `Registry::evictable`, when it is there.
    evictable_since: Option<Instant>,
    /// When the connection last had no request in flight (its accept, at first).
    idle_since: Instant,
    /// When the head being waited for began: the accept, or the first byte after
    /// an idle spell. `None` while idle and silent.
    head_since: Option<Instant>,
    /// Chosen to make room: closing, its slot promised to a new connection.
    evicted: bool,
    signal: Arc<Signal>,
}

impl Entry {
    fn is_evictable(&self) -> bool {
        self.proven == 0 && !self.evicted
    }
}

/// What the listener's task for one connection waits on.
#[derive(Default)]
struct Signal {
    /// Woken when the deadline may have changed, or the connection was evicted.
    changed: Notify,
    evicted: AtomicBool,
    /// Set while idle and silent, so that [`Connection::bytes_arrived`] takes the
    /// lock only for the first bytes of a request, not for every read.
    awaiting_bytes: AtomicBool,
}

impl Registry {
    /// Puts the entry `id` into, or takes it out of, the eviction order as its
    /// counts now say; an evictable one goes to the back, as the most recently
    /// active.
    fn reorder(&mut self, id: u64, now: Instant) {
        let Some(entry) = self.open.get_mut(&id) else {
            return;
        };
        if let Some(since) = entry.evictable_since.take() {
            self.evictable.remove(&(since, id));
        }
        if entry.is_evictable() {
            entry.evictable_since = Some(now);
            self.evictable.insert((now, id));
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(entry) = self.open.remove(&id) else {
            return;
        };
        if let Some(since) = entry.evictable_since {
            self.evictable.remove(&(since, id));
        }
        if entry.evicted {
            self.closing -= 1;
        }
    }

    /// Evicts the least recently active evictable connection, if there is one.
    fn evict_one(&mut self) -> bool {
        let Some((since, victim)) = self.evictable.pop_first() else {
            return false;
        };
        let entry = self
            .open
            .get_mut(&victim)
            .expect("an evictable connection is open");
        debug_assert_eq!(entry.evictable_since, Some(since));
        entry.evictable_since = None;
        entry.evicted = true;
        self.closing += 1;
        entry.signal.evicted.store(true, Ordering::Release);
        entry.signal.changed.notify_one();
        true
    }
}

/// Whether a new connection may be served.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; the handle keeps its slot until the last clone is dropped.
    Admitted(Connection),
    /// Every slot serves an authenticated request (or the evicted connection did
    /// not close in time): answer or close it at once.
    Refused,
}

impl Connections {
    /// The connections of a process bounded by `limits`.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            budget: Arc::new(Semaphore::new(limits.unauthenticated_body_bytes)),
            limits,
            registry: Mutex::new(Registry::default()),
            next_id: AtomicU64::new(0),
            freed: Notify::new(),
        })
    }

    /// The bounds in force.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// The budget of unauthenticated body bytes (one permit per byte).
    pub(crate) fn budget(&self) -> &Arc<Semaphore> {
        &self.budget
    }

    /// The connections of requests that came through no listener (a door's own
    /// tests drive its router directly): default bounds, shared by all of them, so a
    /// body is bounded the same way there.
    pub(crate) fn unlistened() -> &'static Arc<Connections> {
        static DEFAULT: OnceLock<Arc<Connections>> = OnceLock::new();
        DEFAULT.get_or_init(|| Connections::new(ConnectionLimits::default()))
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // The registry holds counts only; a panic elsewhere while it was locked
        // cannot leave it worse than slightly off, so keep serving.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long a new connection waits for an evicted one to close before it is
    /// refused: closing is a wake-up of the evicted connection's task, so this is a
    /// bound for a server too busy to run it, not a delay anyone sees.
    const EVICTION_WAIT: Duration = Duration::from_secs(1);

    /// Admits a connection just accepted. At the cap it evicts the least recently
    /// active evictable connection and waits until that one has closed (so
    /// descriptors never exceed the cap); it refuses the new one when no connection
    /// is evictable, or when the evicted one does not close within a second.
    pub async fn admit(self: &Arc<Self>) -> Admission {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            {
                let mut registry = self.lock();
                if registry.open.len() < self.limits.max_connections {
                    return Admission::Admitted(self.insert(&mut registry));
                }
                if !registry.evict_one() && registry.closing == 0 {
                    return Admission::Refused;
                }
                // Registered under the lock, so the close cannot be missed.
                freed.as_mut().enable();
            }
            if tokio::time::timeout(Self::EVICTION_WAIT, freed)
                .await
                .is_err()
            {
                return Admission::Refused;
            }
        }
    }

    fn insert(self: &Arc<Self>, registry: &mut Registry) -> Connection {
        let now = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(Signal::default());
        registry.open.insert(
            id,
            Entry {
                in_flight: 0,
                proven: 0,
                evictable_since: None,
                idle_since: now,
                head_since: Some(now),
                evicted: false,
                signal: Arc::clone(&signal),
            },
        );
        registry.reorder(id, now);
        Connection(Arc::new(Inner {
            id,
            connections: Arc::clone(self),
            signal,
        }))
    }
}

/// One open connection, as its listener task, its requests and the body reader see
/// it. Clones share the slot, which is freed when the last one is dropped — after
/// the listener has closed the socket.
#[derive(Clone)]
pub struct Connection(Arc<Inner>);

struct Inner {
    id: u64,
    connections: Arc<Connections>,
    signal: Arc<Signal>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.connections.lock().remove(self.id);
        self.connections.freed.notify_waiters();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.0.id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The process's connections this one belongs to.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.0.connections
    }

    /// Runs `change` on this connection's entry (if it was not evicted), re-sorts
    /// it for eviction and wakes its listener task.
    ///
    /// `change` says whether the deadline may have come *earlier*: only then is the
    /// task woken. A deadline that moved later (or went away) needs no wake-up: the
    /// task wakes at the old one, reads the new one and sleeps again. This keeps
    /// the ordinary request (start, authenticated, answered) at one wake-up.
    fn update(&self, change: impl FnOnce(&mut Entry, Instant) -> bool) {
        let now = Instant::now();
        let mut registry = self.0.connections.lock();
        let Some(entry) = registry.open.get_mut(&self.0.id) else {
            return;
        };
        let earlier = change(entry, now);
        registry.reorder(self.0.id, now);
        drop(registry);
        if earlier {
            self.0.signal.changed.notify_one();
        }
    }

    /// A request on this connection began (its head was read): the connection has
    /// no deadline of its own until the request is answered in full, which is when
    /// the last clone of the [`InFlight`] is dropped (the listener keeps one in the
    /// response body, the request one in its extensions).
    pub fn request_started(&self) -> InFlight {
        self.update(|entry, _| {
            entry.in_flight += 1;
            entry.head_since = None;
            entry.signal.awaiting_bytes.store(false, Ordering::Release);
            false // busy: no deadline
        });
        InFlight(Arc::new(Request {
            connection: self.clone(),
            proven: AtomicBool::new(false),
        }))
    }

    /// The listener read bytes from the client. Only the first bytes after an idle
    /// spell matter: they start the head's timeout.
    pub fn bytes_arrived(&self) {
        if !self.0.signal.awaiting_bytes.swap(false, Ordering::AcqRel) {
            return;
        }
        self.update(|entry, now| {
            let starts_head = entry.in_flight == 0 && entry.head_since.is_none();
            if starts_head {
                entry.head_since = Some(now);
            }
            starts_head
        });
    }

    /// When the listener must close this connection if nothing changes before: the
    /// head's deadline while a head is awaited, the idle deadline while idle and
    /// silent, none while a request is in flight (the request's own bounds apply).
    pub fn deadline(&self) -> Option<Instant> {
        let limits = &self.0.connections.limits;
        let registry = self.0.connections.lock();
        let entry = registry.open.get(&self.0.id)?;
        if entry.in_flight > 0 {
            return None;
        }
        Some(match entry.head_since {
            Some(since) => since + limits.header_read_timeout,
            None => entry.idle_since + limits.idle_timeout,
        })
    }

    /// Whether this connection was closed to make room for a new one: its listener
    /// task drops it at once.
    pub fn is_evicted(&self) -> bool {
        self.0.signal.evicted.load(Ordering::Acquire)
    }

    /// Resolves when [`Connection::deadline`] may have come earlier (or gone from
    /// none to some) or the connection was evicted; a deadline that only moved later
    /// is found when the old one passes. A change made while nobody waits is kept
    /// for the next wait.
    pub async fn changed(&self) {
        self.0.signal.changed.notified().await;
    }
}

/// A request in flight on a listener's connection (see
/// [`Connection::request_started`]), found in the request's extensions. Clones
/// share it; the request is over when the last is dropped.
#[derive(Clone, Debug)]
pub struct InFlight(Arc<Request>);

#[derive(Debug)]
struct Request {
    connection: Connection,
    proven: AtomicBool,
}

impl InFlight {
    /// The caller of this request is authenticated: until the request is answered
    /// in full, its connection is not evicted to make room for another.
    pub fn authenticated(&self) {
        if !self.0.proven.swap(true, Ordering::AcqRel) {
            self.0.connection.update(|entry, _| {
                entry.proven += 1;
                false
            });
        }
    }

    /// The connection the request came on.
    pub fn connection(&self) -> &Connection {
        &self.0.connection
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let proven = *self.proven.get_mut();
        self.connection.update(|entry, now| {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if proven {
                entry.proven = entry.proven.saturating_sub(1);
            }
            let idle = entry.in_flight == 0;
            if idle {
                entry.idle_since = now;
                entry.head_since = None;
                entry.signal.awaiting_bytes.store(true, Ordering::Release);
            }
            idle // from no deadline to the idle one
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        }
    }

    async fn admitted(connections: &Arc<Connections>) -> Connection {
        match connections.admit().await {
            Admission::Admitted(c) => c,
            Admission::Refused => panic!("refused"),
        }
    }

    /// Waits (at most 100 ms) until `c` is told it was evicted; earlier changes may
    /// have left wake-ups stored.
    async fn told_evicted(c: &Connection) {
        tokio::time::timeout(Duration::from_millis(100), async {
            while !c.is_evicted() {
                c.changed().await;
            }
        })
        .await
        .expect("the evicted connection is told");
    }

    /// Admits a connection at the cap: `victim` must be evicted, and the new one
    /// is admitted once the victim's listener has dropped it.
    async fn admitted_in_place_of(
        connections: &Arc<Connections>,
        victim: Connection,
    ) -> Connection {
        let admitting = tokio::spawn({
            let connections = Arc::clone(connections);
            async move { admitted(&connections).await }
        });
        told_evicted(&victim).await;
        assert!(
            !admitting.is_finished(),
            "admitted before the victim closed"
        );
        drop(victim);
        admitting.await.unwrap()
    }

    #[test]
    fn the_derived_cap_leaves_descriptors_for_the_rest_of_the_server() {
        let cap = ConnectionLimits::max_connections_for;
        assert_eq!(cap(1024), 768);
        assert_eq!(cap(20_000), 15_000);
        assert_eq!(cap(256), 128);
        assert_eq!(cap(1), 1);
        assert_eq!(cap(1 << 20), ConnectionLimits::MAX_DERIVED_CONNECTIONS);
        assert_eq!(cap(u64::MAX), ConnectionLimits::MAX_DERIVED_CONNECTIONS);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_least_recently_active_connection_makes_room() {
        let connections = Connections::new(limits(2));
        let first = admitted(&connections).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        let second = admitted(&connections).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        // Activity on the first makes the second the least recently active.
        drop(first.request_started());
        tokio::time::advance(Duration::from_millis(1)).await;
        // Only once the evicted one has closed does the new one take its slot.
        let third = admitted_in_place_of(&connections, second).await;
        assert!(!first.is_evicted() && !third.is_evicted());
        assert_eq!(connections.open(), 2);
        drop(third);
        assert_eq!(connections.open(), 1);
        drop(first);
        assert_eq!(connections.open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_evicted_connection_that_does_not_close_costs_the_newcomer_its_place() {
        let connections = Connections::new(limits(1));
        let stuck = admitted(&connections).await;
        assert!(matches!(connections.admit().await, Admission::Refused));
        assert!(stuck.is_evicted());
        // Still closing: the next one waits again, then is refused again.
        assert!(matches!(connections.admit().await, Admission::Refused));
        drop(stuck);
        assert!(matches!(connections.admit().await, Admission::Admitted(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_serving_an_authenticated_request_is_never_evicted() {
        let connections = Connections::new(limits(2));
        let busy = admitted(&connections).await;
        let request = busy.request_started();
        request.authenticated();
        tokio::time::advance(Duration::from_millis(1)).await;
        let idle = admitted(&connections).await;
        let newcomer = admitted_in_place_of(&connections, idle).await;
        assert!(!busy.is_evicted());
        // Now both slots serve authenticated requests: the next one is refused.
        let other = newcomer.request_started();
        other.authenticated();
        assert!(matches!(connections.admit().await, Admission::Refused));
        // Answered in full (every clone dropped), the connection may go again.
        let clone = request.clone();
        drop(request);
        assert!(matches!(connections.admit().await, Admission::Refused));
        drop(clone);
        admitted_in_place_of(&connections, busy).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_not_yet_authenticated_may_be_evicted() {
        let connections = Connections::new(limits(1));
        let slow = admitted(&connections).await;
        let request = slow.request_started();
        let admitting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { admitted(&connections).await }
        });
        told_evicted(&slow).await;
        // Marks on an evicted connection change nothing.
        request.authenticated();
        drop((request, slow));
        let newcomer = admitting.await.unwrap();
        assert!(!newcomer.is_evicted());
        assert_eq!(connections.open(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_phase_of_the_connection() {
        let connections = Connections::new(limits(8));
        let start = Instant::now();
        let c = admitted(&connections).await;
        // New: the first head is due within the header timeout.
        assert_eq!(c.deadline(), Some(start + Duration::from_secs(10)));
        // Serving: no connection deadline.
        let request = c.request_started();
        assert_eq!(c.deadline(), None);
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(request);
        // Idle and silent: the idle timeout, from the end of the response.
        let idle = Instant::now();
        assert_eq!(c.deadline(), Some(idle + Duration::from_secs(60)));
        // The first byte of the next request starts its head's timeout; later bytes
        // do not move it.
        tokio::time::advance(Duration::from_secs(30)).await;
        c.bytes_arrived();
        let head = Instant::now();
        assert_eq!(c.deadline(), Some(head + Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(5)).await;
        c.bytes_arrived();
        assert_eq!(c.deadline(), Some(head + Duration::from_secs(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn changes_wake_the_listener_task() {
        let connections = Connections::new(limits(1));
        let c = admitted(&connections).await;
        drop(c.request_started());
        // The wake-up was stored: this returns at once.
        tokio::time::timeout(Duration::from_millis(1), c.changed())
            .await
            .unwrap();
        let _evictor = admitted_in_place_of(&connections, c).await;
    }
}
