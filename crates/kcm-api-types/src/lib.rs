//! # kcm-api-types
//!
//! The request and response bodies of kcm's native REST API (`/v1`), in one place for
//! both sides of the wire: the server (`kcm-rest-api`) serialises them and describes
//! them in its OpenAPI document, the client (`kcm-client`, and through it the `kcm`
//! CLI) deserialises them. Renaming a field is then a compile error in the client, not
//! a surprise for its users.
//!
//! Field names are snake_case; times are RFC 3339 strings in UTC. Every type is
//! `Serialize + Deserialize`; with the `openapi` feature (the server turns it on)
//! each also derives utoipa's `ToSchema` or `IntoParams`, so the document describes
//! exactly what is sent. Clients leave the feature off and do not build utoipa.
//!
//! This crate holds data only: how the core's values become these bodies is the
//! server's business, and the audit records inside an [`AuditPage`] are the core's
//! own type, which the pages are generic over.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access_keys;
mod audit;
mod error;
mod keys;
mod root_keys;
mod systems;
mod tenants;

pub use access_keys::*;
pub use audit::*;
pub use error::*;
pub use keys::*;
pub use root_keys::*;
pub use systems::*;
pub use tenants::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_access_key_is_flat_and_redacted_in_debug() {
        let key = CreatedAccessKey {
            access_key: AccessKey {
                access_key_id: "KCMAAAA".into(),
                kind: "sigv4".into(),
                role: "key-user".into(),
                tenant_id: None,
                system: None,
                description: String::new(),
                enabled: true,
                operations: None,
                created_at: "1970-01-01T00:00:00Z".into(),
                arn: None,
            },
            secret_access_key: "s3cr3t".into(),
            vault_token: Some("kcm.KCMAAAA.s3cr3t".into()),
        };
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json["access_key_id"], "KCMAAAA");
        assert_eq!(json["secret_access_key"], "s3cr3t");
        assert_eq!(json["vault_token"], "kcm.KCMAAAA.s3cr3t");
        assert!(!format!("{key:?}").contains("s3cr3t"));
        // And back: a client reads what the server wrote.
        let back: CreatedAccessKey = serde_json::from_value(json).unwrap();
        assert_eq!(back.access_key, key.access_key);
    }

    #[test]
    fn optional_request_fields_are_left_out_rather_than_sent_as_null() {
        let body = CreateRootKeyRequest::default();
        assert_eq!(serde_json::to_string(&body).unwrap(), "{}");
        let body = LinkSystemRequest::default();
        assert_eq!(serde_json::to_string(&body).unwrap(), "{}");
    }

    #[test]
    fn error_bodies_have_the_documented_shape() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error": {"code": "NotFound", "message": "system payments does not exist"}}"#,
        )
        .unwrap();
        assert_eq!(body.error.code, code::NOT_FOUND);
    }
}
