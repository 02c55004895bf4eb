//! Client library for kcm.
//!
//! * [`KmsClient`] speaks the AWS KMS JSON protocol (`POST /`,
//!   `X-Amz-Target: TrentService.<Operation>`, SigV4 service `kms`).
//! * [`RestClient`] speaks the native REST API under `/v1` (SigV4 service `kcm`),
//!   one typed method per route, with the bodies of `kcm_api_types`.
//! * [`credentials`] loads an access key from the environment or an AWS
//!   shared-credentials file.
//! * [`envelope`] encrypts and decrypts files of any size with a data key
//!   (streamed AES-256-GCM chunks).
//! * [`bench`](mod@bench) is a load generator for the KMS API, plus a trivial baseline server.

pub mod bench;
pub mod credentials;
pub mod envelope;
mod error;
mod histogram;
mod kms;
mod rest;
mod signing;

pub use credentials::{load_credentials, CredentialsError};
pub use error::ClientError;
pub use kcm_sigv4::Credentials;
pub use kms::{KmsClient, DEFAULT_REGION};
pub use rest::{RestClient, RootKeyChange};
