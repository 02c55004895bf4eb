//! # kcm-core
//!
//! The service core of kcm, the key chain manager: tenants, principals and roles,
//! the keychain (root → system → service → data keys), the lifecycle table,
//! authorisation, and the cryptographic operations.
//!
//! The core knows nothing of HTTP, gRPC or SQL. It depends on two traits it owns:
//! [`store::Store`] (durable state, wrapped material only) and
//! [`keystore::KeystoreProvider`] (where root keys live). Front doors translate their
//! protocol into calls on [`service::Service`] and map [`error::Error`] back.
// The calls into AWS-LC that aws-lc-rs does not wrap live in kcm-awslc-ext.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod authz;
pub mod backup;
pub mod byok;
mod cache;
pub mod config;
pub mod crypto;
pub mod error;
pub mod glob;
pub mod key_material;
pub mod keyspec;
pub mod keystore;
#[cfg(test)]
mod known_answers;
pub mod kv;
pub mod lifecycle;
pub mod model;
pub mod object_crypto;
pub mod policy;
pub mod rate_limit;
pub mod secret;
pub mod service;
pub mod store;
pub mod xks;
pub mod xks_policy;
