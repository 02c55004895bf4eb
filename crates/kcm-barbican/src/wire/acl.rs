//! Read ACLs: `{"read": {"users": [...], "project-access": bool}}`. Users are
//! Keystone user ids on the wire and principal ids (`keystone:<id>`) in the core.

use kcm_core::model::ObjectAcl;
use kcm_core::service::ObjectInfo;
use serde::{Deserialize, Serialize};

use crate::auth::{principal_of, user_of};
use crate::error::BarbicanError;
use crate::timefmt;

/// The body of `PUT` and `PATCH …/acl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclBody {
    read: AclRead,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclRead {
    users: Option<Vec<String>>,
    #[serde(rename = "project-access")]
    project_access: Option<bool>,
}

impl AclBody {
    /// The ACL a `PUT` sets: what is left out takes Barbican's default (no users,
    /// project access on).
    pub fn replacement(self) -> Result<ObjectAcl, BarbicanError> {
        Ok(ObjectAcl {
            project_access: self.read.project_access.unwrap_or(true),
            users: principals(self.read.users.unwrap_or_default())?,
        })
    }

    /// The ACL a `PATCH` sets. It changes what it names and keeps the rest, which
    /// this door would have to read first — a second core call; so a `PATCH` here
    /// must name both (python-barbicanclient sends both, through `PUT`).
    pub fn patch(self) -> Result<ObjectAcl, BarbicanError> {
        match (self.read.users, self.read.project_access) {
            (Some(users), Some(project_access)) => Ok(ObjectAcl {
                project_access,
                users: principals(users)?,
            }),
            _ => Err(BarbicanError::bad_request(
                "This key manager updates an ACL as a whole: send both 'users' and \
                 'project-access' (or use PUT)",
            )),
        }
    }
}

/// Keystone user ids as principal ids; an empty id is refused.
fn principals(users: Vec<String>) -> Result<Vec<String>, BarbicanError> {
    let mut out: Vec<String> = Vec::with_capacity(users.len());
    for user in users {
        let user = user.trim();
        if user.is_empty() {
            return Err(BarbicanError::bad_request(
                "An ACL user id must not be empty",
            ));
        }
        let principal = principal_of(user);
        if !out.contains(&principal) {
            out.push(principal);
        }
    }
    Ok(out)
}

/// `GET …/acl`.
#[derive(Debug, Serialize)]
pub struct AclView {
    read: AclReadView,
}

#[derive(Debug, Serialize)]
struct AclReadView {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<Vec<String>>,
    #[serde(rename = "project-access")]
    project_access: bool,
}

impl AclView {
    /// The read ACL of `info`: the default one as Barbican shows "no ACL", an
    /// explicit one with its users (kcm keeps no times of its own for an ACL: the
    /// object's are shown).
    pub fn new(info: &ObjectInfo) -> Self {
        let acl = &info.attributes.acl;
        let read = if *acl == ObjectAcl::default() {
            AclReadView {
                created: None,
                updated: None,
                users: None,
                project_access: true,
            }
        } else {
            AclReadView {
                created: Some(timefmt::write(info.created_at)),
                updated: Some(timefmt::write(info.updated_at)),
                users: Some(acl.users.iter().map(|u| user_of(u).to_owned()).collect()),
                project_access: acl.project_access,
            }
        };
        Self { read }
    }
}

/// The answer to `PUT` and `PATCH …/acl`.
#[derive(Debug, Serialize)]
pub struct AclRef {
    /// The ACL's URL.
    pub acl_ref: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> AclBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn put_fills_in_barbicans_defaults() {
        let acl = body(r#"{"read": {"users": ["u1", "u1", "u2"]}}"#)
            .replacement()
            .unwrap();
        assert!(acl.project_access);
        assert_eq!(acl.users, ["keystone:u1", "keystone:u2"]);
        let acl = body(r#"{"read": {"project-access": false}}"#)
            .replacement()
            .unwrap();
        assert_eq!(
            acl,
            ObjectAcl {
                project_access: false,
                users: vec![]
            }
        );
        assert!(body(r#"{"read": {"users": [""]}}"#).replacement().is_err());
    }

    #[test]
    fn patch_needs_both_fields() {
        assert!(body(r#"{"read": {"users": [], "project-access": true}}"#)
            .patch()
            .is_ok());
        let e = body(r#"{"read": {"project-access": false}}"#)
            .patch()
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(serde_json::from_str::<AclBody>(r#"{"write": {}}"#).is_err());
    }
}
