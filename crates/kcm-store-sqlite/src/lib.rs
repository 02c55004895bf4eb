//! # kcm-store-sqlite
//!
//! The embedded store of kcm: [`SqliteStore`] implements [`kcm_core::store::Store`]
//! on a single SQLite file.
//!
//! - **Durability.** WAL journal with `synchronous = FULL`: a commit is fsynced
//!   before it is acknowledged, so it survives `kill -9` and power loss.
//! - **Atomicity.** [`Store::commit`](kcm_core::store::Store::commit) runs its whole
//!   batch in one `BEGIN IMMEDIATE` transaction; on any error nothing is written.
//! - **Concurrency.** One writer connection and a small pool of read connections;
//!   every call runs on tokio's blocking pool, never on the async workers.
//! - **Schema.** Versioned migrations (`migrations/*.sql`) applied at open; a
//!   database from a newer kcm is refused rather than misread. Records become
//!   columns and rows become records through `kcm-store-rows`, shared with the
//!   PostgreSQL store; this crate keeps the SQL and the rusqlite side.
//! - **Snapshots.** [`Store::snapshot`](kcm_core::store::Store::snapshot) reads every
//!   table (listed from `sqlite_master`) in one read transaction;
//!   [`Store::restore_snapshot`](kcm_core::store::Store::restore_snapshot) writes one
//!   back into an empty store in one transaction.
//! - **Privacy.** The database file (and so its `-wal`/`-shm` files) is mode 0600.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod conn;
mod error;
mod migrations;
mod read;
mod snapshot;
mod store;
mod write;

pub use store::SqliteStore;
