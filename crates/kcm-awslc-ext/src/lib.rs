//! # kcm-awslc-ext
//!
//! One job: the AWS-LC operations kcm needs that aws-lc-rs does not expose, behind a
//! safe, typed API. Today these are
//!
//! * [`ed25519ph`]: Ed25519ph (RFC 8032 §5.1, empty context) signing and verification
//!   of a SHA-512 digest, for the `ED25519_PH_SHA_512` signing algorithm;
//! * [`ml_dsa`]: ML-DSA (FIPS 204) signing and verification of an external μ, for the
//!   `EXTERNAL_MU` message type.
//!
//! Everything else goes through aws-lc-rs. This crate links the same AWS-LC build as
//! aws-lc-rs (the `aws-lc-sys` version the workspace pins), so keys aws-lc-rs made and
//! encoded parse here unchanged.
//!
//! How the unsafe code is kept honest:
//!
//! * `unsafe` is denied for the crate and allowed only in the two FFI modules; each
//!   `unsafe` block has a `SAFETY:` comment saying why the call is sound (clippy's
//!   `undocumented_unsafe_blocks` is an error here);
//! * inputs are checked before the call that uses them: fixed lengths are array types,
//!   variable ones are checked against their bounds, and a parsed key must be of the
//!   expected kind and span its whole encoding;
//! * no raw pointer leaves the crate: AWS-LC objects live in guards that free them
//!   exactly once, on every path, and AWS-LC's error queue is cleared after a failure so
//!   it cannot leak into the next aws-lc-rs call on the thread;
//! * secrets this crate holds ([`ed25519ph::PrivateKey`]) are zeroized on drop and
//!   redacted in `Debug`; AWS-LC clears the memory of the keys it frees itself.
#![warn(missing_docs)]

pub mod ed25519ph;
pub mod ml_dsa;

/// Why an operation failed. Deliberately coarse: callers treat every failure as
/// "this key cannot do this", and AWS-LC's own error text is not reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key's encoding does not parse as a key of the kind the operation needs.
    #[error("the key is not a valid {0} key")]
    KeyRejected(&'static str),
    /// AWS-LC failed the operation on inputs that passed every check.
    #[error("AWS-LC failed to {0}")]
    Failed(&'static str),
}
