//! sqlx's side of [`kcm_store_rows`]: reading a [`PgRow`] through
//! [`kcm_store_rows::Row`] and binding [`Param`]s, one by one or a column of many
//! rows as one array. What a record's columns are, and their stored forms (the
//! SQLite store's, so snapshots are portable), is `kcm_store_rows`'s.

use kcm_core::store::{StoreError, StoreResult};
use kcm_store_rows::{CellError, Param};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Decode, Postgres, Row, Type};

/// A query with its bound parameters.
pub(crate) type Q<'q> = Query<'q, Postgres, PgArguments>;

/// A PostgreSQL row as a [`kcm_store_rows::Row`] (a wrapper: the orphan rule keeps
/// the trait off `PgRow` itself).
pub(crate) struct PgCells<'r>(pub(crate) &'r PgRow);

impl<'r> PgCells<'r> {
    fn get<T>(&self, idx: usize) -> Result<Option<T>, CellError>
    where
        T: Decode<'r, Postgres> + Type<Postgres>,
    {
        self.0.try_get(idx).map_err(CellError::new)
    }
}

/// Integers are BIGINT, booleans BOOLEAN (see the migrations); another column type
/// fails to decode, which the decoders report as corrupt.
impl kcm_store_rows::Row for PgCells<'_> {
    fn text(&self, idx: usize) -> Result<Option<String>, CellError> {
        self.get(idx)
    }

    fn integer(&self, idx: usize) -> Result<Option<i64>, CellError> {
        self.get(idx)
    }

    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>, CellError> {
        self.get(idx)
    }

    fn boolean(&self, idx: usize) -> Result<Option<bool>, CellError> {
        self.get(idx)
    }
}

/// Binds `param` as the next parameter of `q`, typed as its column (a NULL too:
/// PostgreSQL types every parameter).
fn bind<'q>(q: Q<'q>, param: Param<'q>) -> Q<'q> {
    match param {
        Param::Text(s) => q.bind(s),
        Param::Integer(v) => q.bind(v),
        Param::Blob(b) => q.bind(b),
        Param::Boolean(v) => q.bind(v),
    }
}

/// The query `sql` with one row's parameters bound in order, as `$1`, `$2`, ….
pub(crate) fn query<'q, const N: usize>(sql: &'q str, params: [Param<'q>; N]) -> Q<'q> {
    params.into_iter().fold(sqlx::query(sql), bind)
}

/// Binds each column of `rows` as one array parameter (`$1::text[]`,
/// `$2::int8[]`, …), for a multi-row `INSERT … SELECT * FROM UNNEST(…)`.
///
/// Every row's parameters come from the same encoder, so a column holds one type;
/// a column that mixes them, or holds blobs or booleans (no table written this way
/// has one), is a fault of kcm and fails the write rather than storing it wrongly.
pub(crate) fn bind_columns<'q, const N: usize>(
    mut q: Q<'q>,
    rows: &'q [[Param<'q>; N]],
) -> StoreResult<Q<'q>> {
    for c in 0..N {
        let mixed = || {
            StoreError::Unencodable(format!(
                "column {c} of a batch is not all text or all integers"
            ))
        };
        q = match rows.first().map(|row| &row[c]) {
            Some(Param::Integer(_)) => {
                let values: Option<Vec<Option<i64>>> =
                    rows.iter().map(|r| r[c].as_integer()).collect();
                q.bind(values.ok_or_else(mixed)?)
            }
            _ => {
                let values: Option<Vec<Option<&str>>> =
                    rows.iter().map(|r| r[c].as_text()).collect();
                q.bind(values.ok_or_else(mixed)?)
            }
        };
    }
    Ok(q)
}
