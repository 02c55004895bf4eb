//! [`PostgresOptions`], and keeping the URL's password out of anything printed.

use std::time::Duration;

/// Settings of a [`PostgresStore`](crate::PostgresStore)'s connection pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The most connections this node keeps open to PostgreSQL (default 16). Calls
    /// beyond it wait for a free connection.
    pub max_connections: u32,
    /// How long a call waits for a connection — a free one, or a new one while
    /// PostgreSQL is unreachable (retried with backoff meanwhile) — before it fails
    /// with [`StoreError::Unavailable`](kcm_core::store::StoreError::Unavailable)
    /// (default 5 s).
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// What a URL may not show: its password, as written and percent-decoded, and
/// any `password` query parameter.
#[derive(Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn from_url(raw: &str) -> Self {
        let mut secrets = Vec::new();
        if let Ok(url) = url::Url::parse(raw) {
            if let Some(password) = url.password() {
                secrets.push(password.to_owned());
                let decoded = percent_encoding::percent_decode_str(password)
                    .decode_utf8_lossy()
                    .into_owned();
                secrets.push(decoded);
            }
            for (name, value) in url.query_pairs() {
                if name.eq_ignore_ascii_case("password") {
                    secrets.push(value.into_owned());
                }
            }
        } else if let Some((_, rest)) = raw.split_once("://") {
            // Not a URL we can parse: hide what would be the password anyway.
            let authority = rest.split('/').next().unwrap_or_default();
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    secrets.push(password.to_owned());
                }
            }
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }
}

/// The URL as it may be shown: scheme, user, host, port and database; no password,
/// no query.
pub fn display_target(raw: &str) -> String {
    let Ok(url) = url::Url::parse(raw) else {
        return "(an unparseable PostgreSQL URL)".to_owned();
    };
    let user = match url.username() {
        "" => String::new(),
        u => format!("{u}@"),
    };
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{user}{host}{port}{}", url.scheme(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_scrubbed_in_both_forms() {
        let r =
            Redactor::from_url("postgres://kcm:p%40ss%2Fw0rd@db.example:5432/kcm?sslmode=require");
        let text = "failed for postgres://kcm:p%40ss%2Fw0rd@db.example (p@ss/w0rd)";
        let scrubbed = r.scrub(text);
        assert!(!scrubbed.contains("w0rd"), "{scrubbed}");
        assert_eq!(
            display_target("postgres://kcm:p%40ss%2Fw0rd@db.example:5432/kcm?password=x"),
            "postgres://kcm@db.example:5432/kcm"
        );
        let q = Redactor::from_url("postgres://kcm@db/kcm?password=hunter22");
        assert_eq!(q.scrub("x hunter22 y"), "x *** y");
        let bad = Redactor::from_url("postgres://kcm:s3cret@[not a host/kcm");
        assert!(!bad.scrub("s3cret").contains("s3cret"));
    }
}
