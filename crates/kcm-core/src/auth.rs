//! Principals and the authorisation decision — made here, in the core, and nowhere else.
//!
//! Every service method names the [`Action`] it performs and the tenant (and system)
//! it touches, and calls [`authorize`] before it reads or changes anything. Front doors
//! only authenticate (prove which access key signed); they never decide.

use crate::error::{Error, Result};
use crate::model::{Role, SystemId, TenantId};

/// Who is calling: an authenticated access key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// The tenant it belongs to (`None` for the operator's system-admin).
    pub tenant_id: Option<TenantId>,
    /// The tenant's 12-digit account id (empty for system-admin).
    pub account_id: String,
    /// Its role.
    pub role: Role,
    /// When set, only this system's keys may be touched.
    pub system_scope: Option<SystemId>,
}

/// The class of thing a request does; roles are defined by which classes they may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read key metadata, aliases, tags, rotation status; list keys.
    ReadKeys,
    /// Create keys; change state, description, aliases, tags, rotation; schedule deletion.
    ManageKeys,
    /// Cryptographic use: encrypt, decrypt, data keys, re-encrypt.
    UseKeys,
    /// Random bytes (GenerateRandom): needs no key, but is a data-plane call.
    GenerateRandom,
    /// Read the tenant's systems, access keys and keychain.
    ReadTenant,
    /// Create systems and access keys in the tenant.
    ManageTenant,
    /// Create and list tenants (operator only).
    ManageTenants,
    /// Take a backup of the whole store, every tenant included (operator only).
    Backup,
}

/// Every action (for exhaustive tests).
pub const ALL_ACTIONS: [Action; 8] = [
    Action::ReadKeys,
    Action::ManageKeys,
    Action::UseKeys,
    Action::GenerateRandom,
    Action::ReadTenant,
    Action::ManageTenant,
    Action::ManageTenants,
    Action::Backup,
];

/// The role table: which actions each role may take (within its own tenant).
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::TenantAdmin => matches!(
            action,
            ReadKeys | ManageKeys | UseKeys | GenerateRandom | ReadTenant | ManageTenant
        ),
        Role::KeyAdmin => matches!(action, ReadKeys | ManageKeys | ReadTenant),
        Role::KeyUser => matches!(action, ReadKeys | UseKeys | GenerateRandom),
        Role::Auditor => matches!(action, ReadKeys | ReadTenant),
        Role::SystemAdmin => matches!(action, ManageTenants | Backup),
    }
}

/// What a request touches: the tenant, and the system when a key is involved.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Tenant owning the resource (`None` for operator-level resources).
    pub tenant: Option<TenantId>,
    /// System of the key, if a key is involved.
    pub system: Option<SystemId>,
}

impl Target {
    /// The operator's own resources (tenants).
    pub const OPERATOR: Target = Target {
        tenant: None,
        system: None,
    };

    /// A tenant-level resource.
    pub fn tenant(tenant: TenantId) -> Target {
        Target {
            tenant: Some(tenant),
            system: None,
        }
    }

    /// A key (or other resource) in a system of a tenant.
    pub fn system(tenant: TenantId, system: SystemId) -> Target {
        Target {
            tenant: Some(tenant),
            system: Some(system),
        }
    }
}

/// The one authorisation decision. Denials name the role and the action.
pub fn authorize(principal: &Principal, action: Action, target: Target) -> Result<()> {
    if !role_allows(principal.role, action) {
        return Err(Error::denied(format!(
            "access key {} with role {} is not allowed to {}",
            principal.access_key_id,
            principal.role,
            action_phrase(action)
        )));
    }
    if principal.system_scope.is_some() && action == Action::ManageTenant {
        // A key limited to one system must not mint keys or systems for the whole tenant.
        return Err(Error::denied(format!(
            "access key {} is scoped to one system and cannot manage the tenant's systems or access keys",
            principal.access_key_id
        )));
    }
    if target.tenant.is_some() && target.tenant != principal.tenant_id {
        // Another tenant's resources are invisible; callers turn this into NotFound
        // where AWS would, so existence does not leak.
        return Err(Error::denied(format!(
            "access key {} cannot access resources of another tenant",
            principal.access_key_id
        )));
    }
    if let (Some(scope), Some(system)) = (principal.system_scope, target.system) {
        if scope != system {
            return Err(Error::denied(format!(
                "access key {} is scoped to another system",
                principal.access_key_id
            )));
        }
    }
    Ok(())
}

fn action_phrase(action: Action) -> &'static str {
    match action {
        Action::ReadKeys => "read key metadata",
        Action::ManageKeys => "manage keys",
        Action::UseKeys => "use keys for cryptographic operations",
        Action::GenerateRandom => "generate random bytes",
        Action::ReadTenant => "read the tenant's systems, access keys and keychain",
        Action::ManageTenant => "manage the tenant's systems and access keys",
        Action::ManageTenants => "manage tenants",
        Action::Backup => "back up the whole store",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ALL_ROLES;

    fn principal(role: Role, tenant: Option<TenantId>, scope: Option<SystemId>) -> Principal {
        Principal {
            access_key_id: "KCMTEST".into(),
            tenant_id: tenant,
            account_id: String::new(),
            role,
            system_scope: scope,
        }
    }

    #[test]
    fn role_table_every_role_times_every_action() {
        use Action::*;
        #[rustfmt::skip]
        let expected: [(Role, [bool; 8]); 5] = [
            //                  ReadKeys ManageKeys UseKeys Random ReadTenant ManageTenant ManageTenants Backup
            (Role::TenantAdmin, [true,   true,      true,   true,  true,      true,        false,        false]),
            (Role::KeyAdmin,    [true,   true,      false,  false, true,      false,       false,        false]),
            (Role::KeyUser,     [true,   false,     true,   true,  false,     false,       false,        false]),
            (Role::Auditor,     [true,   false,     false,  false, true,      false,       false,        false]),
            (Role::SystemAdmin, [false,  false,     false,  false, false,     false,       true,         true]),
        ];
        assert_eq!(expected.len(), ALL_ROLES.len());
        for (role, row) in expected {
            for (action, allowed) in ALL_ACTIONS.iter().zip(row) {
                assert_eq!(role_allows(role, *action), allowed, "{role} × {action:?}");
            }
        }
        let _ = (ReadKeys, ManageTenants, Backup);
    }

    #[test]
    fn tenant_and_system_boundaries() {
        let t1 = TenantId::new_random();
        let t2 = TenantId::new_random();
        let s1 = SystemId::new_random();
        let s2 = SystemId::new_random();
        let admin = principal(Role::TenantAdmin, Some(t1), None);
        assert!(authorize(&admin, Action::UseKeys, Target::system(t1, s1)).is_ok());
        assert!(authorize(&admin, Action::UseKeys, Target::system(t2, s1)).is_err());
        let scoped = principal(Role::KeyUser, Some(t1), Some(s1));
        assert!(authorize(&scoped, Action::UseKeys, Target::system(t1, s1)).is_ok());
        assert!(authorize(&scoped, Action::UseKeys, Target::system(t1, s2)).is_err());
        let scoped_admin = principal(Role::TenantAdmin, Some(t1), Some(s1));
        assert!(authorize(&scoped_admin, Action::ManageTenant, Target::tenant(t1)).is_err());
        assert!(authorize(&scoped_admin, Action::ManageKeys, Target::system(t1, s1)).is_ok());
        let operator = principal(Role::SystemAdmin, None, None);
        assert!(authorize(&operator, Action::ManageTenants, Target::OPERATOR).is_ok());
        assert!(authorize(&operator, Action::Backup, Target::OPERATOR).is_ok());
        assert!(authorize(&admin, Action::Backup, Target::OPERATOR).is_err());
        assert!(authorize(&operator, Action::UseKeys, Target::system(t1, s1)).is_err());
        assert!(authorize(&operator, Action::ReadKeys, Target::tenant(t1)).is_err());
    }
}
