//! Orders on the wire. kcm generates what an order asks for at once, so an order
//! is not an object of its own: it is what it made. A `key` order is its symmetric
//! key (marked with the subtype [`ORDER_SUBTYPE`]); an `asymmetric` order is the
//! `rsa` container the core made with the key pair (which carries the algorithm
//! and length, unlike a container a client assembles). The order's id is that
//! object's id, and reading the order shows it `ACTIVE` with its `secret_ref` or
//! `container_ref` from the first read.
//!
//! Certificate orders are refused: kcm is no certificate authority.

use kcm_core::model::{ObjectAttributes, ObjectKind};
use kcm_core::service::{GenerateObject, ObjectInfo};
use serde::{Deserialize, Serialize};

use crate::auth::user_of;
use crate::error::BarbicanError;
use crate::payload::ContentType;
use crate::refs::Refs;
use crate::timefmt;
use crate::wire::status_of;

/// A 400 naming what is wrong with the body.
fn bad(message: impl Into<String>) -> BarbicanError {
    BarbicanError::bad_request(message)
}

/// The subtype that marks a symmetric key (and a key pair's halves) as made by an
/// order.
pub const ORDER_SUBTYPE: &str = "order";

/// Algorithms a `key` order generates (random bytes of the asked length).
const SYMMETRIC_ALGORITHMS: [&str; 5] =
    ["aes", "hmacsha1", "hmacsha256", "hmacsha384", "hmacsha512"];

/// The body of `POST /v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrderBody {
    #[serde(rename = "type")]
    order_type: Option<String>,
    meta: Option<OrderMeta>,
}

/// An order's `meta`, as sent and as shown (what was not given is left out, but
/// `expiration`, which Barbican always shows).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bit_length: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_content_type: Option<String>,
    expiration: Option<String>,
    #[serde(skip_serializing)]
    passphrase: Option<String>,
}

impl NewOrderBody {
    /// What the core is to generate.
    pub fn into_generate(self) -> Result<GenerateObject, BarbicanError> {
        let order_type = self
            .order_type
            .ok_or_else(|| bad("Provided object does not match schema: 'type' is required"))?;
        let meta = match order_type.as_str() {
            "certificate" => {
                return Err(bad(
                    "Certificate orders are not supported: this key manager is no certificate \
                     authority",
                ))
            }
            "key" | "asymmetric" => self
                .meta
                .ok_or_else(|| bad("Provided object does not match schema: 'meta' is required"))?,
            other => {
                return Err(bad(format!(
                    "Order type {other:?} is not one of key, asymmetric"
                )))
            }
        };
        let algorithm = meta
            .algorithm
            .clone()
            .ok_or_else(|| bad("'algorithm' is required in the order's meta"))?;
        let bits = meta
            .bit_length
            .ok_or_else(|| bad("'bit_length' is required in the order's meta"))
            .and_then(|b| {
                u32::try_from(b)
                    .ok()
                    .filter(|b| *b > 0 && b % 8 == 0)
                    .ok_or_else(|| bad("Provided field value is not supported"))
            })?;
        if let Some(ct) = &meta.payload_content_type {
            if ContentType::parse(ct) != Some(ContentType::OctetStream) {
                return Err(bad(format!(
                    "payload_content_type {ct:?} is not supported for generated secrets: use \
                     application/octet-stream"
                )));
            }
        }
        let expiration = match meta.expiration.as_deref() {
            None => None,
            Some(text) => Some(timefmt::read(text).ok_or_else(|| {
                bad(format!(
                    "Invalid date for 'expiration': {text:?} is not an ISO 8601 time"
                ))
            })?),
        };
        let attributes = ObjectAttributes {
            name: meta.name.unwrap_or_default(),
            algorithm: Some(algorithm.clone()),
            bit_length: Some(bits),
            mode: meta.mode,
            content_type: Some(ContentType::OctetStream.as_str().into()),
            subtype: Some(ORDER_SUBTYPE.into()),
            expiration,
            ..ObjectAttributes::default()
        };
        if order_type == "key" {
            if !SYMMETRIC_ALGORITHMS.contains(&algorithm.to_ascii_lowercase().as_str()) {
                return Err(bad(format!(
                    "Key orders generate {} keys; not {algorithm:?}",
                    SYMMETRIC_ALGORITHMS.join(", ")
                )));
            }
            Ok(GenerateObject::Symmetric { bits, attributes })
        } else {
            if !algorithm.eq_ignore_ascii_case("rsa") {
                return Err(bad(format!(
                    "Asymmetric orders generate rsa key pairs; not {algorithm:?}"
                )));
            }
            if meta.passphrase.is_some() {
                return Err(bad(
                    "Passphrase-protected private keys are not supported by this key manager",
                ));
            }
            Ok(GenerateObject::RsaKeyPair { bits, attributes })
        }
    }
}

/// The answer to `POST /v1/orders`.
#[derive(Debug, Serialize)]
pub struct OrderRef {
    /// The order's URL.
    pub order_ref: String,
}

/// An order as Barbican writes it.
#[derive(Debug, Serialize)]
pub struct OrderView {
    #[serde(rename = "type")]
    order_type: &'static str,
    meta: OrderMeta,
    order_ref: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_ref: Option<String>,
    status: &'static str,
    sub_status: &'static str,
    sub_status_message: &'static str,
    created: String,
    updated: String,
    creator_id: Option<String>,
}

impl OrderView {
    /// The order `info` was made by, if an order made it.
    pub fn of(info: &ObjectInfo, refs: &Refs) -> Option<Self> {
        let a = &info.attributes;
        let (order_type, secret_ref, container_ref) = match info.kind {
            ObjectKind::SymmetricKey if a.subtype.as_deref() == Some(ORDER_SUBTYPE) => {
                ("key", Some(refs.secret(info.id)), None)
            }
            ObjectKind::Container if is_generated_pair(a) => {
                ("asymmetric", None, Some(refs.container(info.id)))
            }
            _ => return None,
        };
        Some(Self {
            order_type,
            meta: OrderMeta {
                name: Some(a.name.clone()).filter(|n| !n.is_empty()),
                algorithm: a.algorithm.clone(),
                bit_length: a.bit_length.map(i64::from),
                mode: a.mode.clone(),
                payload_content_type: a.content_type.clone(),
                expiration: a.expiration.map(timefmt::write),
                passphrase: None,
            },
            order_ref: refs.order(info.id),
            secret_ref,
            container_ref,
            status: status_of(info.state),
            sub_status: "Unknown",
            sub_status_message: "Unknown",
            created: timefmt::write(info.created_at),
            updated: timefmt::write(info.updated_at),
            creator_id: Some(user_of(&a.creator).to_owned()).filter(|c| !c.is_empty()),
        })
    }
}

/// An `rsa` container made by an asymmetric order: it carries the algorithm and
/// length the order asked for, which a container a client assembles does not.
fn is_generated_pair(a: &ObjectAttributes) -> bool {
    a.subtype.as_deref() == Some("rsa")
        && a.algorithm
            .as_deref()
            .is_some_and(|alg| alg.eq_ignore_ascii_case("rsa"))
        && a.bit_length.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<GenerateObject, BarbicanError> {
        serde_json::from_str::<NewOrderBody>(json)
            .unwrap()
            .into_generate()
    }

    #[test]
    fn key_and_asymmetric_orders_are_read() {
        let GenerateObject::Symmetric { bits, attributes } = body(
            r#"{"type": "key", "meta": {"name": "k", "algorithm": "AES", "bit_length": 256,
                "mode": "cbc", "payload_content_type": "application/octet-stream"}}"#,
        )
        .unwrap() else {
            panic!("not a symmetric key")
        };
        assert_eq!(bits, 256);
        assert_eq!(attributes.subtype.as_deref(), Some(ORDER_SUBTYPE));
        assert_eq!(attributes.algorithm.as_deref(), Some("AES"));
        let GenerateObject::RsaKeyPair { bits, .. } =
            body(r#"{"type": "asymmetric", "meta": {"algorithm": "rsa", "bit_length": 2048}}"#)
                .unwrap()
        else {
            panic!("not a key pair")
        };
        assert_eq!(bits, 2048);
    }

    #[test]
    fn certificate_and_bad_orders_are_refused() {
        let refusal = |json: &str| {
            let e = body(json).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            e.body().description
        };
        assert!(refusal(r#"{"type": "certificate", "meta": {}}"#).contains("Certificate orders"));
        assert!(refusal(r#"{"type": "key"}"#).contains("'meta'"));
        assert!(refusal(r#"{"type": "key", "meta": {"bit_length": 256}}"#).contains("algorithm"));
        assert!(
            refusal(r#"{"type": "key", "meta": {"algorithm": "aes", "bit_length": 100}}"#)
                .contains("not supported")
        );
        assert!(
            refusal(r#"{"type": "key", "meta": {"algorithm": "des", "bit_length": 64}}"#)
                .contains("not \"des\"")
        );
        assert!(refusal(
            r#"{"type": "asymmetric", "meta": {"algorithm": "rsa", "bit_length": 2048, "passphrase": "p"}}"#
        )
        .contains("Passphrase"));
        assert!(refusal(r#"{"type": "dsa", "meta": {}}"#).contains("not one of"));
    }
}
