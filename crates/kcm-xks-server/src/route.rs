//! The API's URIs: `[/<prefix>]/kms/xks/v1/keys/<externalKeyId>/<operation>` and
//! `[/<prefix>]/kms/xks/v1/health`, and the prefix rules of the specification.

use kcm_core::authz::Op;

use crate::error::{ErrorName, XksError};

/// What follows the prefix.
pub const API_PATH: &str = "/kms/xks/v1";
/// The longest `XksProxyUriPath` (`<prefix>/kms/xks/v1`) AWS KMS takes.
const MAX_URI_PATH: usize = 128;
/// The longest `externalKeyId`.
const MAX_KEY_ID: usize = 128;

/// A request's URI, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// GetHealthStatus.
    Health,
    /// An operation on the key `externalKeyId` names.
    Key {
        /// The operation.
        op: Op,
        /// The `externalKeyId`, if it is one the specification allows; otherwise
        /// the request is refused as invalid once authenticated.
        key_id: Result<String, String>,
    },
}

impl Route {
    /// The core operation it asks for.
    pub fn op(&self) -> Op {
        match self {
            Route::Health => Op::XksGetHealthStatus,
            Route::Key { op, .. } => *op,
        }
    }
}

/// Checks a configured prefix: empty, or `/`-separated segments of letters, digits,
/// `-` and `_`, short enough that `<prefix>/kms/xks/v1` is at most 128 characters.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let valid_segments = prefix.is_empty()
        || (prefix.starts_with('/')
            && prefix[1..].split('/').all(|segment| {
                !segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }));
    if !valid_segments {
        return Err(format!(
            "uri_path_prefix {prefix:?} must be empty or /-separated segments of letters, digits, - and _ (e.g. /tenant-a)"
        ));
    }
    if prefix.len() + API_PATH.len() > MAX_URI_PATH {
        return Err(format!(
            "uri_path_prefix {prefix:?} is too long: AWS KMS takes an XksProxyUriPath of at most {MAX_URI_PATH} characters"
        ));
    }
    Ok(())
}

/// The route `path` names under `prefix`, or the specification's
/// `InvalidUriPathException`.
pub fn route(prefix: &str, path: &str) -> Result<Route, XksError> {
    let invalid = || {
        XksError::new(
            ErrorName::InvalidUriPath,
            format!("{path:?} is not a URI of the XKS proxy API here"),
        )
    };
    let rest = path
        .strip_prefix(prefix)
        .and_then(|p| p.strip_prefix(API_PATH))
        .ok_or_else(invalid)?;
    if rest == "/health" {
        return Ok(Route::Health);
    }
    let (key_id, operation) = rest
        .strip_prefix("/keys/")
        .and_then(|r| r.rsplit_once('/'))
        .ok_or_else(invalid)?;
    let op = match operation {
        "metadata" => Op::XksGetKeyMetadata,
        "encrypt" => Op::XksEncrypt,
        "decrypt" => Op::XksDecrypt,
        _ => return Err(invalid()),
    };
    let key_id = if valid_key_id(key_id) {
        Ok(key_id.to_string())
    } else {
        Err(format!(
            "externalKeyId must be 1 to {MAX_KEY_ID} of letters, digits, '-', '.' and '_'"
        ))
    };
    Ok(Route::Key { op, key_id })
}

/// Whether `id` is an `externalKeyId` the specification allows.
fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_route_to_their_operation() {
        assert_eq!(route("", "/kms/xks/v1/health").unwrap(), Route::Health);
        assert_eq!(
            route("/a/b-c", "/a/b-c/kms/xks/v1/health").unwrap(),
            Route::Health
        );
        let r = route("/p", "/p/kms/xks/v1/keys/my.key-1_x/encrypt").unwrap();
        assert_eq!(
            r,
            Route::Key {
                op: Op::XksEncrypt,
                key_id: Ok("my.key-1_x".into())
            }
        );
        assert_eq!(r.op(), Op::XksEncrypt);
        let bad_id = route("", "/kms/xks/v1/keys/a%2Fb/metadata").unwrap();
        assert!(matches!(bad_id, Route::Key { key_id: Err(_), .. }));
        let long_id = format!("/kms/xks/v1/keys/{}/decrypt", "k".repeat(129));
        assert!(matches!(
            route("", &long_id).unwrap(),
            Route::Key { key_id: Err(_), .. }
        ));
        for path in [
            "/",
            "/kms/xks/v1",
            "/kms/xks/v1/",
            "/kms/xks/v2/health",
            "/kms/xks/v1/keys/k/sign",
            "/kms/xks/v1/keys/k",
            "/other/kms/xks/v1/health",
            "/kms/xks/v1/health/extra",
        ] {
            assert_eq!(
                route("", path).unwrap_err().name(),
                "InvalidUriPathException",
                "{path}"
            );
        }
        assert!(route("/p", "/kms/xks/v1/health").is_err());
    }

    #[test]
    fn prefixes_follow_the_specification() {
        for ok in ["", "/a", "/tenant-a/x_1"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "/", "/a/", "/a//b", "/a.b", "/a b"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        assert!(check_prefix(&format!("/{}", "a".repeat(116))).is_ok());
        assert!(check_prefix(&format!("/{}", "a".repeat(117))).is_err());
    }
}
