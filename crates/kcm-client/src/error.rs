//! The error type of the HTTP clients.

use std::error::Error as _;

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error (`__type`/`message` for the KMS API,
    /// `error.code`/`error.message` for the REST API).
    #[error("{error_type}: {message} (HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error type or code, e.g. `NotFoundException`.
        error_type: String,
        /// The server's message.
        message: String,
    },
    /// The server answered with something that is not the expected JSON.
    #[error("unexpected response (HTTP {status}): {detail}")]
    InvalidResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach {url}: {detail}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The transport error and its causes.
        detail: String,
    },
    /// The endpoint URL is not usable.
    #[error("invalid endpoint '{0}': expected an URL like http://127.0.0.1:8990")]
    InvalidEndpoint(String),
    /// A setting is missing or invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Writing what was received failed.
    #[error("cannot write the download: {0}")]
    Io(String),
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Signing(#[from] kcm_sigv4::SigV4Error),
}

impl ClientError {
    /// The AWS error type or REST error code, for [`ClientError::Api`].
    pub fn error_type(&self) -> Option<&str> {
        match self {
            ClientError::Api { error_type, .. } => Some(error_type),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::InvalidResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    pub(crate) fn transport(url: &str, e: &reqwest::Error) -> Self {
        let mut detail = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        ClientError::Transport {
            url: url.to_owned(),
            detail,
        }
    }
}

/// Strips `com.amazonaws.kms#` prefixes and `:http://…` suffixes from an AWS `__type`.
fn short_type(t: &str) -> &str {
    let t = t.rsplit('#').next().unwrap_or(t);
    t.split(':').next().unwrap_or(t)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// The error for a KMS JSON error response (`{"__type": …, "message": …}`).
pub(crate) fn kms_error(status: u16, body: &[u8]) -> ClientError {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ClientError::InvalidResponse {
            status,
            detail: snippet(body),
        };
    };
    let error_type = v
        .get("__type")
        .or_else(|| v.get("code"))
        .and_then(|t| t.as_str())
        .map(short_type);
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(|m| m.as_str());
    match (error_type, message) {
        (Some(t), m) => ClientError::Api {
            status,
            error_type: t.to_owned(),
            message: m.unwrap_or("").to_owned(),
        },
        _ => ClientError::InvalidResponse {
            status,
            detail: snippet(body),
        },
    }
}

/// The error for a REST error response (`{"error": {"code": …, "message": …}}`).
pub(crate) fn rest_error(status: u16, body: &[u8]) -> ClientError {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(|c| c.as_str());
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str());
    match code {
        Some(code) => ClientError::Api {
            status,
            error_type: code.to_owned(),
            message: message.unwrap_or("").to_owned(),
        },
        // Authentication failures may come in the AWS shape.
        None => kms_error(status, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_errors_are_parsed_and_displayed() {
        let e = kms_error(
            400,
            br#"{"__type":"NotFoundException","message":"Key 'x' does not exist"}"#,
        );
        assert_eq!(e.error_type(), Some("NotFoundException"));
        assert_eq!(e.status(), Some(400));
        assert_eq!(
            e.to_string(),
            "NotFoundException: Key 'x' does not exist (HTTP 400)"
        );
        let e = kms_error(
            400,
            br#"{"__type":"com.amazonaws.kms#DisabledException","Message":"m"}"#,
        );
        assert_eq!(e.to_string(), "DisabledException: m (HTTP 400)");
        let e = kms_error(502, b"<html>bad gateway</html>");
        assert!(matches!(
            e,
            ClientError::InvalidResponse { status: 502, .. }
        ));
        assert!(e.to_string().contains("bad gateway"));
    }

    #[test]
    fn rest_errors_are_parsed() {
        let e = rest_error(
            404,
            br#"{"error":{"code":"NotFound","message":"no key 'k'"}}"#,
        );
        assert_eq!(e.to_string(), "NotFound: no key 'k' (HTTP 404)");
        let e = rest_error(
            400,
            br#"{"__type":"InvalidSignatureException","message":"bad"}"#,
        );
        assert_eq!(e.error_type(), Some("InvalidSignatureException"));
    }
}
