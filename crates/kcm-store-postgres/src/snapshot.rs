//! Whole-store snapshots and restores, generic over the tables: they are listed from
//! the catalog (the tables of the current schema), so a table added by a later
//! migration is carried without a change here.
//!
//! Left out: the migration bookkeeping (`schema_migrations`), which belongs to the
//! schema, not to the data; the schema version travels as
//! [`Snapshot::schema_version`] instead.
//!
//! **Portability.** A snapshot is the same as the SQLite store's for the same data:
//! tables by name (bytewise), columns in declaration order, rows by primary key
//! (text compared bytewise), integers as [`Value::Integer`] (a BOOLEAN as 0 or 1,
//! which is how SQLite stores one), text as [`Value::Text`], BYTEA as
//! [`Value::Blob`]. Restoring converts back by the target column's type, and refuses
//! a value the column cannot hold.

use std::collections::BTreeMap;

use kcm_core::store::{Snapshot, StoreError, TableDump, Value};
use kcm_store_rows::schema::MIGRATIONS_TABLE;
use kcm_store_rows::snapshot::{
    check_empty, check_schema_version, insert_head, quote, quote_all, restore_plan,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::codec::Q;
use crate::error::{sqlstate, DbError};
use crate::migrations;

/// The kinds of column a snapshot carries, from PostgreSQL's type name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int8,
    Int4,
    Int2,
    Bool,
    Text,
    Bytes,
}

impl Kind {
    fn of(type_name: &str) -> Option<Self> {
        Some(match type_name {
            "int8" => Kind::Int8,
            "int4" => Kind::Int4,
            "int2" => Kind::Int2,
            "bool" => Kind::Bool,
            "text" | "varchar" | "bpchar" => Kind::Text,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }
}

/// One column of a data table.
struct Column {
    name: String,
    type_name: String,
}

impl AsRef<str> for Column {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// The relation of `$1` in the current schema (as a `regclass` expression).
const RELATION: &str = "(quote_ident(current_schema()) || '.' || quote_ident($1))::regclass";

/// The data tables of the current schema, by name (bytewise).
async fn tables(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(
        "SELECT c.relname::text FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> $1",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(conn)
    .await?;
    let mut names = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    Ok(names)
}

/// A table's columns in declaration order, and its primary-key columns in key order.
async fn columns(
    conn: &mut PgConnection,
    table: &str,
) -> Result<(Vec<Column>, Vec<String>), DbError> {
    let sql = format!(
        "SELECT a.attname::text, t.typname::text
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = {RELATION} AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum"
    );
    let rows = sqlx::query(&sql).bind(table).fetch_all(&mut *conn).await?;
    let columns = rows
        .iter()
        .map(|r| {
            Ok(Column {
                name: r.try_get(0)?,
                type_name: r.try_get(1)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let sql = format!(
        "SELECT a.attname::text FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = {RELATION} AND i.indisprimary
         ORDER BY array_position(i.indkey::int2[], a.attnum)"
    );
    let rows = sqlx::query(&sql).bind(table).fetch_all(&mut *conn).await?;
    let key = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((columns, key))
}

fn kind(table: &str, column: &Column) -> Result<Kind, StoreError> {
    Kind::of(&column.type_name).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "{table}.{} has type {}, which snapshots do not carry",
            column.name, column.type_name
        ))
    })
}

fn cell(row: &PgRow, i: usize, kind: Kind, table: &str, column: &str) -> Result<Value, DbError> {
    let value = match kind {
        Kind::Int8 => integer::<i64>(row, i),
        Kind::Int4 => integer::<i32>(row, i),
        Kind::Int2 => integer::<i16>(row, i),
        Kind::Bool => integer::<bool>(row, i),
        Kind::Text => row.try_get(i).map(|v: Option<String>| v.map(Value::Text)),
        Kind::Bytes => row.try_get(i).map(|v: Option<Vec<u8>>| v.map(Value::Blob)),
    }
    .map_err(|e| StoreError::Corrupt(format!("{table}.{column}: {e}")))?;
    Ok(value.unwrap_or(Value::Null))
}

/// Column `i` of `row`, of any integer type or BOOLEAN, as a [`Value::Integer`]
/// (a boolean as 0 or 1, which is how SQLite stores one).
fn integer<'r, T>(row: &'r PgRow, i: usize) -> Result<Option<Value>, sqlx::Error>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Into<i64>,
{
    Ok(row
        .try_get::<Option<T>, _>(i)?
        .map(|v| Value::Integer(v.into())))
}

/// Every row of `table`, ordered by its primary key (or by every column if it has
/// none), text compared bytewise as SQLite does.
async fn dump(conn: &mut PgConnection, table: &str) -> Result<TableDump, DbError> {
    let (columns, key) = columns(conn, table).await?;
    let kinds = columns
        .iter()
        .map(|c| kind(table, c))
        .collect::<Result<Vec<_>, _>>()?;
    let order: Vec<String> = if key.is_empty() {
        columns.iter().map(|c| c.name.clone()).collect()
    } else {
        key
    };
    let order = order
        .iter()
        .map(|name| {
            let text = columns
                .iter()
                .zip(&kinds)
                .any(|(c, k)| c.name == *name && *k == Kind::Text);
            if text {
                format!("{} COLLATE \"C\"", quote(name))
            } else {
                quote(name)
            }
        })
        .collect::<Vec<_>>();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        quote_all(&columns),
        quote(table),
        order.join(", ")
    );
    let rows = sqlx::query(&sql).persistent(false).fetch_all(conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cells = Vec::with_capacity(columns.len());
        for (i, (column, kind)) in columns.iter().zip(&kinds).enumerate() {
            cells.push(cell(row, i, *kind, table, &column.name)?);
        }
        out.push(cells);
    }
    Ok(TableDump {
        name: table.to_owned(),
        columns: columns.into_iter().map(|c| c.name).collect(),
        rows: out,
    })
}

/// Reads the whole store inside one `REPEATABLE READ, READ ONLY` transaction: a
/// consistent view as of its first read, while other connections go on writing.
pub(crate) async fn snapshot(pool: &PgPool) -> Result<Snapshot, DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let schema_version = migrations::current_version(&mut tx).await?;
    let mut dumps = Vec::new();
    for table in tables(&mut tx).await? {
        dumps.push(dump(&mut tx, &table).await?);
    }
    tx.commit().await?;
    Ok(Snapshot {
        schema_version,
        tables: dumps,
    })
}

fn refused(message: String) -> DbError {
    DbError::Store(StoreError::Refused(message))
}

/// Binds `value` as the type of a column of `kind`; `None` if the column cannot hold it.
fn bind<'q>(q: Q<'q>, kind: Kind, value: &Value) -> Option<Q<'q>> {
    Some(match (kind, value) {
        (Kind::Int8, Value::Null) => q.bind(None::<i64>),
        (Kind::Int4, Value::Null) => q.bind(None::<i32>),
        (Kind::Int2, Value::Null) => q.bind(None::<i16>),
        (Kind::Bool, Value::Null) => q.bind(None::<bool>),
        (Kind::Text, Value::Null) => q.bind(None::<String>),
        (Kind::Bytes, Value::Null) => q.bind(None::<Vec<u8>>),
        (Kind::Int8, Value::Integer(i)) => q.bind(*i),
        (Kind::Int4, Value::Integer(i)) => q.bind(i32::try_from(*i).ok()?),
        (Kind::Int2, Value::Integer(i)) => q.bind(i16::try_from(*i).ok()?),
        (Kind::Bool, Value::Integer(0)) => q.bind(false),
        (Kind::Bool, Value::Integer(1)) => q.bind(true),
        (Kind::Text, Value::Text(s)) => q.bind(s.clone()),
        (Kind::Bytes, Value::Blob(b)) => q.bind(b.clone()),
        _ => return None,
    })
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

/// Rows per INSERT statement: PostgreSQL takes at most 65535 parameters.
fn rows_per_statement(columns: usize) -> usize {
    (60_000 / columns.max(1)).clamp(1, 1000)
}

/// Writes `snapshot` into an empty store in one transaction, holding the migration
/// lock and an EXCLUSIVE lock on every table (reads go on; writes wait), so nothing
/// can slip in between the checks and the inserts.
pub(crate) async fn restore(pool: &PgPool, snapshot: &Snapshot) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    migrations::lock_schema(&mut tx).await?;
    let names = tables(&mut tx).await?;
    if !names.is_empty() {
        let lock = format!("LOCK TABLE {} IN EXCLUSIVE MODE", quote_all(&names));
        sqlx::query(&lock)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
    }
    let upgrade = check_schema_version(snapshot, migrations::current_version(&mut tx).await?)?;
    let mut store = BTreeMap::new();
    for table in names {
        let count = format!("SELECT COUNT(*) FROM {}", quote(&table));
        let rows: i64 = sqlx::query(&count)
            .persistent(false)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        check_empty(&table, rows)?;
        let (columns, _) = columns(&mut tx, &table).await?;
        store.insert(table, columns);
    }
    for (dump, columns) in restore_plan(snapshot, upgrade.as_of_snapshot(store))? {
        if dump.rows.is_empty() {
            continue;
        }
        // The kind of each snapshot column, in the snapshot's column order.
        let kinds = dump
            .columns
            .iter()
            .map(|name| {
                let column = columns.iter().find(|c| c.name == *name).expect("checked");
                kind(&dump.name, column)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let head = insert_head(dump);
        let width = dump.columns.len();
        let per_statement = rows_per_statement(width);
        for (chunk_index, chunk) in dump.rows.chunks(per_statement).enumerate() {
            let first = chunk_index * per_statement;
            let mut sql = head.clone();
            let mut n = 0;
            for r in 0..chunk.len() {
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..width {
                    n += 1;
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${n}"));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(&sql).persistent(false);
            for (r, row) in chunk.iter().enumerate() {
                for (c, value) in row.iter().enumerate() {
                    q = bind(q, kinds[c], value).ok_or_else(|| {
                        refused(format!(
                            "row {} of table {}: column {} cannot hold {}",
                            first + r,
                            dump.name,
                            dump.columns[c],
                            describe(value)
                        ))
                    })?;
                }
            }
            q.execute(&mut *tx).await.map_err(|e| {
                // Class 23: a constraint (a duplicate key, NOT NULL…); class 22: a
                // value PostgreSQL cannot store (text with a NUL character…).
                match sqlstate(&e) {
                    Some(code) if code.starts_with("23") || code.starts_with("22") => {
                        refused(format!(
                            "rows {}..{} of table {} break a rule of the table: {e}",
                            first,
                            first + chunk.len(),
                            dump.name
                        ))
                    }
                    _ => DbError::Sql(e),
                }
            })?;
        }
    }
    // On any error above `tx` is dropped, which rolls back: nothing is written.
    tx.commit().await?;
    Ok(())
}
