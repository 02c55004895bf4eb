//! Secret payloads on the wire: the content types Barbican knows, how a payload
//! arrives (inline in JSON, base64 or text, or as a raw `PUT` body) and how it
//! leaves (`Accept` on `GET …/payload`, or on `GET /v1/secrets/{id}`).
//!
//! Payloads are held only in [`SecretBytes`] (zeroized on drop, redacted in
//! `Debug`); intermediate buffers are zeroizing too.

use base64::Engine as _;
use kcm_core::secret::SecretBytes;
use zeroize::Zeroizing;

use crate::error::BarbicanError;

/// Barbican's `max_allowed_secret_in_bytes` default: the largest payload.
pub const MAX_SECRET_BYTES: usize = 10_000;

/// Barbican's `max_allowed_request_size_in_bytes` default: the largest request body.
pub const MAX_REQUEST_BYTES: usize = 25_000;

/// A payload content type, normalised as Barbican does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// `text/plain` (with or without `charset=utf-8`).
    Text,
    /// `application/octet-stream`.
    OctetStream,
    /// `application/pkcs8` (a private key).
    Pkcs8,
    /// `application/pkix-cert` (a certificate).
    PkixCert,
}

impl ContentType {
    /// The normalised name (what `content_types.default` shows).
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Text => "text/plain",
            ContentType::OctetStream => "application/octet-stream",
            ContentType::Pkcs8 => "application/pkcs8",
            ContentType::PkixCert => "application/pkix-cert",
        }
    }

    /// Reads a content type (`text/plain; charset=utf-8` is `text/plain`; another
    /// charset is not supported). `None` for a type Barbican does not store.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(';').map(str::trim);
        let mime = parts.next()?.to_ascii_lowercase();
        for param in parts {
            let (name, value) = param.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("charset")
                || !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            {
                return None;
            }
        }
        match mime.as_str() {
            "text/plain" => Some(ContentType::Text),
            "application/octet-stream" => Some(ContentType::OctetStream),
            "application/pkcs8" => Some(ContentType::Pkcs8),
            "application/pkix-cert" => Some(ContentType::PkixCert),
            _ => None,
        }
    }

    /// Whether it is binary (carried in JSON as base64).
    pub fn is_binary(self) -> bool {
        self != ContentType::Text
    }
}

/// The payload of a `POST /v1/secrets` body (`payload`, `payload_content_type`,
/// `payload_content_encoding`), checked as Barbican checks it.
pub fn from_json(
    payload: &str,
    content_type: &str,
    encoding: Option<&str>,
) -> Result<(SecretBytes, ContentType), BarbicanError> {
    if payload.is_empty() {
        return Err(BarbicanError::schema(
            "Secret",
            "If 'payload' specified, must be non empty",
            "payload",
        ));
    }
    // What Barbican's schema allows in a JSON body (pkix-cert only through PUT).
    let ct = ContentType::parse(content_type)
        .filter(|ct| *ct != ContentType::PkixCert)
        .ok_or_else(|| {
            BarbicanError::schema(
                "Secret",
                "payload_content_type is not one of ['text/plain', 'text/plain;charset=utf-8', \
                 'text/plain; charset=utf-8', 'application/octet-stream', 'application/pkcs8']",
                "payload_content_type",
            )
        })?;
    let encodings = || {
        BarbicanError::schema(
            "Secret",
            "payload_content_encoding is not one of ['base64', 'binary']",
            "payload_content_encoding",
        )
    };
    let bytes = match (
        ct.is_binary(),
        encoding.map(str::to_ascii_lowercase).as_deref(),
    ) {
        (false, None) => SecretBytes::copy_from(payload.as_bytes()),
        (false, Some(_)) => {
            return Err(BarbicanError::schema(
                "Secret",
                "payload_content_encoding is not allowed with payload_content_type text/plain",
                "payload_content_encoding",
            ))
        }
        (true, Some("base64")) => decode_base64(payload.as_bytes()).map_err(|_| {
            BarbicanError::schema(
                "Secret",
                "Invalid payload for payload_content_encoding",
                "payload",
            )
        })?,
        (true, Some("binary")) => SecretBytes::copy_from(payload.as_bytes()),
        (true, _) => return Err(encodings()),
    };
    check_size(&bytes)?;
    Ok((bytes, ct))
}

/// The payload of a `PUT /v1/secrets/{id}` body: `Content-Type` (text/plain or
/// application/octet-stream, else 415) and `Content-Encoding` (base64 or none).
pub fn from_put(
    body: &[u8],
    content_type: Option<&str>,
    encoding: Option<&str>,
) -> Result<(SecretBytes, ContentType), BarbicanError> {
    let ct = content_type
        .and_then(ContentType::parse)
        .filter(|ct| matches!(ct, ContentType::Text | ContentType::OctetStream))
        .ok_or_else(|| {
            BarbicanError::unsupported_media_type(&["application/octet-stream", "text/plain"])
        })?;
    if body.is_empty() {
        return Err(BarbicanError::bad_request("No data supplied to process."));
    }
    let bytes = match encoding
        .map(str::trim)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("binary") => SecretBytes::copy_from(body),
        Some("base64") if ct.is_binary() => decode_base64(body)?,
        Some(other) => {
            return Err(BarbicanError::bad_request(format!(
                "Content-Encoding {other:?} is not supported for {}",
                ct.as_str()
            )))
        }
    };
    check_size(&bytes)?;
    Ok((bytes, ct))
}

/// Barbican's words for an `Accept` it cannot serve.
const WRONG_ACCEPT: &str = "Secret payload retrieval issue seen - Wrong payload content-type.";

/// How a payload is sent back for an `Accept` header: decided before the payload
/// is read (an `Accept` nothing can satisfy is refused before anything is
/// unsealed), completed once the stored type is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No `Accept`: as the payload was stored.
    AsStored,
    /// `Accept: */*`: the stored bytes, labelled `*/*` as Barbican labels them.
    Anything,
    /// A type Barbican serves.
    As(ContentType),
}

impl Delivery {
    /// Reads `accept`: the first type it lists that Barbican serves, or `*/*`;
    /// anything else is a 406.
    pub fn negotiate(accept: Option<&str>) -> Result<Self, BarbicanError> {
        let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(Delivery::AsStored);
        };
        for item in accept.split(',') {
            let media = item.split(';').next().unwrap_or("").trim();
            if media == "*/*" {
                return Ok(Delivery::Anything);
            }
            if let Some(ct) = ContentType::parse(media) {
                return Ok(Delivery::As(ct));
            }
        }
        Err(BarbicanError::not_acceptable(WRONG_ACCEPT))
    }

    /// The `Content-Type` `payload`, stored as `stored`, is sent with. Text (asked
    /// for, or stored and not otherwise asked for) is sent as
    /// `text/plain; charset=UTF-8` — Barbican's clients ask for text even for
    /// binary secrets and get the bytes — but only bytes that are UTF-8 (else 406,
    /// as Barbican).
    pub fn content_type(
        self,
        stored: ContentType,
        payload: &SecretBytes,
    ) -> Result<&'static str, BarbicanError> {
        let ct = match self {
            Delivery::Anything => return Ok("*/*"),
            Delivery::AsStored => stored,
            Delivery::As(ct) => ct,
        };
        if ct != ContentType::Text {
            return Ok(ct.as_str());
        }
        if std::str::from_utf8(payload.expose_secret()).is_err() {
            return Err(BarbicanError::not_acceptable(WRONG_ACCEPT));
        }
        Ok("text/plain; charset=UTF-8")
    }
}

/// Decodes standard base64 (padding optional, surrounding whitespace ignored).
fn decode_base64(text: &[u8]) -> Result<SecretBytes, BarbicanError> {
    let trimmed = text.trim_ascii();
    let mut out = Zeroizing::new(Vec::new());
    base64::engine::general_purpose::STANDARD
        .decode_vec(trimmed, &mut out)
        .or_else(|_| {
            out.clear();
            base64::engine::general_purpose::STANDARD_NO_PAD.decode_vec(trimmed, &mut out)
        })
        .map_err(|_| BarbicanError::bad_request("The payload is not valid base64."))?;
    Ok(SecretBytes::copy_from(&out))
}

/// A payload must be 1 to [`MAX_SECRET_BYTES`] bytes.
fn check_size(bytes: &SecretBytes) -> Result<(), BarbicanError> {
    if bytes.is_empty() {
        return Err(BarbicanError::bad_request("No data supplied to process."));
    }
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(BarbicanError::too_large(format!(
            "The secret is {} bytes; the most this key manager stores is {MAX_SECRET_BYTES}.",
            bytes.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_normalised() {
        assert_eq!(ContentType::parse("text/plain"), Some(ContentType::Text));
        assert_eq!(
            ContentType::parse("text/plain; charset=utf-8"),
            Some(ContentType::Text)
        );
        assert_eq!(
            ContentType::parse("TEXT/PLAIN;charset=UTF-8"),
            Some(ContentType::Text)
        );
        assert_eq!(ContentType::parse("text/plain; charset=latin1"), None);
        assert_eq!(
            ContentType::parse("application/octet-stream"),
            Some(ContentType::OctetStream)
        );
        assert_eq!(ContentType::parse("application/json"), None);
    }

    #[test]
    fn json_payloads_are_checked_like_barbican() {
        let (bytes, ct) = from_json("beer", "text/plain", None).unwrap();
        assert_eq!(
            (bytes.expose_secret(), ct),
            (&b"beer"[..], ContentType::Text)
        );
        let (bytes, ct) =
            from_json("YmVlcg==", "application/octet-stream", Some("base64")).unwrap();
        assert_eq!(
            (bytes.expose_secret(), ct),
            (&b"beer"[..], ContentType::OctetStream)
        );
        let status =
            |r: Result<(SecretBytes, ContentType), BarbicanError>| r.unwrap_err().status().as_u16();
        assert_eq!(status(from_json("", "text/plain", None)), 400);
        assert_eq!(status(from_json("x", "image/png", None)), 400);
        assert_eq!(
            status(from_json("YmVlcg==", "text/plain", Some("base64"))),
            400
        );
        assert_eq!(
            status(from_json("YmVlcg==", "application/octet-stream", None)),
            400
        );
        assert_eq!(
            status(from_json("!!", "application/octet-stream", Some("base64"))),
            400
        );
        let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; MAX_SECRET_BYTES + 1]);
        assert_eq!(
            status(from_json(&big, "application/octet-stream", Some("base64"))),
            413
        );
        let fits = base64::engine::general_purpose::STANDARD.encode(vec![7u8; MAX_SECRET_BYTES]);
        assert!(from_json(&fits, "application/octet-stream", Some("base64")).is_ok());
    }

    #[test]
    fn put_bodies_are_checked_like_barbican() {
        let (bytes, ct) = from_put(b"\x00\x01", Some("application/octet-stream"), None).unwrap();
        assert_eq!(
            (bytes.expose_secret(), ct),
            (&b"\x00\x01"[..], ContentType::OctetStream)
        );
        let (bytes, _) = from_put(
            b"YmxhaA==",
            Some("application/octet-stream"),
            Some("base64"),
        )
        .unwrap();
        assert_eq!(bytes.expose_secret(), b"blah");
        let status =
            |r: Result<(SecretBytes, ContentType), BarbicanError>| r.unwrap_err().status().as_u16();
        assert_eq!(status(from_put(b"x", Some("application/json"), None)), 415);
        assert_eq!(status(from_put(b"x", None, None)), 415);
        assert_eq!(status(from_put(b"", Some("text/plain"), None)), 400);
        assert_eq!(
            status(from_put(b"x", Some("text/plain"), Some("gzip"))),
            400
        );
    }

    #[test]
    fn accept_chooses_the_delivery() {
        let text = SecretBytes::copy_from(b"ok");
        let pick = |accept, stored| {
            Delivery::negotiate(accept).and_then(|d| d.content_type(stored, &text))
        };
        let (t, b) = (ContentType::Text, ContentType::OctetStream);
        assert_eq!(pick(None, t).unwrap(), "text/plain; charset=UTF-8");
        assert_eq!(pick(None, b).unwrap(), "application/octet-stream");
        assert_eq!(pick(Some("*/*"), t).unwrap(), "*/*");
        assert_eq!(
            pick(Some("application/octet-stream"), t).unwrap(),
            "application/octet-stream"
        );
        assert_eq!(
            pick(Some("text/plain"), b).unwrap(),
            "text/plain; charset=UTF-8"
        );
        assert_eq!(
            pick(Some("image/png, text/plain;q=0.5"), b).unwrap(),
            "text/plain; charset=UTF-8"
        );
        let e = pick(Some("image/png"), t).unwrap_err();
        assert_eq!(e.status().as_u16(), 406);
        assert_eq!(e.body().description, WRONG_ACCEPT);
        let binary = SecretBytes::copy_from(&[0xff, 0xfe]);
        let as_text = Delivery::negotiate(Some("text/plain")).unwrap();
        let e = as_text.content_type(b, &binary).unwrap_err();
        assert_eq!(e.status().as_u16(), 406);
    }
}
