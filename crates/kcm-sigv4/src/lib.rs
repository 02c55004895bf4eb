//! AWS Signature Version 4 (SigV4): signing requests and verifying them on the server.
//!
//! The client side is [`sign`]: it adds `Host` (when missing), `X-Amz-Date` and
//! `Authorization` to a request's headers, signing `host`, `content-type` and every
//! `x-amz-*` header, exactly like the AWS CLI does for the KMS JSON protocol.
//!
//! The server side is two steps, so the caller can look up the secret in between:
//! [`parse_authorization`] reads the `Authorization` header (access key id, credential
//! scope, signed headers, signature); the caller finds the secret for the access key id
//! and derives the [`SigningKey`] (through a [`SigningKeyCache`] to skip the four HMACs
//! per request); [`verify`] rebuilds the canonical request, checks the date, the scope
//! and the clock skew (5 minutes), refuses session tokens, and compares signatures in
//! constant time. A server that wants to refuse before it reads a body calls its two
//! halves instead: [`verify_head`] (everything the head decides, no secret needed)
//! before reading the body, [`verify_signature`] after.
//!
//! Every failure is a [`SigV4Error`] naming the AWS error type to answer with. No error
//! message ever contains a secret, a signing key or the signature the server computed.

mod auth_header;
mod cache;
mod canonical;
mod date;
mod error;
mod key;
mod sign;
mod verify;

pub use auth_header::{parse_authorization, AuthorizationHeader, CredentialScope, ALGORITHM};
pub use cache::SigningKeyCache;
pub use date::{format_amz_date, parse_amz_date};
pub use error::SigV4Error;
pub use key::{derive_signing_key, Credentials, SigningKey};
pub use sign::sign;
pub use verify::{verify, verify_head, verify_signature, CheckedHead, MAX_CLOCK_SKEW};

/// The credential-scope terminator of SigV4.
pub const TERMINATOR: &str = "aws4_request";

/// Hex SHA-256 of `data`, as used for payload hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

#[cfg(test)]
mod tests;
