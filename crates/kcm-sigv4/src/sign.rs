//! Signing a request (the client side).

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Uri};
use time::OffsetDateTime;

use crate::canonical::{canonical_request, string_to_sign};
use crate::{derive_signing_key, format_amz_date, Credentials, SigV4Error, TERMINATOR};

/// The host header value for `uri`: its authority without a default port.
fn host_of(uri: &Uri) -> Result<HeaderValue, SigV4Error> {
    let authority = uri.authority().ok_or_else(|| {
        SigV4Error::Unsignable("no Host header and no authority in the URI".into())
    })?;
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let host = if authority.port_u16().is_some() && authority.port_u16() == default_port {
        authority.host()
    } else {
        authority.as_str()
    };
    HeaderValue::from_str(host).map_err(|_| SigV4Error::Unsignable("invalid host".into()))
}

/// Signs a request in place.
///
/// Adds `host` (from the URI's authority) when missing, sets `x-amz-date` to `now`
/// and sets `authorization`. Signs `host`, `content-type` (when present) and every
/// `x-amz-*` header. The body is hashed into the signature.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    if !headers.contains_key(HOST) {
        headers.insert(HOST, host_of(uri)?);
    }
    headers.remove(AUTHORIZATION);
    let amz_date = format_amz_date(now);
    headers.insert(
        "x-amz-date",
        HeaderValue::from_str(&amz_date).map_err(|_| SigV4Error::Unsignable("date".into()))?,
    );

    let mut signed: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| *k == "host" || *k == CONTENT_TYPE.as_str() || k.starts_with("x-amz-"))
        .collect();
    signed.sort_unstable();
    signed.dedup();

    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/{TERMINATOR}");
    let payload_hash = crate::sha256_hex(body);
    let creq = canonical_request(method, uri, headers, &signed, &payload_hash)?;
    let sts = string_to_sign(&amz_date, &scope, &creq);
    let key = derive_signing_key(creds.expose_secret().as_bytes(), date, region, service);
    let signature = hex::encode(key.sign(sts.as_bytes()));

    let value = format!(
        "{} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        crate::ALGORITHM,
        creds.access_key_id(),
        signed.join(";"),
    );
    let value = HeaderValue::from_str(&value).map_err(|_| {
        SigV4Error::Unsignable(
            "access key id, region or service is not a valid header value".into(),
        )
    })?;
    headers.insert(AUTHORIZATION, value);
    Ok(())
}
