//! A request body read once, as JSON, and checked against its operation's shape.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use zeroize::Zeroize;

use super::Member;
use crate::error::AwsError;

/// A request whose members satisfy its operation's shape. The operation reads its
/// fields from it with [`Request::parse`]; the JSON text is not read a second time.
pub struct Request {
    members: Map<String, Value>,
    shape: &'static [Member],
}

impl Request {
    /// Reads `body` (empty = `{}`) and checks it against `shape`. Not JSON:
    /// `SerializationException`; JSON but not an object (every request of AWS's JSON
    /// protocol is one): `ValidationException`; against the shape: AWS's
    /// "N validation errors detected: …" (see the `shape` module).
    pub fn check(body: &[u8], shape: &'static [Member]) -> Result<Self, AwsError> {
        let body = if body.is_empty() {
            b"{}".as_slice()
        } else {
            body
        };
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            AwsError::bad_request(
                "SerializationException",
                format!("request body is not valid JSON: {e}"),
            )
        })?;
        let Value::Object(members) = value else {
            return Err(AwsError::validation(
                "invalid request: the request body is not a JSON object",
            ));
        };
        let request = Self { members, shape };
        super::check::check(shape, &request.members)?;
        Ok(request)
    }

    /// Whether the request asks for a dry run (`"DryRun": true`).
    pub fn dry_run(&self) -> bool {
        self.members.get("DryRun").and_then(Value::as_bool) == Some(true)
    }

    /// The first member of AWS's shape that kcm does not take and that this request
    /// sends, with why: every operation's type would otherwise ignore it, and a
    /// caller sending `Recipient` expects its plaintext sealed for an enclave, not
    /// returned in the clear.
    pub fn member_not_taken(&self) -> Option<&'static str> {
        let sent = |name: &str| self.members.get(name).is_some_and(|v| !v.is_null());
        NOT_TAKEN
            .iter()
            .find(|(name, _)| sent(name))
            .map(|(_, why)| *why)
            .or_else(|| {
                let constraints = self.members.get("Constraints")?;
                constraints
                    .get("SourceArn")
                    .filter(|v| !v.is_null())
                    .map(|_| {
                        "the grant constraint SourceArn (for AWS services) is not supported by kcm"
                    })
            })
    }

    /// The request as the operation's own type. Members sent as `null` are left out
    /// (AWS reads them as absent). The members move into it (a string is not
    /// copied; a blob's base64 goes into a zeroizing buffer before it is decoded).
    ///
    /// The shape has been checked, so what can still fail here is a sensitive
    /// blob's own decoding (a character outside base64's alphabet: the check reads
    /// only the length of a plaintext, whose one decode is here) — after its text
    /// has moved into the zeroizing buffer. Every other member that could fail was
    /// checked whole (the alphabet of the other blobs included), so that no read
    /// fails midway leaving a plaintext's text unread, to be freed unwiped.
    pub fn parse<T: DeserializeOwned>(mut self) -> Result<T, AwsError> {
        let mut members = std::mem::take(&mut self.members);
        members.retain(|_, v| !v.is_null());
        serde_json::from_value(Value::Object(members)).map_err(|e| {
            AwsError::bad_request(
                "SerializationException",
                format!("the request cannot be read: {e}"),
            )
        })
    }
}

/// Members of AWS's shapes kcm does not take, and why.
const NOT_TAKEN: &[(&str, &str)] = &[
    (
        "Recipient",
        "Recipient (AWS Nitro Enclaves attestation) is not supported by kcm",
    ),
    (
        "GranteeServicePrincipal",
        "service principals (GranteeServicePrincipal) are not supported by kcm: its \
         principals are access keys, roles and accounts",
    ),
    (
        "RetiringServicePrincipal",
        "service principals (RetiringServicePrincipal) are not supported by kcm: its \
         principals are access keys, roles and accounts",
    ),
    (
        "XksKeyId",
        "XksKeyId (keys in an external key store) is not supported by kcm's AWS API: \
         kcm's XKS root keys are managed with `kcm root-key`",
    ),
];

/// A request dropped unread (refused) may still hold a plaintext's base64: its
/// sensitive members are wiped.
impl Drop for Request {
    fn drop(&mut self) {
        for member in self.shape.iter().filter(|m| m.sensitive) {
            if let Some(Value::String(text)) = self.members.get_mut(member.name) {
                text.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape;
    use kcm_core::authz::Op;
    use kcm_frontdoor::DoorError;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Paging {
        limit: Option<i64>,
        marker: Option<String>,
    }

    #[test]
    fn only_a_json_object_is_read_as_a_request() {
        let paging = shape::of(Op::ListKeys);
        let code = |body: &[u8]| match Request::check(body, paging) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        for not_an_object in [&b"[1, null]"[..], b" []", b"\"x\"", b"null", b"3"] {
            assert_eq!(code(not_an_object), "ValidationException");
        }
        for not_json in [&b"{not json"[..], b"[1,", b"nul"] {
            assert_eq!(code(not_json), "SerializationException");
        }
        assert_eq!(code(br#"{"Limit": "two"}"#), "SerializationException");
        let read = |body: &[u8]| {
            Request::check(body, paging)
                .unwrap()
                .parse::<Paging>()
                .unwrap()
        };
        assert_eq!(read(br#" {"Limit": 1}"#).limit, Some(1));
        assert_eq!(read(b"").limit, None);
        assert_eq!(read(br#"{"Limit": null}"#).limit, None);
    }

    #[test]
    fn a_blob_that_is_not_base64_is_unreadable() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Blob {
            #[serde(rename = "Plaintext", deserialize_with = "crate::codec::blob")]
            plaintext: zeroize::Zeroizing<Vec<u8>>,
        }
        let body = br#"{"KeyId":"k","Plaintext":"AA*A"}"#;
        let request = Request::check(body, shape::of(Op::Encrypt)).unwrap();
        let err = request.parse::<Blob>().unwrap_err();
        assert_eq!(err.code(), "SerializationException");
    }

    #[test]
    fn dry_run_is_read_from_the_request() {
        let shape = shape::of(Op::Encrypt);
        let body = br#"{"KeyId":"k","Plaintext":"AA==","DryRun":true}"#;
        assert!(Request::check(body, shape).unwrap().dry_run());
        let body = br#"{"KeyId":"k","Plaintext":"AA==","DryRun":false}"#;
        assert!(!Request::check(body, shape).unwrap().dry_run());
    }
}
