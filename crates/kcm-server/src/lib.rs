//! # kcm-server
//!
//! The kcm server as a library: everything `kcm serve` and `kcm restore` do
//! between parsing their flags and printing their result.
//!
//! - [`config`]: the settings (built-in defaults, then the TOML file, then `KCM_*`
//!   environment variables; flags are the caller's to apply last) and their checks.
//! - [`launch`]: opens the store (SQLite in the data directory, or PostgreSQL) and
//!   every keystore, builds the core, bootstraps a fresh store, and serves the
//!   operational endpoints, the native REST API and the AWS KMS API over HTTP or
//!   HTTPS until the shutdown future resolves. `kcm serve` passes
//!   [`shutdown_signal`] (SIGTERM, Ctrl-C) and lets it bind the configured address; a
//!   test passes a listener it bound on port 0 and a future of its own. Every TCP
//!   listener (the main one, Barbican's) is served by one accept loop (`listener.rs`)
//!   under one connection cap and the header, idle and body timeouts.
//! - [`restore`]: offline restore of a backup archive, with the same settings and
//!   keystores the server runs with.
//! - [`files`]: placing files so that a failure leaves nothing half-written.
//! - `data_dir`: the data directory is private to its owner (mode 0700) and used by
//!   one server at a time (an `flock` on `kcm.lock` in it, naming the holder's pid).
//!
//! Errors are `anyhow` errors whose chain is the message an operator reads: every
//! caller prints them and stops, and none branches on their cause.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
mod data_dir;
pub mod files;
mod keystores;
mod listener;
pub mod restore;
mod serve;
mod tls;

pub use config::Settings;
pub use serve::{init_logging, launch, shutdown_signal, Listen};
