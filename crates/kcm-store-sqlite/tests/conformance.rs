//! The shared store conformance suite, run against a fresh SQLite file per check.

use kcm_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// A store in its own temporary directory (removed when the check ends).
async fn make_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("kcm.db")).expect("open store");
    (store, dir)
}

kcm_test_support::store_conformance_tests!(make_store);
