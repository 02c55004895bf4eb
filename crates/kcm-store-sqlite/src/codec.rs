//! rusqlite's side of [`kcm_store_rows`]: reading a row through
//! [`kcm_store_rows::Row`] and binding a [`Param`]. What a record's columns are,
//! and their stored forms, is `kcm_store_rows`'s.

use kcm_store_rows::{CellError, Param};
use rusqlite::types::{FromSql, ToSqlOutput, ValueRef};
use rusqlite::ToSql;

/// A rusqlite row as a [`kcm_store_rows::Row`] (a wrapper: the orphan rule keeps
/// the trait off `rusqlite::Row` itself).
pub(crate) struct SqliteRow<'a, 'stmt>(pub(crate) &'a rusqlite::Row<'stmt>);

impl SqliteRow<'_, '_> {
    fn get<T: FromSql>(&self, idx: usize) -> Result<Option<T>, CellError> {
        self.0.get(idx).map_err(CellError::new)
    }
}

impl kcm_store_rows::Row for SqliteRow<'_, '_> {
    fn text(&self, idx: usize) -> Result<Option<String>, CellError> {
        self.get(idx)
    }

    fn integer(&self, idx: usize) -> Result<Option<i64>, CellError> {
        self.get(idx)
    }

    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>, CellError> {
        self.get(idx)
    }

    /// SQLite has no boolean type: kcm stores 0 or 1, and rusqlite reads any
    /// non-zero integer as true.
    fn boolean(&self, idx: usize) -> Result<Option<bool>, CellError> {
        self.get(idx)
    }
}

/// A [`Param`] as a rusqlite parameter (text and blobs bound without a copy).
pub(crate) struct Bind<'p, 'a>(pub(crate) &'p Param<'a>);

impl ToSql for Bind<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Param::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Param::Integer(Some(i)) => ValueRef::Integer(*i),
            Param::Blob(Some(b)) => ValueRef::Blob(b),
            Param::Boolean(Some(b)) => ValueRef::Integer(i64::from(*b)),
            Param::Text(None) | Param::Integer(None) | Param::Blob(None) | Param::Boolean(None) => {
                ValueRef::Null
            }
        }))
    }
}

/// Binds `params` in order, as a statement's parameters `?1`, `?2`, ….
pub(crate) fn bind_all<'p, 'a>(params: &'p [Param<'a>]) -> impl rusqlite::Params + use<'p, 'a> {
    rusqlite::params_from_iter(params.iter().map(Bind))
}
