//! SigV4: the `Authorization` header and the canonical request
//! (`crates/kcm-sigv4`).
//!
//! The input is a request as text: `METHOD URI` on the first line, then `name:
//! value` header lines, an empty line, and the body. Two things run on it:
//!
//! * the server side: [`kcm_sigv4::parse_authorization`], and on success
//!   [`kcm_sigv4::verify`] against the secret [`SECRET`] at [`now`] (the seeds are
//!   requests signed with it then, so the whole check runs to the signature);
//! * a property: the request signed by [`kcm_sigv4::sign`] (its own
//!   `Authorization` removed) verifies, unless it carries what the verifier
//!   refuses by design (a session token, or an `x-amz-content-sha256` that is not
//!   the body's).

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use kcm_sigv4::{Credentials, SigV4Error, MAX_CLOCK_SKEW};
use time::OffsetDateTime;

/// The largest input: a request's headers (hyper refuses more than 64 KiB of them in
/// practice) and a small body.
pub const MAX_LEN: usize = 64 * 1024;
/// The access key id of the seeds.
pub const ACCESS_KEY_ID: &str = "AKIAFUZZEXAMPLE00001";
/// The secret the seeds are signed with.
pub const SECRET: &str = "fuzz-secret-access-key-0000000000000000";
/// The region and service the verifier expects.
pub const REGION: &str = "us-east-1";
/// The signing service the verifier expects.
pub const SERVICE: &str = "kms";

/// The server's clock: 2026-11-01T12:00:00Z, when the seeds were signed.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_793_534_400).expect("a valid time")
}

/// A request read from the input, or `None` when it is not one HTTP could carry.
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// Reads the textual request format of this target.
pub fn parse_request(data: &[u8]) -> Option<Request> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let request_line = lines.next()?;
    let space = request_line.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&request_line[..space]).ok()?;
    let uri = Uri::try_from(&request_line[space + 1..]).ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
        headers.append(name, value);
    }
    Some(Request {
        method,
        uri,
        headers,
        body: body.to_vec(),
    })
}

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let Some(mut request) = parse_request(data) else {
        return;
    };
    server_side(&request);
    request.headers.remove(http::header::AUTHORIZATION);
    signed_requests_verify(request);
}

fn server_side(r: &Request) {
    let auth = match kcm_sigv4::parse_authorization(&r.headers) {
        Ok(auth) => auth,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let key = kcm_sigv4::derive_signing_key(SECRET.as_bytes(), &auth.scope.date, REGION, SERVICE);
    let result = kcm_sigv4::verify(
        &r.method,
        &r.uri,
        &r.headers,
        &r.body,
        &auth,
        &key,
        REGION,
        SERVICE,
        now(),
        MAX_CLOCK_SKEW,
    );
    if let Err(e) = result {
        let _ = (e.to_string(), e.aws_error_type());
    }
}

fn signed_requests_verify(mut r: Request) {
    let creds = Credentials::new(ACCESS_KEY_ID, SECRET);
    let signed = kcm_sigv4::sign(
        &r.method,
        &r.uri,
        &mut r.headers,
        &r.body,
        &creds,
        REGION,
        SERVICE,
        now(),
    );
    if signed.is_err() {
        return;
    }
    let auth = kcm_sigv4::parse_authorization(&r.headers)
        .unwrap_or_else(|e| panic!("sign wrote an Authorization header parse refuses: {e}"));
    let key = kcm_sigv4::derive_signing_key(SECRET.as_bytes(), &auth.scope.date, REGION, SERVICE);
    let result = kcm_sigv4::verify(
        &r.method,
        &r.uri,
        &r.headers,
        &r.body,
        &auth,
        &key,
        REGION,
        SERVICE,
        now(),
        MAX_CLOCK_SKEW,
    );
    match result {
        Ok(()) => {}
        // Refused by design, whoever signed.
        Err(SigV4Error::SecurityTokenNotAccepted | SigV4Error::PayloadHashMismatch) => {}
        Err(e) => panic!("a request sign() signed does not verify: {e}"),
    }
}
