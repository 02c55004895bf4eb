//! Principals for users an identity provider vouched for (Keystone, for the
//! Barbican door): the provider's domain is a kcm tenant and its project a system
//! of that tenant, registered on first use below the tenant's root key.
//!
//! The door proves who the user is (it validated the token with the provider) and
//! maps the provider's roles onto a [`Role`]; what that principal may then do is
//! decided by the core, as for an access key, with the project's system as its
//! scope.

use std::collections::BTreeMap;

use super::systems::NewSystem;
use super::Service;
use crate::authz::Principal;
use crate::error::{Error, Result};
use crate::model::*;
use crate::store::Write;

/// The kind of the systems registered for a federated project.
pub const PROJECT_SYSTEM_KIND: &str = "openstack-project";

/// A user an identity provider vouched for, in one project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedLogin {
    /// The provider (`keystone`): the first part of the principal's name and of
    /// the project's system name.
    pub provider: String,
    /// The user's id at the provider.
    pub user_id: String,
    /// The kcm tenant the user's domain maps to (it must exist).
    pub tenant: String,
    /// The project's id at the provider.
    pub project_id: String,
    /// The project's name, kept as the system's description.
    pub project_name: String,
    /// The root key a new project system is linked to (else the tenant's default).
    pub root_key: Option<String>,
    /// The user's role, mapped from the provider's roles by the door.
    pub role: Role,
}

/// Whether `text` is 1–`max` characters a provider id may hold in kcm names.
fn is_id(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl FederatedLogin {
    fn validate(&self) -> Result<()> {
        if !is_id(&self.provider, 16) || !is_id(&self.user_id, 64) || !is_id(&self.project_id, 47) {
            return Err(Error::invalid(
                "a federated provider, user id and project id are short runs of letters, digits, '-', '_' or '.'",
            ));
        }
        if self.role == Role::SystemAdmin {
            return Err(Error::denied("a federated user cannot be the operator"));
        }
        Ok(())
    }

    /// The name of the project's system: `<provider>-<project id>`.
    pub fn system_name(&self) -> String {
        format!("{}-{}", self.provider, self.project_id)
    }
}

impl Service {
    /// The principal of `login`: its tenant's, scoped to its project's system,
    /// which is registered (and linked to `login.root_key` or the tenant's default
    /// root key) the first time the project is seen. Refused when the tenant does
    /// not exist.
    pub async fn federated_principal(&self, login: &FederatedLogin) -> Result<Principal> {
        login.validate()?;
        let tenant = self
            .store
            .tenant_by_name(&login.tenant)
            .await?
            .ok_or_else(|| {
                Error::denied(format!(
                    "the {} domain of user {} maps to kcm tenant {:?}, which does not exist",
                    login.provider, login.user_id, login.tenant
                ))
            })?;
        let name = login.system_name();
        let system = match self.store.system_by_name(tenant.id, &name).await? {
            Some(system) => system,
            None => self.register_project_system(&tenant, login, &name).await?,
        };
        Ok(Principal {
            access_key_id: format!("{}:{}", login.provider, login.user_id),
            tenant_id: Some(tenant.id),
            account_id: tenant.account_id,
            role: login.role,
            system_scope: Some(system.id),
            operations: None,
        })
    }

    /// Registers the system of a project seen for the first time (or returns the
    /// one another request registered meanwhile).
    async fn register_project_system(
        &self,
        tenant: &TenantRecord,
        login: &FederatedLogin,
        name: &str,
    ) -> Result<SystemRecord> {
        let mut changes = self.lock_changes().await?;
        if let Some(system) = self.store.system_by_name(tenant.id, name).await? {
            return Ok(system);
        }
        let root = self
            .root_to_link(tenant.id, login.root_key.as_deref())
            .await?;
        let new = NewSystem {
            name: name.to_owned(),
            kind: PROJECT_SYSTEM_KIND.into(),
            description: login.project_name.chars().take(256).collect(),
            region: String::new(),
            labels: BTreeMap::from([(
                format!("{}-project-id", login.provider),
                login.project_id.clone(),
            )]),
            link: true,
            root_key: None,
        };
        let (system, key) = self.mint_system(tenant.id, Some(&root), &new).await?;
        let mut writes = vec![Write::PutSystem(system.clone())];
        writes.extend(key.map(Write::PutSystemKey));
        changes.commit(writes).await?;
        tracing::info!(
            tenant = %tenant.name,
            system = %system.name,
            root_key = %root.id,
            "registered the system of {} project {}",
            login.provider,
            login.project_id
        );
        Ok(system)
    }
}
