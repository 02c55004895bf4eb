//! The URLs Barbican answers with (`secret_ref`, `container_ref`, `order_ref`,
//! paging links) and the ids clients send back inside them.
//!
//! Every ref starts with the door's base: the configured `public_url`, or else the
//! scheme of the listener and the request's `Host` (what Barbican does when its
//! `host_href` is not set).

use axum::http::{header, HeaderMap};

/// The base of every URL in one answer (`http://host:9311`, no trailing slash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refs {
    base: String,
}

impl Refs {
    /// Refs under `base` as given (a configured `public_url`, without a trailing slash).
    pub fn at(base: impl Into<String>) -> Self {
        Self { base: base.into() }
    }

    /// The base for a request: `public_url` when configured, else `scheme://Host`
    /// (a missing or malformed `Host` falls back to `fallback_host`, the listener's
    /// address).
    pub fn for_request(
        public_url: Option<&str>,
        scheme: &str,
        headers: &HeaderMap,
        fallback_host: &str,
    ) -> Self {
        if let Some(url) = public_url {
            return Self::at(url);
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| is_host(h))
            .unwrap_or(fallback_host);
        Self::at(format!("{scheme}://{host}"))
    }

    /// The base itself.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{base}/v1/{path}`.
    pub fn v1(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.base)
    }

    /// A secret's URL.
    pub fn secret(&self, id: impl std::fmt::Display) -> String {
        self.v1(&format!("secrets/{id}"))
    }

    /// A container's URL.
    pub fn container(&self, id: impl std::fmt::Display) -> String {
        self.v1(&format!("containers/{id}"))
    }

    /// An order's URL.
    pub fn order(&self, id: impl std::fmt::Display) -> String {
        self.v1(&format!("orders/{id}"))
    }
}

/// A `Host` header value that is only a host and port: it goes into URLs.
fn is_host(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

/// The id at the end of a ref a client sent (`…/v1/secrets/<id>`, with or without
/// a trailing slash), or the text itself when it holds no slash (Barbican takes a
/// bare id too). The collection must match: a container ref is not a secret ref.
pub fn id_in_ref<'a>(text: &'a str, collection: &str) -> Option<&'a str> {
    let trimmed = text.trim().trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        None => Some(trimmed).filter(|id| !id.is_empty()),
        Some((before, id)) => {
            let named = before.rsplit('/').next() == Some(collection);
            (named && !id.is_empty()).then_some(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_base_comes_from_the_config_or_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("kms.local:9311"));
        let configured = Refs::for_request(Some("https://kms.example.com"), "http", &headers, "x");
        assert_eq!(
            configured.secret("abc"),
            "https://kms.example.com/v1/secrets/abc"
        );
        let from_host = Refs::for_request(None, "http", &headers, "127.0.0.1:9311");
        assert_eq!(
            from_host.container("c1"),
            "http://kms.local:9311/v1/containers/c1"
        );
        headers.insert(header::HOST, HeaderValue::from_static("evil/\"x"));
        let fallback = Refs::for_request(None, "https", &headers, "127.0.0.1:9311");
        assert_eq!(fallback.order("o1"), "https://127.0.0.1:9311/v1/orders/o1");
    }

    #[test]
    fn ids_are_read_from_refs() {
        let id = "5e7a0b4e-1b3c-4f56-8d9e-0a1b2c3d4e5f";
        assert_eq!(
            id_in_ref(&format!("http://h:9311/v1/secrets/{id}"), "secrets"),
            Some(id)
        );
        assert_eq!(
            id_in_ref(&format!("http://h/v1/secrets/{id}/"), "secrets"),
            Some(id)
        );
        assert_eq!(id_in_ref(id, "secrets"), Some(id));
        assert_eq!(
            id_in_ref(&format!("http://h/v1/containers/{id}"), "secrets"),
            None
        );
        assert_eq!(id_in_ref("http://h/v1/secrets/", "secrets"), None);
        assert_eq!(id_in_ref("", "secrets"), None);
    }
}
