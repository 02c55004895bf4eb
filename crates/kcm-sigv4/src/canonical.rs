//! The canonical request and the string to sign.
//!
//! * Canonical URI (non-S3 rules): the path as received (already percent-encoded
//!   once), with `.`/`..` segments and empty segments removed, then percent-encoded
//!   again, keeping only RFC 3986 unreserved characters and `/`.
//! * Canonical query: parameters percent-decoded, re-encoded strictly, sorted by
//!   name then value.
//! * Canonical headers: lowercase names in `SignedHeaders` order, values trimmed with
//!   runs of spaces collapsed, repeated headers joined with `,`.

use http::{HeaderMap, Method, Uri};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::SigV4Error;

/// Everything except RFC 3986 unreserved characters is encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As [`STRICT`], but `/` is kept (for paths).
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// The canonical URI of `path` (see the module documentation).
pub(crate) fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    for s in &segments {
        normalized.push('/');
        normalized.push_str(s);
    }
    if normalized.is_empty() || (path.ends_with('/') && !segments.is_empty()) {
        normalized.push('/');
    }
    utf8_percent_encode(&normalized, PATH).to_string()
}

/// The canonical query string of `query` (the part after `?`, if any).
pub(crate) fn canonical_query(query: Option<&str>) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let encode = |s: &str| {
        let decoded = percent_decode_str(s).collect::<Vec<u8>>();
        percent_encoding::percent_encode(&decoded, STRICT).to_string()
    };
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(k), encode(v))
        })
        .collect();
    params.sort();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Appends `value` trimmed, with runs of spaces and tabs collapsed to one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' || b == b'\t' {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            started = true;
        }
    }
}

/// Appends the canonical header lines (`name:value\n`) for `signed` headers.
fn push_canonical_headers(
    out: &mut Vec<u8>,
    headers: &HeaderMap,
    uri: &Uri,
    signed: &[impl AsRef<str>],
) -> Result<(), SigV4Error> {
    for name in signed {
        let name = name.as_ref();
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            // HTTP/2 carries the host in the `:authority` pseudo-header.
            match (name, uri.authority()) {
                ("host", Some(authority)) => out.extend_from_slice(authority.as_str().as_bytes()),
                _ => return Err(SigV4Error::SignedHeaderMissing(name.to_owned())),
            }
        }
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(out, value.as_bytes());
        }
        out.push(b'\n');
    }
    Ok(())
}

/// The canonical request, as bytes.
pub(crate) fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed: &[impl AsRef<str>],
    payload_hash: &str,
) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(uri.path()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(uri.query()).as_bytes());
    out.push(b'\n');
    push_canonical_headers(&mut out, headers, uri, signed)?;
    out.push(b'\n');
    for (i, name) in signed.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(name.as_ref().as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// The string to sign: algorithm, timestamp, scope and the canonical request's hash.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{}\n{amz_date}\n{scope}\n{}",
        crate::ALGORITHM,
        crate::sha256_hex(canonical_request)
    )
}
