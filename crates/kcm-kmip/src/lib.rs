//! # kcm-kmip
//!
//! KMIP (the OASIS Key Management Interoperability Protocol) for kcm: what storage
//! arrays, hypervisors, databases and Ceph speak to an enterprise key manager.
//!
//! [`ttlv`]: the binary encoding every KMIP message travels in, bounded for a server
//! reading untrusted clients; [`message`]: the request and response frame above it;
//! [`objects`]: KMIP's objects and attributes as kcm's managed objects; [`door`]:
//! the operations, each batch item through the shared request path as the door
//! `kmip`; [`listener`]: TCP with mutual TLS, the client certificate naming the
//! access key; [`config`]: the `[kmip_server]` table.
//!
//! KMIP 1.0 to 1.4 and 2.0 (attributes in 1.x's Template-Attribute or 2.0's
//! Attributes, answered in the client's form): Discover Versions, Query, Create (AES keys), Register
//! (symmetric keys, secret data, opaque objects), Locate (by Name, Object Type),
//! Get (Raw key format), Get Attributes, Get Attribute List, Activate (confirming an
//! active object), Revoke, Destroy and RNG Retrieve; every other operation is answered
//! Operation Not Supported.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod door;
pub mod listener;
pub mod message;
pub mod objects;
pub mod ttlv;
