//! Whole-store snapshots and restores, generic over the tables: they are listed
//! from `sqlite_master`, so a table added by a later migration is carried without
//! a change here.
//!
//! Left out: SQLite's own tables (`sqlite_*`) and the migration bookkeeping
//! (`schema_migrations`), which belongs to the schema, not to the data; the
//! schema version travels as [`Snapshot::schema_version`] instead.

use std::collections::BTreeMap;

use kcm_core::store::{Snapshot, StoreError, StoreResult, TableDump, Value};
use kcm_store_rows::schema::MIGRATIONS_TABLE;
use kcm_store_rows::snapshot::{
    check_empty, check_schema_version, insert_head, quote, quote_all, restore_plan,
};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::error::from_sqlite;
use crate::{conn, migrations};

/// The data tables, by name.
fn tables(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master
             WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name != ?1
             ORDER BY name",
        )
        .map_err(from_sqlite)?;
    let names = stmt
        .query_map([MIGRATIONS_TABLE], |r| r.get::<_, String>(0))
        .map_err(from_sqlite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_sqlite)?;
    Ok(names)
}

/// A table's columns in declaration order, and its primary-key columns in key order.
fn columns(conn: &Connection, table: &str) -> StoreResult<(Vec<String>, Vec<String>)> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({})", quote(table)))
        .map_err(from_sqlite)?;
    let info = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(5)?)))
        .map_err(from_sqlite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_sqlite)?;
    let mut key: Vec<(i64, String)> = info
        .iter()
        .filter(|(_, pk)| *pk > 0)
        .map(|(name, pk)| (*pk, name.clone()))
        .collect();
    key.sort();
    let columns = info.into_iter().map(|(name, _)| name).collect();
    Ok((columns, key.into_iter().map(|(_, name)| name).collect()))
}

fn cell(value: ValueRef<'_>, table: &str, column: &str) -> StoreResult<Value> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Text(bytes) => Value::Text(
            std::str::from_utf8(bytes)
                .map_err(|_| {
                    StoreError::Corrupt(format!("{table}.{column} holds text that is not UTF-8"))
                })?
                .to_owned(),
        ),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
        ValueRef::Real(_) => {
            return Err(StoreError::Corrupt(format!(
                "{table}.{column} holds a floating-point value, which snapshots do not carry"
            )))
        }
    })
}

/// Every row of `table`, ordered by its primary key (or by every column if it has none).
fn dump(conn: &Connection, table: &str) -> StoreResult<TableDump> {
    let (columns, key) = columns(conn, table)?;
    let order = if key.is_empty() { &columns } else { &key };
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        quote_all(&columns),
        quote(table),
        quote_all(order)
    );
    let mut stmt = conn.prepare(&sql).map_err(from_sqlite)?;
    let mut rows = stmt.query([]).map_err(from_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(from_sqlite)? {
        let mut cells = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            cells.push(cell(row.get_ref(i).map_err(from_sqlite)?, table, column)?);
        }
        out.push(cells);
    }
    Ok(TableDump {
        name: table.to_owned(),
        columns,
        rows: out,
    })
}

/// Reads the whole store inside one read transaction (WAL: a consistent view of
/// the last commit before it started, while the writer goes on).
pub(crate) fn snapshot(conn: &Connection) -> StoreResult<Snapshot> {
    // Dropped without commit on error: a read transaction has nothing to undo.
    let tx = conn.unchecked_transaction().map_err(from_sqlite)?;
    let schema_version = migrations::current_version(&tx)?;
    let mut dumps = Vec::new();
    for table in tables(&tx)? {
        dumps.push(dump(&tx, &table)?);
    }
    tx.commit().map_err(from_sqlite)?;
    Ok(Snapshot {
        schema_version,
        tables: dumps,
    })
}

fn to_sql(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match value {
        Value::Null => V::Null,
        Value::Integer(i) => V::Integer(*i),
        Value::Text(s) => V::Text(s.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

/// Writes `snapshot` into an empty store in one `BEGIN IMMEDIATE` transaction.
pub(crate) fn restore(conn: &mut Connection, snapshot: &Snapshot) -> StoreResult<()> {
    let tx = conn::begin_immediate(conn)?;
    // Every check runs inside the write lock, so nothing can slip in between.
    let upgrade = check_schema_version(snapshot, migrations::current_version(&tx)?)?;
    let mut store = BTreeMap::new();
    for table in tables(&tx)? {
        let rows: i64 = tx
            .query_row(
                &format!("SELECT COUNT(*) FROM {}", quote(&table)),
                [],
                |r| r.get(0),
            )
            .map_err(from_sqlite)?;
        check_empty(&table, rows)?;
        let (columns, _) = columns(&tx, &table)?;
        store.insert(table, columns);
    }
    for (dump, _) in restore_plan(snapshot, upgrade.as_of_snapshot(store))? {
        if dump.rows.is_empty() {
            continue;
        }
        let sql = format!(
            "{}({})",
            insert_head(dump),
            vec!["?"; dump.columns.len()].join(", ")
        );
        let mut stmt = tx.prepare(&sql).map_err(from_sqlite)?;
        for (i, row) in dump.rows.iter().enumerate() {
            stmt.execute(rusqlite::params_from_iter(row.iter().map(to_sql)))
                .map_err(|e| match &e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::Refused(format!(
                            "row {i} of table {} breaks a rule of the table: {e}",
                            dump.name
                        ))
                    }
                    _ => from_sqlite(e),
                })?;
        }
    }
    // On any error above `tx` is dropped, which rolls back: nothing is written.
    tx.commit().map_err(from_sqlite)
}
