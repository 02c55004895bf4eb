//! A container on the wire: the body of `POST /v1/containers` read into a new
//! object of kind container (its type as the subtype, its secret refs as links),
//! and a container written as Barbican's JSON.

use kcm_core::model::{ObjectAttributes, ObjectId, ObjectKind, ObjectLink};
use kcm_core::service::{NewObject, ObjectInfo};
use serde::{Deserialize, Serialize};

use crate::auth::user_of;
use crate::error::BarbicanError;
use crate::refs::{id_in_ref, Refs};
use crate::timefmt;
use crate::wire::consumer::ContainerConsumerView;
use crate::wire::status_of;

/// A 400 naming what is wrong with the body.
fn bad(message: impl Into<String>) -> BarbicanError {
    BarbicanError::bad_request(message)
}

/// A container type: the member names it allows (`None`: any) and requires.
struct ContainerType {
    name: &'static str,
    allowed: Option<&'static [&'static str]>,
    required: &'static [&'static str],
}

/// The container types Barbican knows.
const TYPES: [ContainerType; 3] = [
    ContainerType {
        name: "generic",
        allowed: None,
        required: &[],
    },
    ContainerType {
        name: "rsa",
        allowed: Some(&["public_key", "private_key", "private_key_passphrase"]),
        required: &["public_key", "private_key"],
    },
    ContainerType {
        name: "certificate",
        allowed: Some(&[
            "certificate",
            "private_key",
            "private_key_passphrase",
            "intermediates",
        ]),
        required: &["certificate"],
    },
];

/// The body of `POST /v1/containers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContainerBody {
    #[serde(rename = "type")]
    container_type: Option<String>,
    name: Option<String>,
    #[serde(default)]
    secret_refs: Vec<SecretRefBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRefBody {
    name: Option<String>,
    secret_ref: String,
}

impl NewContainerBody {
    /// The container the body asks for, checked as Barbican checks one.
    pub fn into_object(self) -> Result<NewObject, BarbicanError> {
        let container_type = self
            .container_type
            .ok_or_else(|| bad("Provided object does not match schema: 'type' is required"))?;
        let ContainerType {
            allowed, required, ..
        } = TYPES
            .iter()
            .find(|t| t.name == container_type)
            .ok_or_else(|| {
                bad(format!(
                    "Container type {container_type:?} is not one of generic, rsa, certificate"
                ))
            })?;
        let mut links: Vec<ObjectLink> = Vec::with_capacity(self.secret_refs.len());
        for r in self.secret_refs {
            let name = r.name.unwrap_or_default();
            let object = id_in_ref(&r.secret_ref, "secrets")
                .and_then(ObjectId::parse)
                .ok_or_else(|| {
                    bad(format!(
                        "secret_ref {:?} is not a secret's URL",
                        r.secret_ref
                    ))
                })?;
            if let Some(allowed) = allowed {
                if !allowed.contains(&name.as_str()) {
                    return Err(bad(format!(
                        "A {container_type} container holds only {}; not {name:?}",
                        allowed.join(", ")
                    )));
                }
            }
            if links.iter().any(|l| l.name == name && !name.is_empty()) {
                return Err(bad("Duplicate reference names are not allowed."));
            }
            if links.iter().any(|l| l.object == object) {
                return Err(bad("Duplicate secret ids are not allowed."));
            }
            links.push(ObjectLink { name, object });
        }
        if !required
            .iter()
            .all(|name| links.iter().any(|l| l.name == *name))
        {
            let reason = match container_type.as_str() {
                "rsa" => "The minimum required reference names are 'public_key' and'private_key' \
                          for RSA type"
                    .to_owned(),
                _ => format!(
                    "The minimum required reference name is {} for {container_type} type",
                    required
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            };
            return Err(BarbicanError::schema("Container", &reason, "secret_refs"));
        }
        Ok(NewObject {
            kind: ObjectKind::Container,
            attributes: ObjectAttributes {
                name: self.name.unwrap_or_default(),
                subtype: Some(container_type),
                links,
                ..ObjectAttributes::default()
            },
            payload: None,
        })
    }
}

/// A member of a container as Barbican lists it.
#[derive(Debug, Serialize)]
pub struct SecretRefView {
    name: Option<String>,
    secret_ref: String,
}

/// A container as Barbican writes it.
#[derive(Debug, Serialize)]
pub struct ContainerView {
    #[serde(rename = "type")]
    container_type: String,
    status: &'static str,
    name: Option<String>,
    consumers: Vec<ContainerConsumerView>,
    container_ref: String,
    secret_refs: Vec<SecretRefView>,
    created: String,
    updated: String,
    creator_id: Option<String>,
}

impl ContainerView {
    /// `info` (a container) with refs under `refs`.
    pub fn new(info: &ObjectInfo, refs: &Refs) -> Self {
        let a = &info.attributes;
        Self {
            container_type: a.subtype.clone().unwrap_or_else(|| "generic".into()),
            status: status_of(info.state),
            name: Some(a.name.clone()).filter(|n| !n.is_empty()),
            consumers: a
                .consumers
                .iter()
                .filter_map(ContainerConsumerView::of)
                .collect(),
            container_ref: refs.container(info.id),
            secret_refs: a
                .links
                .iter()
                .map(|l| SecretRefView {
                    name: Some(l.name.clone()).filter(|n| !n.is_empty()),
                    secret_ref: refs.secret(l.object),
                })
                .collect(),
            created: timefmt::write(info.created_at),
            updated: timefmt::write(info.updated_at),
            creator_id: Some(user_of(&a.creator).to_owned()).filter(|c| !c.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "11111111-1111-4111-8111-111111111111";
    const S2: &str = "22222222-2222-4222-8222-222222222222";

    fn body(json: &str) -> Result<NewObject, BarbicanError> {
        serde_json::from_str::<NewContainerBody>(json)
            .unwrap()
            .into_object()
    }

    #[test]
    fn an_rsa_container_is_read() {
        let new = body(&format!(
            r#"{{"type": "rsa", "name": "pair", "secret_refs": [
                {{"name": "private_key", "secret_ref": "http://h/v1/secrets/{S1}"}},
                {{"name": "public_key", "secret_ref": "http://h/v1/secrets/{S2}/"}}]}}"#
        ))
        .unwrap();
        assert_eq!(new.kind, ObjectKind::Container);
        assert_eq!(new.attributes.subtype.as_deref(), Some("rsa"));
        assert_eq!(new.attributes.links.len(), 2);
        assert_eq!(new.attributes.links[1].object.to_string(), S2);
    }

    #[test]
    fn bad_containers_are_refused() {
        let refusal = |json: String| body(&json).unwrap_err().body().description;
        assert!(refusal(r#"{"name": "x"}"#.into()).contains("'type'"));
        assert!(refusal(r#"{"type": "dsa"}"#.into()).contains("not one of"));
        assert!(refusal(format!(
            r#"{{"type": "rsa", "secret_refs": [{{"name": "private_key", "secret_ref": "{S1}"}}]}}"#
        ))
        .contains("public_key"));
        assert!(refusal(format!(
            r#"{{"type": "certificate", "secret_refs": [{{"name": "cert", "secret_ref": "{S1}"}}]}}"#
        ))
        .contains("holds only"));
        assert!(refusal(format!(
            r#"{{"type": "generic", "secret_refs": [{{"name": "a", "secret_ref": "{S1}"}},
                {{"name": "a", "secret_ref": "{S2}"}}]}}"#
        ))
        .contains("Duplicate reference names"));
        assert!(refusal(
            r#"{"type": "generic", "secret_refs": [{"secret_ref": "http://h/v1/containers/x"}]}"#
                .into()
        )
        .contains("not a secret's URL"));
        assert!(body(r#"{"type": "generic"}"#).is_ok());
    }
}
