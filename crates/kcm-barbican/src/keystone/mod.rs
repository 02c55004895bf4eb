//! Keystone: validating callers' tokens ([`client`]), reading what they say
//! ([`token`]), remembering validations ([`cache`]), and turning a token's holder
//! into the login kcm's core knows ([`login_for`]).

pub mod cache;
pub mod client;
#[cfg(test)]
pub(crate) mod fake;
pub mod token;

use std::collections::BTreeMap;

use kcm_core::service::FederatedLogin;

use crate::config::DomainMapping;
use crate::roles::map_role_names;
use token::TokenInfo;

/// The identity provider name kcm's principals carry for Keystone users
/// (`keystone:<user id>`).
pub const PROVIDER: &str = "keystone";

/// Why a valid token does not let its holder in (a 403: Keystone vouched for the
/// user, kcm does not admit them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The token is not scoped to a project.
    NotProjectScoped,
    /// The project's domain is not mapped to a tenant.
    UnmappedDomain {
        /// The domain's name.
        name: String,
        /// The domain's id.
        id: String,
    },
    /// The user holds none of `admin`, `member`, `reader` in the project.
    NoKnownRole,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotProjectScoped => f.write_str(
                "the token is not scoped to a project; Barbican needs a project-scoped token",
            ),
            Refusal::UnmappedDomain { name, id } => write!(
                f,
                "the Keystone domain {name:?} ({id}) is not served by this key manager"
            ),
            Refusal::NoKnownRole => f.write_str(
                "the user holds none of the roles admin, member or reader in this project",
            ),
        }
    }
}

/// The login a validated token gives, in the core's terms: the tenant its
/// project's domain maps to (`domains`: Keystone domains by id, else by name), the
/// project (which becomes a system) and the role.
pub fn login_for(
    info: &TokenInfo,
    domains: &BTreeMap<String, DomainMapping>,
) -> Result<FederatedLogin, Refusal> {
    let project = info.project.as_ref().ok_or(Refusal::NotProjectScoped)?;
    let mapping = domains
        .get(&project.domain_id)
        .or_else(|| domains.get(&project.domain_name))
        .ok_or_else(|| Refusal::UnmappedDomain {
            name: project.domain_name.clone(),
            id: project.domain_id.clone(),
        })?;
    let role = map_role_names(info.roles.iter().map(String::as_str)).ok_or(Refusal::NoKnownRole)?;
    Ok(FederatedLogin {
        provider: PROVIDER.into(),
        user_id: info.user_id.clone(),
        tenant: mapping.tenant.clone(),
        project_id: project.id.clone(),
        project_name: project.name.clone(),
        root_key: mapping.root_key.clone(),
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_core::model::Role;
    use token::ProjectScope;

    fn token(domain: (&str, &str), roles: &[&str]) -> TokenInfo {
        TokenInfo {
            user_id: "u1".into(),
            project: Some(ProjectScope {
                id: "p1".into(),
                name: "web".into(),
                domain_id: domain.0.into(),
                domain_name: domain.1.into(),
            }),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            expires_at: time::OffsetDateTime::now_utc(),
        }
    }

    fn domains() -> BTreeMap<String, DomainMapping> {
        BTreeMap::from([
            (
                "Default".to_string(),
                DomainMapping {
                    tenant: "default".into(),
                    root_key: None,
                },
            ),
            (
                "d2".to_string(),
                DomainMapping {
                    tenant: "acme".into(),
                    root_key: Some("rk-1".into()),
                },
            ),
        ])
    }

    #[test]
    fn domains_map_by_id_or_name() {
        let by_name = login_for(&token(("default", "Default"), &["member"]), &domains()).unwrap();
        assert_eq!(
            (by_name.tenant.as_str(), by_name.role),
            ("default", Role::KeyUser)
        );
        assert_eq!(by_name.project_id, "p1");
        let by_id = login_for(&token(("d2", "Acme"), &["admin"]), &domains()).unwrap();
        assert_eq!(by_id.tenant, "acme");
        assert_eq!(by_id.root_key.as_deref(), Some("rk-1"));
    }

    #[test]
    fn what_is_not_admitted_is_named() {
        assert_eq!(
            login_for(&token(("d3", "Other"), &["admin"]), &domains()),
            Err(Refusal::UnmappedDomain {
                name: "Other".into(),
                id: "d3".into()
            })
        );
        assert_eq!(
            login_for(&token(("default", "Default"), &["creator"]), &domains()),
            Err(Refusal::NoKnownRole)
        );
        let mut unscoped = token(("default", "Default"), &["admin"]);
        unscoped.project = None;
        assert_eq!(
            login_for(&unscoped, &domains()),
            Err(Refusal::NotProjectScoped)
        );
    }
}
