//! The schema version rules both stores' migrations follow.
//!
//! Migration `n` (1-based) of either store is the `n`th script of its list, and
//! both lists describe the same schema step by step, so a schema version means the
//! same tables and columns in both (which is what lets a snapshot carry one
//! number). Each script is applied with a row in [`MIGRATIONS_TABLE`]; how the
//! script and its row are made atomic, and how concurrent openers are kept apart,
//! is each store's own (SQLite's write lock, PostgreSQL's advisory lock).

use kcm_core::store::{StoreError, StoreResult};

/// The bookkeeping table: one row per applied migration. It belongs to the
/// schema, not to the data, so snapshots leave it out.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// The schema version a list of migrations reaches.
pub fn known_version(migrations: &[&str]) -> u32 {
    u32::try_from(migrations.len()).expect("fewer than 2^32 migrations")
}

/// The schema version from `SELECT MAX(version) FROM schema_migrations` (NULL:
/// nothing applied yet, version 0).
pub fn stored_version(max: Option<i64>) -> StoreResult<u32> {
    let v = max.unwrap_or(0);
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("schema version {v} out of range")))
}

/// Refuses a database whose schema is newer than this build knows: reading it
/// with an older idea of the schema could misread or lose what the newer kcm
/// wrote.
pub fn refuse_newer(current: u32, known: u32) -> StoreResult<()> {
    if current > known {
        return Err(StoreError::Unavailable(format!(
            "database schema version {current} is newer than this kcm build supports \
             (up to {known}); run a newer kcm or restore a matching backup"
        )));
    }
    Ok(())
}

/// The `applied_at` of a migration row: now, in Unix milliseconds (0 if the clock
/// is before 1970; it is informational only).
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_row_is_version_zero_and_a_negative_one_is_corrupt() {
        assert_eq!(stored_version(None).unwrap(), 0);
        assert_eq!(stored_version(Some(4)).unwrap(), 4);
        assert!(matches!(
            stored_version(Some(-1)),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            stored_version(Some(i64::from(u32::MAX) + 1)),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_newer_schema_is_refused_naming_both_versions() {
        assert!(refuse_newer(3, 3).is_ok());
        assert!(refuse_newer(0, 3).is_ok());
        let err = refuse_newer(999, 4).unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("999") && msg.contains("newer") && msg.contains("up to 4"),
            "{msg}"
        );
    }

    #[test]
    fn known_version_counts_the_scripts() {
        assert_eq!(known_version(&[]), 0);
        assert_eq!(known_version(&["a", "b"]), 2);
    }
}
