//! AWS KMS error shapes and the one mapping from core errors to them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::AuditOutcome;

/// An error as the AWS JSON protocol reports it: `{"__type": ..., "message": ...}`.
#[derive(Debug)]
pub struct AwsError {
    /// The AWS error type (`NotFoundException`, …).
    pub error_type: &'static str,
    /// Human-readable message naming what was wrong.
    pub message: String,
    /// HTTP status.
    pub status: StatusCode,
}

impl AwsError {
    /// A 400 error of `error_type`.
    pub fn bad_request(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::bad_request("ValidationException", message)
    }

    /// How the audit log classifies this refusal: authentication and
    /// authorisation failures are `denied`, the rest `failed`.
    pub fn audit_outcome(&self) -> AuditOutcome {
        match self.error_type {
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "MissingAuthenticationTokenException" => AuditOutcome::Denied,
            _ => AuditOutcome::Failed,
        }
    }
}

/// The AWS error type and status for each core error kind. The match has no
/// catch-all: a kind added to the core does not compile until it is mapped here.
fn aws_type(kind: ErrorKind) -> (&'static str, StatusCode) {
    use ErrorKind::*;
    let bad = StatusCode::BAD_REQUEST;
    match kind {
        InvalidInput => ("ValidationException", bad),
        InvalidAliasName => ("InvalidAliasNameException", bad),
        InvalidMarker => ("InvalidMarkerException", bad),
        InvalidTag => ("TagException", bad),
        MalformedPolicy => ("MalformedPolicyDocumentException", bad),
        NotFound => ("NotFoundException", bad),
        AlreadyExists => ("AlreadyExistsException", bad),
        AccessDenied => ("AccessDeniedException", bad),
        UnknownAccessKey => ("UnrecognizedClientException", bad),
        InvalidCiphertext => ("InvalidCiphertextException", bad),
        IncorrectKey => ("IncorrectKeyException", bad),
        KeyDisabled => ("DisabledException", bad),
        InvalidState => ("KMSInvalidStateException", bad),
        InvalidKeyUsage => ("InvalidKeyUsageException", bad),
        InvalidSignature => ("KMSInvalidSignatureException", bad),
        InvalidMac => ("KMSInvalidMacException", bad),
        Unsupported => ("UnsupportedOperationException", bad),
        LimitExceeded => ("LimitExceededException", bad),
        InvalidImportToken => ("InvalidImportTokenException", bad),
        IncorrectKeyMaterial => ("IncorrectKeyMaterialException", bad),
        StoreUnavailable | KeystoreUnavailable => (
            "DependencyTimeoutException",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Internal => ("KMSInternalException", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

impl From<Error> for AwsError {
    fn from(e: Error) -> Self {
        let (error_type, status) = aws_type(e.kind());
        Self {
            error_type,
            message: e.message().to_string(),
            status,
        }
    }
}

impl From<kcm_frontdoor::AuthnError> for AwsError {
    fn from(e: kcm_frontdoor::AuthnError) -> Self {
        match e {
            kcm_frontdoor::AuthnError::Core(core) => core.into(),
            kcm_frontdoor::AuthnError::Signature {
                error_type,
                message,
            } => Self {
                error_type,
                message,
                status: StatusCode::BAD_REQUEST,
            },
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.error_type, "message": self.message });
        (
            self.status,
            [(http::header::CONTENT_TYPE, crate::CONTENT_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_an_aws_type_with_the_cores_fault_split() {
        for kind in ErrorKind::ALL {
            let e = AwsError::from(Error::new(kind, "x"));
            assert!(e.error_type.ends_with("Exception"), "{kind:?}");
            // Only dependency and internal failures are 5xx, exactly as the core says.
            assert_eq!(
                e.status.is_client_error(),
                Error::new(kind, "x").is_client_error(),
                "{kind:?}"
            );
        }
    }
}
