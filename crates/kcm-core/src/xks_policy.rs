//! The XKS proxy API's secondary authorisation: which of AWS KMS's callers may use
//! kcm's keys, judged by the request metadata AWS KMS sends with every call (the
//! specification's "Authorization" section). It comes on top of kcm's own
//! authorisation of the XKS access key, never instead of it.
//!
//! A policy is a list of rules that allow. With no rule, every call the access key
//! may make is allowed; with rules, a call must match one of them. A rule names,
//! for any of the metadata's fields, the patterns one of which the field must match
//! (`*` matches any run of characters); a field the rule does not name matches
//! anything, and a field a rule names but the request lacks matches nothing.
//! GetHealthStatus is never judged by it, as the specification requires.

use serde::Deserialize;

use crate::glob::{self, Wildcards};

/// AWS KMS's request metadata, as the XKS door received it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestMetadata<'a> {
    /// `awsPrincipalArn`: who called AWS KMS.
    pub aws_principal_arn: Option<&'a str>,
    /// `kmsKeyArn`: the AWS KMS key.
    pub kms_key_arn: Option<&'a str>,
    /// `kmsOperation`: the AWS KMS operation.
    pub kms_operation: Option<&'a str>,
    /// `kmsRequestId`: AWS KMS's request id.
    pub kms_request_id: Option<&'a str>,
    /// `kmsViaService`: the AWS service that called AWS KMS.
    pub kms_via_service: Option<&'a str>,
    /// `awsSourceVpc`.
    pub aws_source_vpc: Option<&'a str>,
    /// `awsSourceVpce`.
    pub aws_source_vpce: Option<&'a str>,
}

/// One rule that allows: each field it names must match one of its patterns.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct XksRule {
    /// A name for the log (which rule allowed, or that none did).
    #[serde(default)]
    pub name: String,
    /// Patterns for `awsPrincipalArn`.
    pub aws_principal_arn: Option<Vec<String>>,
    /// Patterns for `kmsKeyArn`.
    pub kms_key_arn: Option<Vec<String>>,
    /// Patterns for `kmsOperation` (`Encrypt`, `GenerateDataKey`, `Decrypt`,
    /// `DescribeKey`, `CreateKey`, …).
    pub kms_operation: Option<Vec<String>>,
    /// Patterns for `kmsViaService`.
    pub kms_via_service: Option<Vec<String>>,
    /// Patterns for `awsSourceVpc`.
    pub aws_source_vpc: Option<Vec<String>>,
    /// Patterns for `awsSourceVpce`.
    pub aws_source_vpce: Option<Vec<String>>,
}

/// One field as a rule judges it: its name, the rule's patterns, the call's value.
type Field<'r, 'm> = (&'static str, Option<&'r Vec<String>>, Option<&'m str>);

impl XksRule {
    fn fields<'m>(&self, m: &RequestMetadata<'m>) -> [Field<'_, 'm>; 6] {
        [
            (
                "aws_principal_arn",
                self.aws_principal_arn.as_ref(),
                m.aws_principal_arn,
            ),
            ("kms_key_arn", self.kms_key_arn.as_ref(), m.kms_key_arn),
            (
                "kms_operation",
                self.kms_operation.as_ref(),
                m.kms_operation,
            ),
            (
                "kms_via_service",
                self.kms_via_service.as_ref(),
                m.kms_via_service,
            ),
            (
                "aws_source_vpc",
                self.aws_source_vpc.as_ref(),
                m.aws_source_vpc,
            ),
            (
                "aws_source_vpce",
                self.aws_source_vpce.as_ref(),
                m.aws_source_vpce,
            ),
        ]
    }

    /// Whether the rule allows a call with `metadata`.
    pub fn allows(&self, metadata: &RequestMetadata<'_>) -> bool {
        self.fields(metadata)
            .into_iter()
            .all(|(_, patterns, value)| match (patterns, value) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(patterns), Some(value)) => patterns
                    .iter()
                    .any(|p| glob::matches(p, value, Wildcards::Star)),
            })
    }

    /// Checks the rule: at least one field, no empty pattern list, patterns of
    /// printable characters.
    pub fn check(&self) -> Result<(), String> {
        let named: Vec<_> = self
            .fields(&RequestMetadata::default())
            .into_iter()
            .filter_map(|(field, patterns, _)| patterns.map(|p| (field, p)))
            .collect();
        if named.is_empty() {
            return Err(format!(
                "rule {:?} names no field: it would allow every call (leave out the rules for that)",
                self.name
            ));
        }
        for (field, patterns) in named {
            if patterns.is_empty() {
                return Err(format!(
                    "rule {:?}: {field} lists no pattern, so it would allow nothing",
                    self.name
                ));
            }
            if let Some(bad) = patterns
                .iter()
                .find(|p| p.is_empty() || p.len() > 2048 || p.chars().any(char::is_control))
            {
                return Err(format!(
                    "rule {:?}: {field} pattern {bad:?} is empty, longer than 2048 characters or has control characters",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// The rules, of which a call must match one (none: every call is allowed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XksPolicy {
    rules: Vec<XksRule>,
}

impl XksPolicy {
    /// A policy of `rules`, each checked ([`XksRule::check`]).
    pub fn new(rules: Vec<XksRule>) -> Result<Self, String> {
        for rule in &rules {
            rule.check()?;
        }
        Ok(Self { rules })
    }

    /// Whether there are rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The name of the rule that allows a call with `metadata` (empty when there
    /// are no rules), or `None` when none does.
    pub fn judge(&self, metadata: &RequestMetadata<'_>) -> Option<&str> {
        if self.rules.is_empty() {
            return Some("");
        }
        self.rules
            .iter()
            .find(|rule| rule.allows(metadata))
            .map(|rule| rule.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(principal: &[&str], operation: Option<&[&str]>) -> XksRule {
        XksRule {
            name: "r".into(),
            aws_principal_arn: Some(principal.iter().map(|s| s.to_string()).collect()),
            kms_operation: operation.map(|o| o.iter().map(|s| s.to_string()).collect()),
            ..XksRule::default()
        }
    }

    #[test]
    fn a_call_must_match_a_rule_in_every_field_it_names() {
        let policy = XksPolicy::new(vec![
            rule(
                &["arn:aws:iam::1:role/app-*"],
                Some(&["Encrypt", "GenerateDataKey"]),
            ),
            rule(&["arn:aws:iam::1:role/admin"], None),
        ])
        .unwrap();
        let call = |principal: &'static str, operation: Option<&'static str>| RequestMetadata {
            aws_principal_arn: Some(principal),
            kms_operation: operation,
            ..RequestMetadata::default()
        };
        assert!(policy
            .judge(&call("arn:aws:iam::1:role/app-a", Some("Encrypt")))
            .is_some());
        assert!(policy
            .judge(&call("arn:aws:iam::1:role/app-a", Some("Decrypt")))
            .is_none());
        assert!(policy
            .judge(&call("arn:aws:iam::1:role/app-a", None))
            .is_none());
        assert!(policy
            .judge(&call("arn:aws:iam::1:role/admin", Some("Decrypt")))
            .is_some());
        assert!(policy
            .judge(&call("arn:aws:iam::2:role/app-a", Some("Encrypt")))
            .is_none());
        assert_eq!(
            XksPolicy::default().judge(&RequestMetadata::default()),
            Some("")
        );
    }

    #[test]
    fn rules_that_would_allow_everything_or_nothing_are_refused() {
        assert!(XksPolicy::new(vec![XksRule::default()])
            .unwrap_err()
            .contains("names no field"));
        assert!(XksPolicy::new(vec![rule(&[], None)])
            .unwrap_err()
            .contains("no pattern"));
        assert!(XksPolicy::new(vec![rule(&[""], None)]).is_err());
    }
}
