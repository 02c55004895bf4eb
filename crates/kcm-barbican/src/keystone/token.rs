//! What a Keystone token says about its holder: the JSON body of Keystone's
//! `GET /v3/auth/tokens` (and of `POST`, which issues kcm's own token), read into
//! [`TokenInfo`]. Only the fields the door uses are read; anything else Keystone
//! adds is ignored.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A validated token's holder, scope and roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The user's id.
    pub user_id: String,
    /// The project the token is scoped to (`None`: unscoped, or scoped to a domain
    /// or the system, which the door refuses).
    pub project: Option<ProjectScope>,
    /// The names of the roles the user holds in that project (implied roles
    /// included, as Keystone lists them).
    pub roles: Vec<String>,
    /// When Keystone stops honouring the token.
    pub expires_at: OffsetDateTime,
}

/// The project a token is scoped to, with its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectScope {
    /// The project's id.
    pub id: String,
    /// The project's name.
    pub name: String,
    /// Its domain's id.
    pub domain_id: String,
    /// Its domain's name.
    pub domain_name: String,
}

#[derive(Deserialize)]
struct Body {
    token: Token,
}

#[derive(Deserialize)]
struct Token {
    expires_at: String,
    user: Named,
    project: Option<Project>,
    #[serde(default)]
    roles: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Project {
    id: String,
    #[serde(default)]
    name: String,
    domain: Named,
}

impl TokenInfo {
    /// Reads Keystone's answer. The error names what was missing or malformed.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let body: Body = serde_json::from_slice(body)
            .map_err(|e| format!("Keystone's token body is not understood: {e}"))?;
        let token = body.token;
        Ok(Self {
            expires_at: parse_time(&token.expires_at)?,
            user_id: token.user.id,
            project: token.project.map(|p| ProjectScope {
                id: p.id,
                name: p.name,
                domain_id: p.domain.id,
                domain_name: p.domain.name,
            }),
            roles: token.roles.into_iter().map(|r| r.name).collect(),
        })
    }
}

/// Reads only `token.expires_at` (the answer to kcm's own password authentication).
pub fn parse_expiry(body: &[u8]) -> Result<OffsetDateTime, String> {
    #[derive(Deserialize)]
    struct Body {
        token: Expiry,
    }
    #[derive(Deserialize)]
    struct Expiry {
        expires_at: String,
    }
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| format!("Keystone's token body is not understood: {e}"))?;
    parse_time(&body.token.expires_at)
}

/// Keystone writes `2015-11-09T01:42:57.527363Z` (RFC 3339, UTC).
fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("Keystone's expires_at {text:?} is not a time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_token_is_read() {
        let body = br#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default",
            "name": "Default"}, "id": "u1", "name": "alice", "password_expires_at": null},
            "audit_ids": ["x"], "expires_at": "2030-01-02T03:04:05.123456Z",
            "issued_at": "2030-01-02T02:04:05.000000Z",
            "project": {"domain": {"id": "d1", "name": "Acme"}, "id": "p1", "name": "web"},
            "is_domain": false, "roles": [{"id": "r1", "name": "member"},
            {"id": "r2", "name": "reader"}]}}"#;
        let info = TokenInfo::parse(body).unwrap();
        assert_eq!(info.user_id, "u1");
        assert_eq!(info.roles, ["member", "reader"]);
        let p = info.project.unwrap();
        assert_eq!(
            (
                p.id.as_str(),
                p.name.as_str(),
                p.domain_id.as_str(),
                p.domain_name.as_str()
            ),
            ("p1", "web", "d1", "Acme")
        );
        assert_eq!(info.expires_at.unix_timestamp(), 1_893_553_445);
    }

    #[test]
    fn a_domain_token_has_no_project() {
        let body = br#"{"token": {"user": {"id": "u1"}, "expires_at": "2030-01-02T03:04:05Z",
            "domain": {"id": "d1", "name": "Acme"}, "roles": []}}"#;
        assert_eq!(TokenInfo::parse(body).unwrap().project, None);
    }

    #[test]
    fn a_bad_body_is_named() {
        let e = TokenInfo::parse(br#"{"token": {"user": {"id": "u"}, "expires_at": "soon"}}"#)
            .unwrap_err();
        assert!(e.contains("expires_at"), "{e}");
        assert!(TokenInfo::parse(b"<html>").is_err());
    }
}
