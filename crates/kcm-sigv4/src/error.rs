//! The errors of signing and verification, each mapped to an AWS error type.

/// Why a request's signature was refused (or a request could not be signed).
///
/// Variants are grouped by cause: missing, malformed, out-of-scope, out-of-time,
/// not accepted, wrong. Messages follow AWS wording where AWS has one, and never
/// contain a secret, a signing key or the signature computed by the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    // ---- missing ----
    /// The request has no `Authorization` header.
    #[error("Request is missing Authentication Token")]
    MissingAuthorization,
    /// Neither `X-Amz-Date` nor `Date` is present.
    #[error(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )]
    MissingDate,

    // ---- malformed ----
    /// The `Authorization` header is not a well-formed SigV4 header.
    #[error("{0}")]
    MalformedAuthorization(String),
    /// The algorithm is not `AWS4-HMAC-SHA256`.
    #[error("Unsupported AWS 'algorithm': '{0}'")]
    UnsupportedAlgorithm(String),
    /// The `X-Amz-Date` or `Date` header cannot be parsed.
    #[error("Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'); got '{0}'")]
    InvalidDate(String),
    /// A header that must be signed is not in `SignedHeaders`.
    #[error("'{0}' must be a 'SignedHeader' in the AWS Authorization.")]
    HeaderNotSigned(String),
    /// A header listed in `SignedHeaders` is not in the request.
    #[error("The header '{0}' is listed in 'SignedHeaders' but is not present in the request.")]
    SignedHeaderMissing(String),

    // ---- out of scope ----
    /// The credential scope's date is not the request date's day.
    #[error("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope}' != '{request}'")]
    ScopeDateMismatch {
        /// The date in the credential scope.
        scope: String,
        /// The day of the request's date.
        request: String,
    },
    /// The credential scope names another region.
    #[error("Credential should be scoped to a valid region: '{expected}', not '{got}'.")]
    WrongRegion {
        /// The region this server serves.
        expected: String,
        /// The region in the credential scope.
        got: String,
    },
    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}', not '{got}'.")]
    WrongService {
        /// The signing service this endpoint expects.
        expected: String,
        /// The service in the credential scope.
        got: String,
    },
    /// The credential scope does not end with `aws4_request`.
    #[error("Credential should be scoped with a valid terminator: 'aws4_request', not '{0}'.")]
    WrongTerminator(String),

    // ---- out of time ----
    /// The request date is older than the allowed clock skew.
    #[error(
        "Signature expired: {request} is now earlier than {earliest} ({now} - {skew_minutes} min.)"
    )]
    Expired {
        /// The request's date (`YYYYMMDD'T'HHMMSS'Z'`).
        request: String,
        /// The oldest acceptable date.
        earliest: String,
        /// The server's current time.
        now: String,
        /// The allowed skew in minutes.
        skew_minutes: i64,
    },
    /// The request date is further in the future than the allowed clock skew.
    #[error("Signature not yet current: {request} is still later than {latest} ({now} + {skew_minutes} min.)")]
    NotYetCurrent {
        /// The request's date (`YYYYMMDD'T'HHMMSS'Z'`).
        request: String,
        /// The latest acceptable date.
        latest: String,
        /// The server's current time.
        now: String,
        /// The allowed skew in minutes.
        skew_minutes: i64,
    },

    // ---- not accepted ----
    /// The request carries a session token (`X-Amz-Security-Token`), which only
    /// temporary credentials have; kcm issues none. AWS's words for a token it does
    /// not know, then why.
    #[error("The security token included in the request is invalid. kcm issues no session tokens: sign with an access key id and its secret alone.")]
    SecurityTokenNotAccepted,

    // ---- wrong ----
    /// `x-amz-content-sha256` is not the SHA-256 of the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
    /// The signature does not match.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    SignatureMismatch,

    // ---- client side ----
    /// The request cannot be signed (no host, or a value not allowed in a header).
    #[error("cannot sign the request: {0}")]
    Unsignable(String),
}

impl SigV4Error {
    /// The AWS error type (`__type`) a server answers this error with.
    pub fn aws_error_type(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthorization => "MissingAuthenticationTokenException",
            SigV4Error::SecurityTokenNotAccepted => "UnrecognizedClientException",
            SigV4Error::MissingDate
            | SigV4Error::MalformedAuthorization(_)
            | SigV4Error::UnsupportedAlgorithm(_)
            | SigV4Error::InvalidDate(_)
            | SigV4Error::HeaderNotSigned(_)
            | SigV4Error::SignedHeaderMissing(_)
            | SigV4Error::Unsignable(_) => "IncompleteSignatureException",
            SigV4Error::ScopeDateMismatch { .. }
            | SigV4Error::WrongRegion { .. }
            | SigV4Error::WrongService { .. }
            | SigV4Error::WrongTerminator(_)
            | SigV4Error::Expired { .. }
            | SigV4Error::NotYetCurrent { .. }
            | SigV4Error::PayloadHashMismatch
            | SigV4Error::SignatureMismatch => "InvalidSignatureException",
        }
    }
}
