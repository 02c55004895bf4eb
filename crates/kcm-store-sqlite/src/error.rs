//! Mapping SQLite errors onto [`StoreError`].

use kcm_core::model::AuditRecord;
use kcm_core::store::{StoreError, Write};
use kcm_store_rows::audit;
use rusqlite::ffi;
use rusqlite::ErrorCode;

/// Maps an error from a read or a transaction statement.
pub(crate) fn from_sqlite(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            StoreError::Corrupt(e.to_string())
        }
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
        // A value that cannot be bound, or one SQLite refuses every time (too big,
        // a CHECK or NOT NULL constraint): retrying would fail the same way.
        E::ToSqlConversionFailure(..) => StoreError::Unencodable(e.to_string()),
        E::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => StoreError::Full(format!(
            "the disk holding the SQLite database is full ({e})"
        )),
        E::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::TooBig | ErrorCode::ConstraintViolation) =>
        {
            StoreError::Unencodable(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// True for a UNIQUE or PRIMARY KEY violation.
fn is_uniqueness_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Maps an error from applying `write`; uniqueness violations become a
/// [`StoreError::Conflict`] naming what was taken.
pub(crate) fn from_write(write: &Write, e: rusqlite::Error) -> StoreError {
    if let (Write::ReplaceMeta { key, .. }, rusqlite::Error::StatementChangedRows(_)) = (write, &e)
    {
        return StoreError::Conflict(format!("setting {key} no longer holds the expected value"));
    }
    if !is_uniqueness_violation(&e) {
        return from_sqlite(e);
    }
    let detail = e.to_string();
    let message = write.conflict_message(detail.contains("tenants.account_id"), &detail);
    StoreError::Conflict(message)
}

/// Maps an error from inserting the linked audit record `record`; a taken
/// `(chain, seq)` becomes a [`StoreError::Conflict`] naming them, in the words
/// both stores use.
pub(crate) fn from_audit_insert(record: &AuditRecord, e: rusqlite::Error) -> StoreError {
    if is_uniqueness_violation(&e) {
        StoreError::Conflict(audit::conflict_message(record))
    } else {
        from_sqlite(e)
    }
}

/// A join failure of a blocking task (it panicked or was cancelled).
pub(crate) fn from_join(e: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("store task failed: {e}"))
}
