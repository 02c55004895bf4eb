//! Mapping sqlx errors onto [`StoreError`], and telling connection failures (worth a
//! retry on another connection) from everything else.

use kcm_core::model::AuditRecord;
use kcm_core::store::{StoreError, Write};
use kcm_store_rows::audit;

/// An error inside the store: from PostgreSQL (still to be classified) or already a
/// [`StoreError`] (a row that does not decode, a value that cannot be stored).
#[derive(Debug)]
pub(crate) enum DbError {
    /// From sqlx.
    Sql(sqlx::Error),
    /// Already classified.
    Store(StoreError),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        DbError::Sql(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Store(e)
    }
}

impl DbError {
    /// True when the connection failed (not the statement): another attempt on
    /// another connection may succeed.
    pub(crate) fn is_connection_failure(&self) -> bool {
        matches!(self, DbError::Sql(e) if is_connection_failure(e))
    }

    /// The [`StoreError`] to report.
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            DbError::Sql(e) => from_sqlx(e),
            DbError::Store(e) => e,
        }
    }
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// True for failures of the connection rather than of the statement: I/O, TLS and
/// protocol errors, a crashed connection worker, and the server's own "connection
/// exception" (class 08) and shutdown (57P01–57P03) errors.
///
/// Not included: the pool's acquire timeout, which already waited (retrying the
/// connection with backoff) for as long as the operator allowed.
pub(crate) fn is_connection_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => sqlstate(e).is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// True when the server aborted a transaction it would not serialise (a deadlock
/// or a serialisation failure): nothing was written, and running it again is safe.
pub(crate) fn is_transaction_rollback(e: &sqlx::Error) -> bool {
    sqlstate(e).is_some_and(|code| matches!(code.as_str(), "40001" | "40P01"))
}

/// Maps an error from a read or a transaction statement.
pub(crate) fn from_sqlx(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match &e {
        E::PoolTimedOut => StoreError::Unavailable(
            "no PostgreSQL connection could be had within the acquire timeout \
             (is the database up and reachable?)"
                .into(),
        ),
        E::PoolClosed => StoreError::Unavailable("the store has been closed".into()),
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        // disk_full: the database server's disk; retrying helps only once it has room.
        E::Database(_) if sqlstate(&e).as_deref() == Some("53100") => {
            StoreError::Full(e.to_string())
        }
        E::Database(_) if sqlstate(&e).is_some_and(|c| c.starts_with("XX")) => {
            StoreError::Corrupt(e.to_string())
        }
        // Class 22 (data exception) and 23 (integrity constraint violation; unique
        // violations are told apart by the write path first): the same statement
        // fails the same way every time, so the store is not "unavailable".
        E::Encode(_) => StoreError::Unencodable(e.to_string()),
        E::Database(_)
            if sqlstate(&e).is_some_and(|c| c.starts_with("22") || c.starts_with("23")) =>
        {
            StoreError::Unencodable(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// True for a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_uniqueness_violation(e: &sqlx::Error) -> bool {
    sqlstate(e).as_deref() == Some("23505")
}

/// Maps an error from applying `write`; uniqueness violations become a
/// [`StoreError::Conflict`] naming what was taken (the same words as the SQLite store).
pub(crate) fn from_write(write: &Write, e: DbError) -> StoreError {
    let e = match e {
        DbError::Sql(e) if is_uniqueness_violation(&e) => e,
        other => return other.into_store(),
    };
    let constraint = match &e {
        sqlx::Error::Database(d) => d.constraint().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let message = write.conflict_message(constraint.contains("account_id"), &e.to_string());
    StoreError::Conflict(message)
}

/// Maps an error from inserting the linked audit record `record`; a taken
/// `(chain, seq)` becomes a [`StoreError::Conflict`] naming them (the same words
/// as the SQLite store).
pub(crate) fn from_audit_insert(record: &AuditRecord, e: DbError) -> StoreError {
    match e {
        DbError::Sql(e) if is_uniqueness_violation(&e) => {
            StoreError::Conflict(audit::conflict_message(record))
        }
        other => other.into_store(),
    }
}
