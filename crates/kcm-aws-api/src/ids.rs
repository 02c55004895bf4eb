//! Key identifiers as the AWS API spells them: key id, key ARN, alias name, alias ARN.

use kcm_core::authz::Op;
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

/// Whether `op`'s key identifiers may name an alias. AWS takes one where a key is
/// used (cryptography, DescribeKey, GetPublicKey) and where aliases are listed; the
/// operations that manage a key take its id or ARN only, and answer an alias with
/// InvalidArnException.
pub fn takes_alias(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        DescribeKey
            | ListAliases
            | Encrypt
            | Decrypt
            | ReEncrypt
            | GenerateDataKey
            | GenerateDataKeyWithoutPlaintext
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext
            | Sign
            | Verify
            | GetPublicKey
            | GenerateMac
            | VerifyMac
            | DeriveSharedSecret
    )
}

fn not_found(input: &str) -> AwsError {
    AwsError::bad_request("NotFoundException", format!("Invalid keyId '{input}'"))
}

/// Parses any AWS key identifier. ARNs must name this region (anything else cannot
/// name a key this server holds and is reported as not found); the account they name
/// is kept in the reference for the core to judge. Key ids are taken only in their
/// canonical form (lower-case, hyphenated, as `KeyId::parse` requires): another
/// spelling of the same UUID names no key, as in AWS.
pub fn parse_key_ref(input: &str, region: &str) -> Result<KeyRef, AwsError> {
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
        if arn_region != region {
            return Err(AwsError::bad_request(
                "NotFoundException",
                format!("Invalid arn {arn_region}"),
            ));
        }
        let key = if let Some(id) = resource.strip_prefix("key/") {
            KeyId::parse(id)
                .map(KeyRef::Id)
                .ok_or_else(|| not_found(input))?
        } else if resource.starts_with("alias/") {
            KeyRef::Alias(resource.to_string())
        } else {
            return Err(not_found(input));
        };
        // Whether the account is the caller's is the core's to decide (another
        // account's ARN is not found, as in AWS, whether a key exists there or not).
        return Ok(KeyRef::InAccount {
            account: account.to_string(),
            key: Box::new(key),
        });
    }
    if input.starts_with("alias/") {
        return Ok(KeyRef::Alias(input.to_string()));
    }
    KeyId::parse(input)
        .map(KeyRef::Id)
        .ok_or_else(|| not_found(input))
}

/// Parses a key identifier that must name a key directly (no alias), as `TargetKeyId`.
pub fn parse_key_id_only(input: &str, region: &str) -> Result<KeyRef, AwsError> {
    let key = parse_key_ref(input, region)?;
    match key.unqualified() {
        KeyRef::Alias(_) => Err(AwsError::validation(format!(
            "'{input}' is an alias; this parameter takes a key id or key ARN"
        ))),
        _ => Ok(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_frontdoor::DoorError;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
    const REGION: &str = "us-east-1";

    fn not_found_for(input: &str) {
        let err = parse_key_ref(input, REGION).expect_err(input);
        assert_eq!(err.code(), "NotFoundException", "{input}");
    }

    #[test]
    fn key_ids_are_taken_only_in_canonical_form() {
        let id = KeyId::parse(ID).unwrap();
        assert!(matches!(parse_key_ref(ID, REGION), Ok(KeyRef::Id(k)) if k == id));
        let arn = format!("arn:aws:kms:{REGION}:111122223333:key/{ID}");
        assert!(matches!(
            parse_key_ref(&arn, REGION),
            Ok(KeyRef::InAccount { key, .. }) if matches!(*key, KeyRef::Id(k) if k == id)
        ));
        // Every other spelling of the same UUID names no key, bare or in an ARN.
        let simple = ID.replace('-', "");
        for other in [
            ID.to_uppercase(),
            format!("{}{}", &ID[..9].to_uppercase(), &ID[9..]),
            format!("{{{ID}}}"),
            simple.clone(),
            simple.to_uppercase(),
            format!("urn:uuid:{ID}"),
            format!(" {ID}"),
        ] {
            assert!(uuid::Uuid::try_parse(other.trim()).is_ok() || other.starts_with(' '));
            not_found_for(&other);
            not_found_for(&format!("arn:aws:kms:{REGION}:111122223333:key/{other}"));
        }
    }

    #[test]
    fn an_arn_of_another_region_is_not_found() {
        not_found_for(&format!("arn:aws:kms:eu-west-1:111122223333:key/{ID}"));
        not_found_for("arn:aws:kms:eu-west-1:111122223333:alias/x");
    }
}
