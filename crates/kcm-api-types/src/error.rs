//! The body of every error response, and the stable error codes.
//!
//! Every error the REST API returns has the shape
//! `{"error": {"code": "<Code>", "message": "<what was wrong>"}}`.

use serde::{Deserialize, Serialize};

/// Stable error codes of the REST API (the `code` field of [`ErrorDetail`]).
pub mod code {
    /// A parameter or the request body is missing, malformed or out of range.
    pub const INVALID_INPUT: &str = "InvalidInput";
    /// An alias name breaks the alias rules.
    pub const INVALID_ALIAS_NAME: &str = "InvalidAliasName";
    /// A paging marker was not issued by this server.
    pub const INVALID_MARKER: &str = "InvalidMarker";
    /// A tag key or value breaks the tag rules.
    pub const INVALID_TAG: &str = "InvalidTag";
    /// A ciphertext is malformed, tampered with, or its context does not match.
    pub const INVALID_CIPHERTEXT: &str = "InvalidCiphertext";
    /// The ciphertext was made by another key than the one named.
    pub const INCORRECT_KEY: &str = "IncorrectKey";
    /// The key's usage or spec does not allow the operation.
    pub const INVALID_KEY_USAGE: &str = "InvalidKeyUsage";
    /// A signature did not verify.
    pub const INVALID_SIGNATURE: &str = "InvalidSignature";
    /// A MAC did not verify.
    pub const INVALID_MAC: &str = "InvalidMac";
    /// The request asks for something kcm does not support.
    pub const UNSUPPORTED: &str = "Unsupported";
    /// A limit was reached.
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    /// An import token is unknown, used, or for another key.
    pub const INVALID_IMPORT_TOKEN: &str = "InvalidImportToken";
    /// An import token is past its lifetime: get new import parameters.
    pub const EXPIRED_IMPORT_TOKEN: &str = "ExpiredImportToken";
    /// Imported key material is not what was imported before.
    pub const INCORRECT_KEY_MATERIAL: &str = "IncorrectKeyMaterial";
    /// The resource does not exist (or is not visible to the caller), or the path is unknown.
    pub const NOT_FOUND: &str = "NotFound";
    /// The path exists but not with this HTTP method.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// The request body is larger than the API accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
    /// The request body did not arrive within the server's body timeout.
    pub const REQUEST_TIMEOUT: &str = "RequestTimeout";
    /// A name is already taken.
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    /// The caller is authenticated but not allowed to do this.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// No valid credentials: missing, malformed, unknown, disabled or wrongly signed.
    pub const UNAUTHENTICATED: &str = "Unauthenticated";
    /// The resource (or a key above it in the chain) is in a state that forbids this.
    pub const INVALID_STATE: &str = "InvalidState";
    /// The store or a keystore cannot be reached; nothing was changed.
    pub const UNAVAILABLE: &str = "Unavailable";
    /// 429: the caller's access key or tenant exceeded its request-rate quota; retry
    /// after the delay the message names.
    pub const THROTTLED: &str = "Throttled";
    /// 500: the request was carried out, but its audit record could not be written;
    /// check its effect before repeating it.
    pub const UNAUDITED: &str = "Unaudited";
    /// A bug or corrupt data; details are in the server log.
    pub const INTERNAL: &str = "Internal";
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"error": {"code": "NotFound", "message": "system payments does not exist"}}))
)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The code and message of an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable code (`InvalidInput`, `NotFound`, `AlreadyExists`,
    /// `AccessDenied`, `Unauthenticated`, `InvalidState`, `Unavailable`, `Internal`, …).
    pub code: String,
    /// Human-readable message naming what was wrong.
    pub message: String,
}
