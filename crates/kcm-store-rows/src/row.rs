//! The one thing a store implements to have its rows decoded: [`Row`].

use std::fmt;

/// One result row of a query, read by column index.
///
/// Each getter answers `Ok(None)` for SQL NULL and `Err` when the cell cannot be
/// read as asked (another type, text that is not UTF-8, an integer out of range,
/// no such column). Whether a NULL is allowed, and which field a column is, is
/// the decoders' business ([`crate::decode`]): a store only adapts its driver.
///
/// A store implements it on a wrapper of its driver's row (Rust's orphan rule
/// forbids implementing it on `rusqlite::Row` or `sqlx::postgres::PgRow`
/// directly); the decoders take `&dyn Row`, so they are compiled once, here.
pub trait Row {
    /// A text column.
    fn text(&self, idx: usize) -> Result<Option<String>, CellError>;
    /// A 64-bit integer column.
    fn integer(&self, idx: usize) -> Result<Option<i64>, CellError>;
    /// A byte-string column.
    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>, CellError>;
    /// A boolean column (a native BOOLEAN, or SQLite's integer 0 or 1).
    fn boolean(&self, idx: usize) -> Result<Option<bool>, CellError>;
}

/// Why a cell could not be read, in the driver's words; the decoders put the
/// field's name in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError(String);

impl CellError {
    /// Wraps the driver's error (only its message is kept: the decoders report a
    /// corrupt row as text, and the driver's error type must not leak through).
    pub fn new(cause: impl fmt::Display) -> Self {
        Self(cause.to_string())
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellError {}
