//! # kcm-store-rows
//!
//! Records ⇄ columns for kcm's SQL stores. `kcm-store-sqlite` and
//! `kcm-store-postgres` keep one schema (same tables, columns and stored forms), so
//! a record is turned into column values, and a row back into a record, the same
//! way in both; this crate is that one way, written once.
//!
//! - **Reading.** A store implements [`Row`] for its driver's row type: four
//!   getters by column index (text, integer, blob, boolean, each `None` for NULL).
//!   The decoders in [`decode`] read every record from a `Row`, in the order of
//!   its column list in [`cols`]; anything unexpected is
//!   [`StoreError::Corrupt`](kcm_core::store::StoreError::Corrupt) naming the field.
//! - **Writing.** The encoders in [`encode`] turn a record into [`Param`]s in the
//!   same column order; a store binds each with its driver. A value the schema
//!   cannot hold as written fails with
//!   [`StoreError::Unencodable`](kcm_core::store::StoreError::Unencodable) before
//!   anything is sent.
//! - **Bookkeeping both stores do alike.** The schema version rules of
//!   migrations ([`schema`]), the checks a restore makes before it writes
//!   ([`snapshot`]), and linking a batch of audit records after their chains'
//!   tails ([`audit`]).
//!
//! What is not here: the statements. Placeholders, casts, batching, transactions,
//! locking and connections differ between the two databases and stay in each
//! store, where its SQL can be read and tuned in one place. Only what is the same
//! text in both dialects is shared: the column lists and identifier quoting.
//!
//! > **Architecture invariant:** this crate depends on neither rusqlite nor sqlx;
//! > a store adapts its driver to [`Row`] and [`Param`], never the other way round.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod cols;
pub mod decode;
pub mod encode;
mod row;
pub mod schema;
pub mod snapshot;

pub use encode::Param;
pub use row::{CellError, Row};

#[cfg(test)]
mod tests;
