//! A secret on the wire: the body of `POST /v1/secrets` read into a new object,
//! and an object written as Barbican's secret JSON.

use kcm_core::model::{ObjectAttributes, ObjectKind};
use kcm_core::service::{NewObject, ObjectInfo};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::user_of;
use crate::error::BarbicanError;
use crate::microversion::Microversion;
use crate::payload::{self, ContentType};
use crate::refs::Refs;
use crate::timefmt;
use crate::wire::{status_of, ConsumerView};

/// A 400 naming what is wrong with the body.
fn bad(message: impl Into<String>) -> BarbicanError {
    BarbicanError::bad_request(message)
}

/// Milliseconds since the Unix epoch now.
fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

/// Barbican's secret types, each the kind of object it is.
pub fn kind_of_secret_type(secret_type: &str) -> Option<ObjectKind> {
    ObjectKind::parse(secret_type)
        .filter(|k| !matches!(k, ObjectKind::Container | ObjectKind::VersionedSecret))
}

/// The body of `POST /v1/secrets`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecretBody {
    name: Option<String>,
    expiration: Option<String>,
    algorithm: Option<String>,
    bit_length: Option<i64>,
    mode: Option<String>,
    payload: Option<Zeroizing<String>>,
    payload_content_type: Option<String>,
    payload_content_encoding: Option<String>,
    secret_type: Option<String>,
    transport_key_needed: Option<String>,
    transport_key_id: Option<String>,
}

impl std::fmt::Debug for NewSecretBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecretBody")
            .field("name", &self.name)
            .field("secret_type", &self.secret_type)
            .field("payload", &self.payload.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

impl NewSecretBody {
    /// The object the body asks for, checked as Barbican checks a new secret.
    pub fn into_object(self) -> Result<NewObject, BarbicanError> {
        if self.transport_key_id.is_some()
            || self
                .transport_key_needed
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("false"))
        {
            return Err(bad(
                "Transport keys are not supported by this key manager: send the payload itself",
            ));
        }
        let kind = match self.secret_type.as_deref() {
            None => ObjectKind::OpaqueData,
            Some(t) => kind_of_secret_type(t).ok_or_else(|| {
                bad(format!(
                    "secret_type {t:?} is not one of symmetric, public, private, passphrase, \
                     certificate, opaque"
                ))
            })?,
        };
        let bit_length = match self.bit_length {
            None => None,
            Some(b) => Some(
                u32::try_from(b)
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| bad("bit_length must be greater than zero"))?,
            ),
        };
        let expiration = match self.expiration.as_deref() {
            None => None,
            Some(text) => {
                let at = timefmt::read(text).ok_or_else(|| {
                    BarbicanError::schema("Secret", "Invalid date for 'expiration'", "expiration")
                })?;
                if at <= now_ms() {
                    return Err(BarbicanError::schema(
                        "Secret",
                        "'expiration' is before current time",
                        "expiration",
                    ));
                }
                Some(at)
            }
        };
        let (payload, content_type) = match (&self.payload, &self.payload_content_type) {
            (None, None) => (None, None),
            (Some(_), None) => {
                return Err(BarbicanError::schema(
                    "Secret",
                    "If 'payload' is supplied, 'payload_content_type' must also be supplied.",
                    "payload_content_type",
                ))
            }
            (None, Some(_)) => {
                return Err(BarbicanError::schema(
                    "Secret",
                    "If 'payload_content_type' is supplied, 'payload' must also be supplied.",
                    "payload",
                ))
            }
            (Some(p), Some(ct)) => {
                let (bytes, ct) =
                    payload::from_json(p, ct, self.payload_content_encoding.as_deref())?;
                (Some(bytes), Some(ct.as_str().to_owned()))
            }
        };
        if payload.is_none() && self.payload_content_encoding.is_some() {
            return Err(bad(
                "'payload_content_encoding' is only allowed with a 'payload'",
            ));
        }
        Ok(NewObject {
            kind,
            attributes: ObjectAttributes {
                name: self.name.unwrap_or_default(),
                algorithm: self.algorithm,
                bit_length,
                mode: self.mode,
                content_type,
                expiration,
                ..ObjectAttributes::default()
            },
            payload,
        })
    }
}

/// `content_types` of a secret that holds a payload.
#[derive(Debug, Serialize)]
pub struct ContentTypes {
    /// The type the payload is served as by default.
    pub default: &'static str,
}

/// A secret as Barbican writes it (`GET /v1/secrets/{id}`, list entries).
#[derive(Debug, Serialize)]
pub struct SecretView {
    status: &'static str,
    created: String,
    updated: String,
    expiration: Option<String>,
    algorithm: Option<String>,
    bit_length: Option<u32>,
    mode: Option<String>,
    name: Option<String>,
    secret_ref: String,
    secret_type: &'static str,
    creator_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_types: Option<ContentTypes>,
    /// Listed from microversion 1.1 on.
    #[serde(skip_serializing_if = "Option::is_none")]
    consumers: Option<Vec<ConsumerView>>,
}

/// The content type a stored payload is served as by default.
pub fn stored_content_type(info: &ObjectInfo) -> ContentType {
    info.attributes
        .content_type
        .as_deref()
        .and_then(ContentType::parse)
        .unwrap_or(ContentType::OctetStream)
}

impl SecretView {
    /// `info` as a secret, with refs under `refs`, for a client speaking `version`.
    pub fn new(info: &ObjectInfo, refs: &Refs, version: Microversion) -> Self {
        let a = &info.attributes;
        Self {
            status: status_of(info.state),
            created: timefmt::write(info.created_at),
            updated: timefmt::write(info.updated_at),
            expiration: a.expiration.map(timefmt::write),
            algorithm: a.algorithm.clone(),
            bit_length: a.bit_length,
            mode: a.mode.clone(),
            name: Some(a.name.clone()).filter(|n| !n.is_empty()),
            secret_ref: refs.secret(info.id),
            secret_type: info.kind.as_str(),
            creator_id: Some(user_of(&a.creator).to_owned()).filter(|c| !c.is_empty()),
            content_types: info.has_payload.then(|| ContentTypes {
                default: stored_content_type(info).as_str(),
            }),
            consumers: (version >= Microversion::V1_1)
                .then(|| a.consumers.iter().map(ConsumerView::plain).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<NewObject, BarbicanError> {
        serde_json::from_str::<NewSecretBody>(json)
            .unwrap()
            .into_object()
    }

    #[test]
    fn a_full_secret_is_read() {
        let new = body(
            r#"{"name": "AES key", "expiration": "2999-12-28T19:14:44.180394",
                "algorithm": "aes", "bit_length": 256, "mode": "cbc", "payload": "YmVlcg==",
                "payload_content_type": "application/octet-stream",
                "payload_content_encoding": "base64", "secret_type": "symmetric"}"#,
        )
        .unwrap();
        assert_eq!(new.kind, ObjectKind::SymmetricKey);
        assert_eq!(new.payload.unwrap().expose_secret(), b"beer");
        let a = new.attributes;
        assert_eq!(a.name, "AES key");
        assert_eq!(a.bit_length, Some(256));
        assert_eq!(a.content_type.as_deref(), Some("application/octet-stream"));
        assert!(a.expiration.is_some());
    }

    #[test]
    fn a_metadata_only_secret_is_opaque_and_waits() {
        let new = body("{}").unwrap();
        assert_eq!(new.kind, ObjectKind::OpaqueData);
        assert!(new.payload.is_none());
        assert_eq!(new.attributes.content_type, None);
    }

    #[test]
    fn bad_secrets_are_refused() {
        let status = |json: &str| body(json).unwrap_err().status().as_u16();
        assert_eq!(status(r#"{"payload": "x"}"#), 400);
        assert_eq!(status(r#"{"payload_content_type": "text/plain"}"#), 400);
        assert_eq!(status(r#"{"secret_type": "container"}"#), 400);
        assert_eq!(status(r#"{"bit_length": 0}"#), 400);
        assert_eq!(status(r#"{"expiration": "soon"}"#), 400);
        assert_eq!(status(r#"{"transport_key_needed": "true"}"#), 400);
        assert!(serde_json::from_str::<NewSecretBody>(r#"{"nmae": "x"}"#).is_err());
    }

    #[test]
    fn the_payload_never_shows_in_debug() {
        let b: NewSecretBody =
            serde_json::from_str(r#"{"payload": "hunter2", "payload_content_type": "text/plain"}"#)
                .unwrap();
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
