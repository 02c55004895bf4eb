//! What both stores check before a restore writes anything, and the SQL
//! identifiers both quote the same way.
//!
//! A store lists its data tables and their columns from its own catalog
//! (`sqlite_master`, `pg_catalog`), counts their rows and then asks
//! [`restore_plan`] whether the snapshot fits; only then does it insert, each in
//! its own dialect. Every refusal is [`StoreError::Refused`] with the same words
//! on both stores, so an operator restoring into either reads the same reason.

use std::collections::BTreeMap;

use kcm_core::store::{Snapshot, StoreError, StoreResult, TableDump};

/// Quotes an identifier for SQL (`"name"`, doubling inner quotes); the same rule
/// in SQLite and PostgreSQL.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Quotes each identifier and joins them with commas (a column list, a table list).
pub fn quote_all<S: AsRef<str>>(identifiers: &[S]) -> String {
    identifiers
        .iter()
        .map(|i| quote(i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn refused(message: String) -> StoreError {
    StoreError::Refused(message)
}

/// Refuses a snapshot of another schema version than the store's: its tables and
/// columns would not mean the same — unless every migration between the two only
/// added ([`ADDITIVE_MIGRATIONS`]): then the snapshot restores as if its store had
/// been migrated, the added columns NULL and the added tables empty ([`Upgrade`]).
pub fn check_schema_version(snapshot: &Snapshot, store_version: u32) -> StoreResult<Upgrade> {
    let from = snapshot.schema_version;
    if from == store_version {
        return Ok(Upgrade::default());
    }
    let refusal = |why: String| {
        refused(format!(
            "the snapshot has store schema version {from}, but this store has version \
             {store_version}{why}; restore it with the kcm release that made it"
        ))
    };
    if from > store_version {
        return Err(refusal(String::new()));
    }
    let mut upgrade = Upgrade::default();
    for version in from + 1..=store_version {
        let Some(additive) = ADDITIVE_MIGRATIONS.iter().find(|a| a.version == version) else {
            return Err(refusal(format!(
                " (migration {version} changed what older rows mean, so they cannot be brought forward)"
            )));
        };
        upgrade.columns.extend(additive.columns);
        upgrade.tables.extend(additive.tables);
    }
    Ok(upgrade)
}

/// A store migration that only adds — nullable columns, new tables — so that a
/// store of the version before holds the same rows meaning the same, with the new
/// columns NULL and the new tables empty. Both stores number their migrations
/// alike; one that does anything else is simply not listed.
#[derive(Clone, Copy, Debug)]
pub struct AdditiveMigration {
    /// The schema version it makes.
    pub version: u32,
    /// The nullable `(table, column)`s it adds.
    pub columns: &'static [(&'static str, &'static str)],
    /// The tables it adds.
    pub tables: &'static [&'static str],
}

/// The migrations that only add (see [`AdditiveMigration`]).
pub const ADDITIVE_MIGRATIONS: &[AdditiveMigration] = &[
    AdditiveMigration {
        version: 5,
        columns: &[("audit_records", "client_request_id")],
        tables: &[],
    },
    AdditiveMigration {
        version: 6,
        columns: &[],
        tables: &["managed_objects"],
    },
    AdditiveMigration {
        version: 7,
        columns: &[("audit_records", "detail")],
        tables: &[],
    },
    AdditiveMigration {
        version: 8,
        columns: &[("service_keys", "material_expires_at")],
        tables: &[],
    },
    AdditiveMigration {
        version: 9,
        columns: &[("grants", "constraints")],
        tables: &[],
    },
    AdditiveMigration {
        version: 10,
        columns: &[("key_versions", "import_check")],
        tables: &[],
    },
];

/// What a store has that a snapshot of an older schema, restorable into it, lacks:
/// the columns and tables that later migrations added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upgrade {
    columns: Vec<(&'static str, &'static str)>,
    tables: Vec<&'static str>,
}

impl Upgrade {
    /// The store's tables and columns (as [`restore_plan`] takes them) as they were
    /// at the snapshot's version: what the snapshot must match exactly. The rows
    /// are then inserted naming the snapshot's columns, so the added ones are NULL.
    pub fn as_of_snapshot<C: AsRef<str>>(
        &self,
        mut store: BTreeMap<String, Vec<C>>,
    ) -> BTreeMap<String, Vec<C>> {
        for table in &self.tables {
            store.remove(*table);
        }
        for (table, column) in &self.columns {
            if let Some(columns) = store.get_mut(*table) {
                columns.retain(|c| c.as_ref() != *column);
            }
        }
        store
    }
}

/// Refuses to restore into a store whose `table` holds `rows` rows: a restore
/// never merges, so only an empty store takes one.
pub fn check_empty(table: &str, rows: i64) -> StoreResult<()> {
    if rows > 0 {
        return Err(refused(format!(
            "the store is not empty (table {table} has {rows} rows): a snapshot is only \
             restored into an empty store"
        )));
    }
    Ok(())
}

/// Pairs each table of `snapshot` with the store's columns of that table (`store`:
/// every data table by name, its columns in declaration order; `C` is whatever
/// the store knows of a column, named by `AsRef<str>`).
///
/// Refused, before anything is written: a table the store does not have (or one
/// the snapshot has twice), a table whose columns are not the store's (in any
/// order: the snapshot names its own), a row whose width is not its table's, and a
/// table of the store the snapshot lacks.
pub fn restore_plan<C: AsRef<str>>(
    snapshot: &Snapshot,
    mut store: BTreeMap<String, Vec<C>>,
) -> StoreResult<Vec<(&TableDump, Vec<C>)>> {
    let mut plan = Vec::with_capacity(snapshot.tables.len());
    for dump in &snapshot.tables {
        let Some(columns) = store.remove(&dump.name) else {
            return Err(refused(format!(
                "the snapshot has a table {:?} that this store does not have (or has twice)",
                dump.name
            )));
        };
        let mut want: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
        let mut got: Vec<&str> = dump.columns.iter().map(String::as_str).collect();
        want.sort_unstable();
        got.sort_unstable();
        if want != got {
            return Err(refused(format!(
                "the columns of table {} in the snapshot ({}) are not this store's ({})",
                dump.name,
                dump.columns.join(", "),
                columns
                    .iter()
                    .map(AsRef::as_ref)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let width = dump.columns.len();
        if let Some((i, row)) = dump.rows.iter().enumerate().find(|(_, r)| r.len() != width) {
            return Err(refused(format!(
                "row {i} of table {} has {} values for {width} columns",
                dump.name,
                row.len()
            )));
        }
        plan.push((dump, columns));
    }
    if let Some(missing) = store.keys().next() {
        return Err(refused(format!(
            "the snapshot has no table {missing}, which this store has"
        )));
    }
    Ok(plan)
}

/// `INSERT INTO "table" ("a", "b", …) VALUES ` for a table's rows, in the
/// snapshot's column order; the store appends its own placeholders.
pub fn insert_head(dump: &TableDump) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(&dump.name),
        quote_all(&dump.columns)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_core::store::Value;

    fn dump(name: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> TableDump {
        TableDump {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    fn store(tables: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        tables
            .iter()
            .map(|(t, cs)| (t.to_string(), cs.iter().map(|c| c.to_string()).collect()))
            .collect()
    }

    fn refusal(r: StoreResult<impl std::fmt::Debug>) -> String {
        match r {
            Err(StoreError::Refused(msg)) => msg,
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quote("meta"), "\"meta\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_all(&["a", "b"]), "\"a\", \"b\"");
        let d = dump("t", &["x", "y"], vec![]);
        assert_eq!(insert_head(&d), "INSERT INTO \"t\" (\"x\", \"y\") VALUES ");
    }

    #[test]
    fn a_matching_snapshot_is_paired_in_its_own_order() {
        let snapshot = Snapshot {
            schema_version: 1,
            tables: vec![
                dump("b", &["y", "x"], vec![vec![Value::Null, Value::Integer(1)]]),
                dump("a", &["k"], vec![]),
            ],
        };
        let plan = restore_plan(&snapshot, store(&[("a", &["k"]), ("b", &["x", "y"])])).unwrap();
        let names: Vec<&str> = plan.iter().map(|(d, _)| d.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(plan[0].1, ["x", "y"], "the store's columns come along");
    }

    #[test]
    fn every_mismatch_is_refused_with_its_reason() {
        let tables = store(&[("a", &["k"]), ("b", &["x", "y"])]);
        let snap = |tables: Vec<TableDump>| Snapshot {
            schema_version: 1,
            tables,
        };
        let unknown = snap(vec![dump("c", &["k"], vec![])]);
        assert!(refusal(restore_plan(&unknown, tables.clone())).contains("does not have"));
        let twice = snap(vec![dump("a", &["k"], vec![]), dump("a", &["k"], vec![])]);
        assert!(refusal(restore_plan(&twice, tables.clone())).contains("has twice"));
        let columns = snap(vec![dump("a", &["k"], vec![]), dump("b", &["x"], vec![])]);
        assert!(refusal(restore_plan(&columns, tables.clone())).contains("columns of table b"));
        let width = snap(vec![
            dump("a", &["k"], vec![vec![Value::Integer(1)], vec![]]),
            dump("b", &["x", "y"], vec![]),
        ]);
        assert_eq!(
            refusal(restore_plan(&width, tables.clone())),
            "row 1 of table a has 0 values for 1 columns"
        );
        let missing = snap(vec![dump("a", &["k"], vec![])]);
        assert!(refusal(restore_plan(&missing, tables)).contains("has no table b"));
    }

    #[test]
    fn version_and_emptiness_are_checked() {
        let snapshot = Snapshot {
            schema_version: 2,
            tables: vec![],
        };
        assert!(check_schema_version(&snapshot, 2).is_ok());
        assert!(
            refusal(check_schema_version(&snapshot, 3)).contains("changed what older rows mean")
        );
        assert!(refusal(check_schema_version(&snapshot, 1)).contains("schema version 2"));
        // From 4, every migration up to 7 only added.
        let old = Snapshot {
            schema_version: 4,
            tables: vec![],
        };
        let upgrade = check_schema_version(&old, 7).unwrap();
        let now = store(&[
            ("audit_records", &["seq", "client_request_id", "detail"]),
            ("managed_objects", &["id"]),
            ("keys", &["id"]),
        ]);
        assert_eq!(
            upgrade.as_of_snapshot(now),
            store(&[("audit_records", &["seq"]), ("keys", &["id"])])
        );
        assert_eq!(
            check_schema_version(
                &Snapshot {
                    schema_version: 6,
                    tables: vec![]
                },
                7
            )
            .unwrap()
            .as_of_snapshot(store(&[("audit_records", &["seq", "detail"])])),
            store(&[("audit_records", &["seq"])])
        );
        assert!(check_empty("meta", 0).is_ok());
        assert!(refusal(check_empty("meta", 1)).contains("not empty"));
    }
}
