//! Who a policy statement names, and the ARNs kcm's principals are known by.
//!
//! kcm's principals are access keys of a tenant, each with a role. In AWS's words:
//!
//! | kcm                                   | ARN                                          |
//! |---------------------------------------|----------------------------------------------|
//! | the tenant (every access key of it)   | `arn:aws:iam::<account>:root`                |
//! | every access key with role `<role>`   | `arn:aws:iam::<account>:role/<role>`         |
//! | one access key                        | `arn:aws:iam::<account>:user/<access key id>`|
//!
//! `<account>` is the tenant's 12-digit account id. The account root in a key policy
//! means what it means in AWS: the account's own access control decides — in kcm the
//! roles, so AWS's default key policy and "no policy" are the same thing. kcm's
//! earlier forms (`role:<role>`, a bare access key id) still parse.

use crate::authz::Principal;
use crate::error::{Error, ErrorKind, Result};
use crate::model::Role;

fn malformed(message: String) -> Error {
    Error::new(ErrorKind::MalformedPolicy, message)
}

/// The ARN a principal's requests carry (`aws:PrincipalArn`; the grantee of its grants).
pub fn principal_arn(principal: &Principal) -> String {
    user_arn(&principal.account_id, &principal.access_key_id)
}

/// The ARN of access key `access_key_id` of `account`.
pub fn user_arn(account: &str, access_key_id: &str) -> String {
    format!("arn:aws:iam::{account}:user/{access_key_id}")
}

/// The ARN of `account`'s root: every principal of the tenant.
pub fn account_root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// One principal a statement names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalMatch {
    /// Everyone (in the key's tenant: nothing crosses tenants).
    Any,
    /// Every access key of the account (`arn:aws:iam::<account>:root`, or the bare
    /// account id).
    Account(String),
    /// Every access key with this role (`account`: `None` in kcm's earlier form,
    /// which named no account).
    Role {
        /// The account, when named.
        account: Option<String>,
        /// The role.
        role: Role,
    },
    /// One access key.
    AccessKey {
        /// The account, when named.
        account: Option<String>,
        /// The access key id.
        id: String,
    },
    /// An AWS service principal (`{"Service": "logs.amazonaws.com"}`): AWS-format
    /// templates name them, and no kcm caller is one, so it matches nobody.
    Service(String),
}

impl PrincipalMatch {
    /// Parses one entry of `"Principal": {"AWS": …}`: `*`, a 12-digit account id, or
    /// an IAM ARN of a root, role or user.
    pub(crate) fn parse_aws(s: &str) -> Result<Self> {
        if s == "*" {
            return Ok(PrincipalMatch::Any);
        }
        if is_account_id(s) {
            return Ok(PrincipalMatch::Account(s.to_string()));
        }
        let invalid = || {
            malformed(format!(
                "policy principal {s:?} is not \"*\", a 12-digit account id or an IAM ARN \
                 (arn:aws:iam::<account>:root, :role/<role> with a kcm role — tenant-admin, \
                 key-admin, key-user, auditor — or :user/<access key id>)"
            ))
        };
        let Some((account, resource)) = iam_arn(s) else {
            return Err(invalid());
        };
        let account = account.to_string();
        if resource == "root" {
            return Ok(PrincipalMatch::Account(account));
        }
        if let Some(path) = resource.strip_prefix("role/") {
            let name = path.rsplit('/').next().unwrap_or(path);
            return match Role::parse(name).filter(|r| *r != Role::SystemAdmin) {
                Some(role) => Ok(PrincipalMatch::Role {
                    account: Some(account),
                    role,
                }),
                None => Err(invalid()),
            };
        }
        if let Some(path) = resource.strip_prefix("user/") {
            let name = path.rsplit('/').next().unwrap_or(path);
            if is_access_key_id(name) {
                return Ok(PrincipalMatch::AccessKey {
                    account: Some(account),
                    id: name.to_string(),
                });
            }
        }
        Err(invalid())
    }

    /// Parses kcm's earlier form: `*`, `role:<role>` or an access key id.
    pub(crate) fn parse_kcm(s: &str) -> Result<Self> {
        if s == "*" {
            return Ok(PrincipalMatch::Any);
        }
        if let Some(role) = s.strip_prefix("role:") {
            return Role::parse(role)
                .map(|role| PrincipalMatch::Role {
                    account: None,
                    role,
                })
                .ok_or_else(|| {
                    malformed(format!(
                        "policy principal {s:?} names an unknown role; roles are tenant-admin, key-admin, key-user, auditor"
                    ))
                });
        }
        if is_access_key_id(s) {
            return Ok(PrincipalMatch::AccessKey {
                account: None,
                id: s.to_string(),
            });
        }
        Err(malformed(format!(
            "policy principal {s:?} is not \"*\", {{\"AWS\": \"<IAM ARN>\"}}, \"role:<role>\" or an access key id (KCM…, 20 characters)"
        )))
    }

    /// Whether `principal` is one this names.
    pub(crate) fn matches(&self, principal: &Principal) -> bool {
        let in_account =
            |account: &Option<String>| account.as_deref().is_none_or(|a| a == principal.account_id);
        match self {
            PrincipalMatch::Any => true,
            PrincipalMatch::Account(account) => *account == principal.account_id,
            PrincipalMatch::Role { account, role } => {
                in_account(account) && principal.role == *role
            }
            PrincipalMatch::AccessKey { account, id } => {
                in_account(account) && principal.access_key_id == *id
            }
            PrincipalMatch::Service(_) => false,
        }
    }
}

/// `(account, resource)` of `arn:<partition>:iam::<account>:<resource>`.
fn iam_arn(s: &str) -> Option<(&str, &str)> {
    let mut parts = s.splitn(6, ':');
    let (arn, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let partition_ok = partition == "aws" || partition.starts_with("aws-");
    (arn == "arn"
        && partition_ok
        && service == "iam"
        && region.is_empty()
        && is_account_id(account))
    .then_some((account, resource))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_access_key_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("KCM") && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(id: &str, role: Role, account: &str) -> Principal {
        Principal {
            access_key_id: id.into(),
            tenant_id: None,
            account_id: account.into(),
            role,
            system_scope: None,
            operations: None,
        }
    }

    const ME: &str = "111122223333";
    const KEY: &str = "KCMAPPAAAAAAAAAAAAAA";

    #[test]
    fn aws_forms_name_the_account_a_role_or_an_access_key() {
        let user = principal(KEY, Role::KeyUser, ME);
        let elsewhere = principal(KEY, Role::KeyUser, "999999999999");
        for (form, matches_user) in [
            ("*", true),
            (ME, true),
            ("arn:aws:iam::111122223333:root", true),
            ("arn:aws:iam::111122223333:role/key-user", true),
            ("arn:aws:iam::111122223333:role/some/path/key-user", true),
            ("arn:aws:iam::111122223333:role/key-admin", false),
            ("arn:aws:iam::111122223333:user/KCMAPPAAAAAAAAAAAAAA", true),
            ("arn:aws:iam::111122223333:user/KCMOTHERAAAAAAAAAAAA", false),
            ("arn:aws-us-gov:iam::111122223333:root", true),
        ] {
            let m = PrincipalMatch::parse_aws(form).unwrap();
            assert_eq!(m.matches(&user), matches_user, "{form}");
            assert_eq!(
                m.matches(&elsewhere),
                form == "*",
                "{form} in another account"
            );
        }
        assert_eq!(
            principal_arn(&user),
            "arn:aws:iam::111122223333:user/KCMAPPAAAAAAAAAAAAAA"
        );
    }

    #[test]
    fn unknown_forms_are_refused_naming_them() {
        for form in [
            "bob",
            "arn:aws:iam::1:root",
            "arn:aws:iam::111122223333:role/Admin",
            "arn:aws:iam::111122223333:role/system-admin",
            "arn:aws:iam::111122223333:user/bob",
            "arn:aws:iam::111122223333:group/g",
            "arn:aws:s3:::bucket",
            "arn:aws:iam:eu-west-1:111122223333:root",
        ] {
            let err = PrincipalMatch::parse_aws(form).unwrap_err();
            assert!(err.message().contains(&format!("{form:?}")), "{err}");
        }
        assert!(PrincipalMatch::parse_kcm("role:king").is_err());
        assert!(PrincipalMatch::parse_kcm(KEY).is_ok());
    }
}
