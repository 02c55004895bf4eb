//! Key identifiers as the AWS API spells them: key id, key ARN, alias name, alias ARN.

use kcm_core::auth::Principal;
use kcm_core::error::Error;
use kcm_core::model::KeyId;
use kcm_core::service::KeyRef;

use crate::error::AwsError;

/// The ARN of a key.
pub fn key_arn(region: &str, account: &str, id: KeyId) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{id}")
}

/// The ARN of an alias (`name` includes `alias/`).
pub fn alias_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{name}")
}

fn not_found(input: &str) -> AwsError {
    AwsError::bad_request("NotFoundException", format!("Invalid keyId '{input}'"))
}

/// Parses any AWS key identifier. ARNs must name this region and the caller's account;
/// anything else cannot name one of the caller's keys and is reported as not found.
pub fn parse_key_ref(input: &str, region: &str, principal: &Principal) -> Result<KeyRef, AwsError> {
    if input.is_empty() || input.len() > 2048 {
        return Err(AwsError::validation("KeyId must be 1 to 2048 characters"));
    }
    if let Some(rest) = input.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, arn_region, account, resource] = parts[..] else {
            return Err(AwsError::bad_request(
                "InvalidArnException",
                format!("'{input}' is not a valid ARN"),
            ));
        };
        if partition != "aws" || service != "kms" {
            return Err(AwsError::bad_request(
                "InvalidArnException",
                format!("'{input}' is not a KMS ARN"),
            ));
        }
        let well_formed = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(not_found(input));
        }
        if account != principal.account_id {
            // As AWS does for another account's ARN: denied, without saying whether it
            // exists. An authorisation refusal, so made as the core's: AccessDenied on
            // the wire and `denied` in the audit log.
            return Err(Error::denied(format!(
                "access key {} is not authorized to use resources of account {account}",
                principal.access_key_id
            ))
            .into());
        }
        if arn_region != region {
            return Err(not_found(input));
        }
        if let Some(id) = resource.strip_prefix("key/") {
            return KeyId::parse(id)
                .map(KeyRef::Id)
                .ok_or_else(|| not_found(input));
        }
        if resource.starts_with("alias/") {
            return Ok(KeyRef::Alias(resource.to_string()));
        }
        return Err(not_found(input));
    }
    if input.starts_with("alias/") {
        return Ok(KeyRef::Alias(input.to_string()));
    }
    KeyId::parse(input)
        .map(KeyRef::Id)
        .ok_or_else(|| not_found(input))
}

/// Parses a key identifier that must name a key directly (no alias), as `TargetKeyId`.
pub fn parse_key_id_only(
    input: &str,
    region: &str,
    principal: &Principal,
) -> Result<KeyRef, AwsError> {
    match parse_key_ref(input, region, principal)? {
        KeyRef::Alias(_) => Err(AwsError::validation(format!(
            "'{input}' is an alias; this parameter takes a key id or key ARN"
        ))),
        id => Ok(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_core::model::{AuditOutcome, Role};
    use kcm_frontdoor::DoorError;

    #[test]
    fn another_accounts_arn_is_an_audited_denial() {
        let principal = Principal {
            access_key_id: "KCMTEST".into(),
            tenant_id: None,
            account_id: "111111111111".into(),
            role: Role::TenantAdmin,
            system_scope: None,
            operations: None,
        };
        let arn = "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000";
        let e = parse_key_ref(arn, "us-east-1", &principal).unwrap_err();
        assert_eq!(e.error_type, "AccessDeniedException");
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.audit_outcome(), AuditOutcome::Denied);
    }
}
