//! # kcm-store-postgres
//!
//! The store of a kcm cluster: [`PostgresStore`] implements
//! [`kcm_core::store::Store`] on one PostgreSQL database that every node shares.
//!
//! - **Same schema as SQLite.** The migrations mirror `kcm-store-sqlite`'s one to
//!   one (same tables, columns, meaning and schema version), with PostgreSQL types
//!   (TEXT with the bytewise "C" collation, BIGINT, BYTEA, BOOLEAN), so a
//!   [`Snapshot`](kcm_core::store::Snapshot) from either backend restores into the
//!   other. Both turn records into columns and back with `kcm-store-rows`, so the
//!   stored forms cannot drift apart; this crate keeps the SQL and the sqlx side.
//! - **Durability.** [`Store::commit`](kcm_core::store::Store::commit) runs its whole
//!   batch in one transaction and returns `Ok` only once COMMIT succeeded (sessions
//!   never run with `synchronous_commit = off`). A connection lost *during* COMMIT
//!   is reported as [`StoreError::Unavailable`](kcm_core::store::StoreError): the
//!   outcome is unknown, so it is never retried blindly nor reported as success.
//!   A batch that certainly did not commit (the connection failed before COMMIT, or
//!   the server rolled back a deadlock) is tried again, up to three times.
//! - **Availability.** A sqlx connection pool ([`PostgresOptions`]): while PostgreSQL
//!   is down, calls fail with `Unavailable` after the acquire timeout; when it is
//!   back, the pool reconnects by itself (connections are tested before use). Reads
//!   whose connection fails are retried on another one with a short backoff.
//! - **Cluster safety.** Migrations and restores take a PostgreSQL advisory lock, so
//!   several nodes may start at once; uniqueness (names, aliases) is enforced by
//!   the database, so concurrent nodes get
//!   [`StoreError::Conflict`](kcm_core::store::StoreError) rather than duplicates.
//!   Audit appends never race that way: each takes an advisory lock per chain and
//!   links its records after the tail it then reads, with the audit chain's
//!   `(chain, seq)` key as the database's backstop.
//!   Management changes (read, decide, write) hold a cluster-wide advisory lock
//!   and commit on the connection that holds it
//!   ([`Store::lock_changes`](kcm_core::store::Store::lock_changes)), so two nodes
//!   never act on the same old state.
//! - **Snapshots.** Read in one `REPEATABLE READ` read-only transaction; restored in
//!   one transaction, into an empty store only.
//! - **Privacy.** The URL's password never appears in errors, logs or `Debug`.
//! - **TLS.** `sslmode=require` (or `verify-ca`/`verify-full` with `sslrootcert`) in
//!   the URL uses rustls with aws-lc-rs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod change_lock;
mod codec;
mod error;
mod gate;
mod migrations;
mod notify;
mod options;
mod read;
mod snapshot;
mod store;
mod write;

pub use options::{display_target, PostgresOptions};
pub use store::PostgresStore;

/// `open` must be usable from a spawned task.
#[cfg(test)]
#[allow(dead_code, clippy::let_underscore_future)]
fn open_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let f = PostgresStore::open("", PostgresOptions::default());
    is_send(&f);
}
