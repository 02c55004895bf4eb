//! # kcm-kmip
//!
//! KMIP (the OASIS Key Management Interoperability Protocol) for kcm: what storage
//! arrays, hypervisors, databases and Ceph speak to an enterprise key manager.
//!
//! [`ttlv`]: the binary encoding every KMIP message travels in, bounded for a server
//! reading untrusted clients; [`message`]: the request and response frame above it;
//! [`objects`]: KMIP's objects and attributes as kcm's managed objects; [`door`]:
//! the operations, each batch item through the shared request path as the door
//! `kmip`, with [`attributes`] (reading and changing attributes) and [`crypto`]
//! (computing with an object) beside it; [`listener`]: TCP with mutual TLS, the
//! client certificate naming the access key; [`config`]: the `[kmip_server]` table.
//!
//! KMIP 1.0 to 1.4, 2.0 and 2.1 (attributes in 1.x's Template-Attribute or 2.x's
//! Attributes, answered in the client's form): Discover Versions, Query, Create (AES
//! and HMAC keys), Create Key Pair (RSA, EC), Register (certificates, symmetric,
//! private and public keys, secret data, opaque objects), Re-key, Locate (by Name,
//! Object Type), Get, Get Attributes, Get Attribute List, Add / Modify / Delete /
//! Set Attribute (Name and custom attributes), Activate (confirming an active
//! object), Revoke, Destroy, Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC
//! Verify and RNG Retrieve; every other operation is answered Operation Not
//! Supported.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attributes;
pub mod config;
pub mod crypto;
pub mod door;
pub mod listener;
pub mod message;
pub mod objects;
pub mod ttlv;
