//! # kcm-barbican
//!
//! The OpenStack Key Manager API (Barbican v1) as a front door of kcm.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod keystone;
pub mod microversion;
pub mod paging;
pub mod payload;
pub mod refs;
pub mod request;
pub mod roles;
pub mod timefmt;
pub mod versions;
