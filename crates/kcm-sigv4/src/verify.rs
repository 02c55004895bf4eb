//! Verifying a signed request (the server side).

use http::header::DATE;
use http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::canonical::{canonical_request, string_to_sign};
use crate::date::{parse_http_date, truncated};
use crate::{
    format_amz_date, parse_amz_date, AuthorizationHeader, SigV4Error, SigningKey, TERMINATOR,
};

/// The clock skew AWS allows between a request's date and the server's clock: five
/// minutes either way. A captured request can be replayed only within it.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The session token of temporary credentials, as a header and (in presigned
/// requests) as a query parameter.
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";

/// Verifies a request signed with SigV4: [`verify_head`], then [`verify_signature`].
///
/// `key` must be derived for `auth.access_key_id`'s secret, `auth.scope.date`,
/// `expected_region` and `expected_service`.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    auth: &AuthorizationHeader,
    key: &SigningKey,
    expected_region: &str,
    expected_service: &str,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    let head = verify_head(
        uri,
        headers,
        auth,
        expected_region,
        expected_service,
        now,
        max_skew,
    )?;
    verify_signature(method, uri, headers, body, auth, key, &head)
}

/// A request head that passed [`verify_head`]: what [`verify_signature`] needs of it.
/// Only `verify_head` makes one, so the signature cannot be checked without the
/// head's checks.
#[derive(Debug, Clone)]
pub struct CheckedHead {
    /// The request time in the basic format (`YYYYMMDD'T'HHMMSS'Z'`), as signed.
    amz_date: String,
}

/// Checks everything about a SigV4 request that its head alone decides, so that a
/// server can refuse before it reads (and holds) the body: that the request carries
/// no session token; the scope's terminator, service and region; the request date
/// (`X-Amz-Date`, else `Date`) and that its day is the scope date; the clock skew
/// against `now`; and that `host`, the date header and every `x-amz-*` header are
/// signed. No secret is needed, so this runs before the access key is looked up.
pub fn verify_head(
    uri: &Uri,
    headers: &HeaderMap,
    auth: &AuthorizationHeader,
    expected_region: &str,
    expected_service: &str,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<CheckedHead, SigV4Error> {
    refuse_session_token(uri, headers)?;
    check_scope(auth, expected_region, expected_service)?;
    let (date_header, request_time) = request_date(headers)?;
    let amz_date = format_amz_date(request_time);
    if auth.scope.date != amz_date[..8] {
        return Err(SigV4Error::ScopeDateMismatch {
            scope: auth.scope.date.clone(),
            request: amz_date[..8].to_owned(),
        });
    }
    check_skew(request_time, now, max_skew)?;
    check_signed_headers(headers, auth, date_header)?;
    Ok(CheckedHead { amz_date })
}

/// Checks the body and the signature of a request whose head passed
/// [`verify_head`]: `x-amz-content-sha256` (when present) against the body, then the
/// signature over the canonical request, in constant time. `key` must be derived as
/// for [`verify`].
pub fn verify_signature(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    auth: &AuthorizationHeader,
    key: &SigningKey,
    head: &CheckedHead,
) -> Result<(), SigV4Error> {
    let payload_hash = crate::sha256_hex(body);
    if let Some(claimed) = headers.get(X_AMZ_CONTENT_SHA256) {
        if !claimed
            .as_bytes()
            .eq_ignore_ascii_case(payload_hash.as_bytes())
        {
            return Err(SigV4Error::PayloadHashMismatch);
        }
    }
    let creq = canonical_request(method, uri, headers, &auth.signed_headers, &payload_hash)?;
    let sts = string_to_sign(&head.amz_date, &auth.scope.to_scope_string(), &creq);
    let expected = key.sign(sts.as_bytes());
    if bool::from(expected.ct_eq(&auth.signature)) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

/// Refuses a request that carries a session token, in the `X-Amz-Security-Token`
/// header or query parameter (the name matched in any case). Only temporary
/// credentials come with one and this verifier knows no temporary credentials: a
/// client that sends one was set up for another service, and serving it with the
/// token ignored would hide that.
fn refuse_session_token(uri: &Uri, headers: &HeaderMap) -> Result<(), SigV4Error> {
    let in_query = uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            name.eq_ignore_ascii_case(X_AMZ_SECURITY_TOKEN)
        })
    });
    if in_query || headers.contains_key(X_AMZ_SECURITY_TOKEN) {
        return Err(SigV4Error::SecurityTokenNotAccepted);
    }
    Ok(())
}

fn check_scope(
    auth: &AuthorizationHeader,
    expected_region: &str,
    expected_service: &str,
) -> Result<(), SigV4Error> {
    let scope = &auth.scope;
    if scope.terminator != TERMINATOR {
        return Err(SigV4Error::WrongTerminator(truncated(&scope.terminator)));
    }
    if scope.service != expected_service {
        return Err(SigV4Error::WrongService {
            expected: expected_service.to_owned(),
            got: truncated(&scope.service),
        });
    }
    if scope.region != expected_region {
        return Err(SigV4Error::WrongRegion {
            expected: expected_region.to_owned(),
            got: truncated(&scope.region),
        });
    }
    Ok(())
}

fn text(v: &http::HeaderValue) -> Result<&str, SigV4Error> {
    v.to_str()
        .map_err(|_| SigV4Error::InvalidDate("<non-ASCII>".into()))
}

/// The date header used (`x-amz-date` or `date`) and the time it gives.
fn request_date(headers: &HeaderMap) -> Result<(&'static str, OffsetDateTime), SigV4Error> {
    if let Some(v) = headers.get(X_AMZ_DATE) {
        Ok((X_AMZ_DATE, parse_amz_date(text(v)?.trim())?))
    } else if let Some(v) = headers.get(DATE) {
        Ok(("date", parse_http_date(text(v)?.trim())?))
    } else {
        Err(SigV4Error::MissingDate)
    }
}

fn check_skew(
    request: OffsetDateTime,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    let skew_minutes = max_skew.whole_minutes();
    if request < now - max_skew {
        return Err(SigV4Error::Expired {
            request: format_amz_date(request),
            earliest: format_amz_date(now - max_skew),
            now: format_amz_date(now),
            skew_minutes,
        });
    }
    if request > now + max_skew {
        return Err(SigV4Error::NotYetCurrent {
            request: format_amz_date(request),
            latest: format_amz_date(now + max_skew),
            now: format_amz_date(now),
            skew_minutes,
        });
    }
    Ok(())
}

fn check_signed_headers(
    headers: &HeaderMap,
    auth: &AuthorizationHeader,
    date_header: &str,
) -> Result<(), SigV4Error> {
    let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
    for required in ["host", date_header] {
        if !signed(required) {
            return Err(SigV4Error::HeaderNotSigned(required.to_owned()));
        }
    }
    for name in headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-") && !signed(name) {
            return Err(SigV4Error::HeaderNotSigned(name.to_owned()));
        }
    }
    if signed("authorization") {
        return Err(SigV4Error::MalformedAuthorization(
            "The Authorization header cannot be a signed header.".into(),
        ));
    }
    Ok(())
}
