//! Opening the database file and its connections with kcm's pragmas.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kcm_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::from_sqlite;

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements each connection keeps (every write, every read and each shape
/// of the audit query fit, so hot statements are never re-prepared).
const STATEMENT_CACHE: usize = 128;

/// Read connections kept open; WAL lets them run alongside the writer.
pub(crate) const READERS: usize = 4;

/// Creates the database file with mode 0600 if missing, and forces 0600 if it exists.
///
/// SQLite gives its `-wal` and `-shm` files the mode of the database file, so they
/// are private too.
pub(crate) fn prepare_file(path: &Path) -> StoreResult<()> {
    let cannot = |e: std::io::Error| {
        StoreError::Unavailable(format!("cannot create database {}: {e}", path.display()))
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path).map_err(cannot)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(cannot)?;
    }
    #[cfg(not(unix))]
    options.open(path).map_err(cannot)?;
    Ok(())
}

fn open(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::Unavailable(format!("cannot open database {}: {e}", path.display()))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(from_sqlite)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // FULL: the WAL is fsynced at every commit, so an acknowledged commit survives
    // kill -9 and power loss.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(from_sqlite)?;
    Ok(conn)
}

/// Opens the single writer connection and switches the database to WAL mode.
pub(crate) fn open_writer(path: &Path) -> StoreResult<Connection> {
    let conn = open(path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(from_sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "cannot enable WAL journal mode on {} (got {mode})",
            path.display()
        )));
    }
    Ok(conn)
}

/// Opens a connection that refuses writes.
pub(crate) fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = open(path)?;
    conn.execute_batch("PRAGMA query_only = ON;")
        .map_err(from_sqlite)?;
    Ok(conn)
}

/// Locks a mutex, recovering from poisoning (a panic elsewhere must not wedge the store).
pub(crate) fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    let guard = m.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !guard.is_autocommit() {
        // A panic left a transaction open: undo it before anyone else uses the connection.
        let _ = guard.execute_batch("ROLLBACK");
    }
    guard
}

/// `BEGIN IMMEDIATE` on `conn`: takes the database's write lock at once rather than
/// at the first write, so whatever the transaction reads first (a chain's tail, the
/// schema version, whether the store is empty) cannot change before it commits.
/// Dropping the transaction rolls it back.
pub(crate) fn begin_immediate(conn: &mut Connection) -> StoreResult<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(from_sqlite)
}

/// A fixed set of read connections, handed out round-robin (preferring idle ones).
pub(crate) struct ReaderPool {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReaderPool {
    /// Opens [`READERS`] connections.
    pub(crate) fn open(path: &Path) -> StoreResult<Self> {
        let conns = (0..READERS)
            .map(|_| open_reader(path).map(Mutex::new))
            .collect::<StoreResult<_>>()?;
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// An idle connection if there is one, else waits for the next in turn.
    pub(crate) fn get(&self) -> MutexGuard<'_, Connection> {
        for conn in &self.conns {
            if let Ok(guard) = conn.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        lock(&self.conns[i])
    }
}
