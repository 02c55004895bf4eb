//! # kcm-kmip
//!
//! KMIP (the OASIS Key Management Interoperability Protocol) for kcm: what storage
//! arrays, hypervisors, databases and Ceph speak to an enterprise key manager.
//!
//! So far the binary encoding every KMIP message travels in, [`ttlv`], bounded for a
//! server reading untrusted clients, and the request and response frame above it,
//! [`message`]. The server (operations on the core's managed objects, mutual TLS,
//! version negotiation) builds on them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod message;
pub mod ttlv;
