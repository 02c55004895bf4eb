//! Reading a key policy document: AWS's grammar (and kcm's earlier small form) into
//! [`Statement`]s, refusing anything it does not understand with a message naming it.

use serde_json::{Map, Value};

use super::condition::Condition;
use super::principal::PrincipalMatch;
use super::{Effect, KeyPolicy, Statement, KCM_POLICY_VERSION, MAX_POLICY_BYTES, POLICY_VERSION};
use crate::authz::{OpSet, ALL_OPS};
use crate::error::{Error, ErrorKind, Result};
use crate::glob::{self, Wildcards};

fn malformed(message: String) -> Error {
    Error::new(ErrorKind::MalformedPolicy, message)
}

/// AWS's earlier policy language version, still accepted by AWS.
const AWS_OLD_VERSION: &str = "2008-10-17";

/// Parses and validates `document`.
pub(super) fn parse(document: &str) -> Result<KeyPolicy> {
    if document.len() > MAX_POLICY_BYTES {
        return Err(malformed(format!(
            "the policy is {} bytes; at most {MAX_POLICY_BYTES} are allowed",
            document.len()
        )));
    }
    let value: Value = serde_json::from_str(document)
        .map_err(|e| malformed(format!("the policy is not valid JSON: {e}")))?;
    let Value::Object(doc) = value else {
        return Err(malformed(
            "a key policy is a JSON object with Version, Statement and optionally Id".into(),
        ));
    };
    only_fields(&doc, &["Version", "Id", "Statement"], "the policy")?;
    // As AWS: a policy without a Version is of the 2008 language.
    let version = match doc.get("Version") {
        None => AWS_OLD_VERSION,
        Some(Value::String(v)) => v.as_str(),
        Some(other) => {
            return Err(malformed(format!(
                "policy Version must be a string, got {other}"
            )))
        }
    };
    let aws = match version {
        POLICY_VERSION | AWS_OLD_VERSION => true,
        KCM_POLICY_VERSION => false,
        other => {
            return Err(malformed(format!(
                "policy Version must be {POLICY_VERSION:?} (or {AWS_OLD_VERSION:?}, or kcm's earlier {KCM_POLICY_VERSION:?}), got {other:?}"
            )))
        }
    };
    if let Some(id) = doc.get("Id") {
        if !id.is_string() {
            return Err(malformed(format!("policy Id must be a string, got {id}")));
        }
    }
    let statements: Vec<&Value> = match doc.get("Statement") {
        None => return Err(malformed("the policy has no Statement".into())),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        Some(other) => {
            return Err(malformed(format!(
                "policy Statement must be a statement object or a list of them, got {other}"
            )))
        }
    };
    if statements.is_empty() {
        return Err(malformed("the policy has no statements".into()));
    }
    let statements = statements
        .into_iter()
        .enumerate()
        .map(|(i, s)| statement(i, s, aws))
        .collect::<Result<Vec<_>>>()?;
    Ok(KeyPolicy {
        statements,
        document: document.to_string(),
    })
}

/// Refuses a field of `object` not among `known`, naming it.
fn only_fields(object: &Map<String, Value>, known: &[&str], what: &str) -> Result<()> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(field) => Err(malformed(format!(
            "{what} has an unknown field {field:?}; its fields are {}",
            known.join(", ")
        ))),
    }
}

/// The one of `names` (an element and its `Not` form) `object` has: `(value,
/// negated)`; both is an error, neither is `None`.
fn one_of<'a>(
    object: &'a Map<String, Value>,
    [positive, negative]: [&str; 2],
    label: &str,
) -> Result<Option<(&'a Value, bool)>> {
    match (object.get(positive), object.get(negative)) {
        (Some(_), Some(_)) => Err(malformed(format!(
            "{label} has both {positive} and {negative}; it may have one"
        ))),
        (Some(v), None) => Ok(Some((v, false))),
        (None, Some(v)) => Ok(Some((v, true))),
        (None, None) => Ok(None),
    }
}

/// `value` as one string or a list of strings.
fn strings<'a>(value: &'a Value, what: &str) -> Result<Vec<&'a str>> {
    let items: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed(format!("{what} must be a string or a list of strings")))?,
        _ => {
            return Err(malformed(format!(
                "{what} must be a string or a list of strings"
            )))
        }
    };
    if items.is_empty() {
        return Err(malformed(format!("{what} is an empty list")));
    }
    Ok(items)
}

fn statement(index: usize, value: &Value, aws: bool) -> Result<Statement> {
    let Value::Object(s) = value else {
        return Err(malformed(format!(
            "policy statement {} is not an object",
            index + 1
        )));
    };
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(other) => {
            return Err(malformed(format!(
                "statement Sid must be a string, got {other}"
            )))
        }
    };
    let label = match &sid {
        Some(sid) => format!("statement {sid:?}"),
        None => format!("statement {}", index + 1),
    };
    only_fields(
        s,
        &[
            "Sid",
            "Effect",
            "Principal",
            "NotPrincipal",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        ],
        &label,
    )?;
    let effect = match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(malformed(format!(
                "{label}: Effect must be \"Allow\" or \"Deny\", got {other}"
            )))
        }
        None => return Err(malformed(format!("{label} has no Effect"))),
    };
    let (principal, principals_negated) = one_of(s, ["Principal", "NotPrincipal"], &label)?
        .ok_or_else(|| malformed(format!("{label} has no Principal (or NotPrincipal)")))?;
    let principals = principals(principal, &label)?;
    let (action, actions_negated) = one_of(s, ["Action", "NotAction"], &label)?
        .ok_or_else(|| malformed(format!("{label} has no Action (or NotAction)")))?;
    let operations = operations(&strings(action, &format!("{label}: Action"))?, &label)?;
    let resources = match one_of(s, ["Resource", "NotResource"], &label)? {
        Some((value, negated)) => Some((resources(value, &label)?, negated)),
        None if aws => {
            return Err(malformed(format!(
            "{label} has no Resource (or NotResource); in a key policy it is \"*\", the key itself"
        )))
        }
        None => None,
    };
    let conditions = match s.get("Condition") {
        Some(block) => Condition::parse_block(block)
            .map_err(|e| malformed(format!("{label}: {}", e.message())))?,
        None => Vec::new(),
    };
    Ok(Statement {
        sid,
        effect,
        principals,
        principals_negated,
        operations,
        actions_negated,
        resources,
        conditions,
    })
}

fn principals(value: &Value, label: &str) -> Result<Vec<PrincipalMatch>> {
    let what = format!("{label}: Principal");
    let parsed = match value {
        Value::Object(types) => {
            if types.is_empty() {
                return Err(malformed(format!("{what} names no principal")));
            }
            let mut parsed = Vec::new();
            for (kind, names) in types {
                let names = strings(names, &format!("{what} {kind}"))?;
                match kind.as_str() {
                    "AWS" => {
                        for name in names {
                            parsed.push(PrincipalMatch::parse_aws(name)?);
                        }
                    }
                    "Service" => parsed.extend(
                        names
                            .into_iter()
                            .map(|n| PrincipalMatch::Service(n.to_string())),
                    ),
                    other => {
                        return Err(malformed(format!(
                            "{what} is of type {other:?}; kcm knows principals of types \"AWS\" (its own, as IAM ARNs) and \"Service\" (which no kcm caller is)"
                        )))
                    }
                }
            }
            parsed
        }
        other => strings(other, &what)?
            .into_iter()
            .map(PrincipalMatch::parse_kcm)
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(parsed)
}

/// The operations `actions` name: `*`, `kms:<name>` (or a bare `<name>`, kcm's
/// earlier form), with `*` and `?` wildcards; compared without regard to case, as AWS.
fn operations(actions: &[&str], label: &str) -> Result<OpSet> {
    let mut set = OpSet::EMPTY;
    for action in actions {
        let pattern = if *action == "*" {
            "*".to_string()
        } else {
            match action.split_once(':') {
                Some((service, name)) if service.eq_ignore_ascii_case("kms") => {
                    name.to_ascii_lowercase()
                }
                Some(_) => {
                    return Err(malformed(format!(
                        "{label}: action {action:?} is not a kms: action; a key policy speaks only of kms: actions"
                    )))
                }
                None => action.to_ascii_lowercase(),
            }
        };
        let wildcard = pattern.contains(['*', '?']);
        let mut named = false;
        for op in ALL_OPS {
            if glob::matches(
                &pattern,
                &op.as_str().to_ascii_lowercase(),
                Wildcards::StarAndQuestionMark,
            ) {
                set.insert(*op);
                named = true;
            }
        }
        if !named && !wildcard {
            return Err(malformed(format!(
                "{label}: action {action:?} is not a KMS operation kcm knows (e.g. kms:Encrypt, kms:DescribeKey, kms:*)"
            )));
        }
    }
    Ok(set)
}

/// `Resource` patterns: `*` (the key itself, in a key policy) or key ARN patterns.
fn resources(value: &Value, label: &str) -> Result<Vec<String>> {
    let items = strings(value, &format!("{label}: Resource"))?;
    items
        .into_iter()
        .map(|r| {
            if r == "*" || r.starts_with("arn:") {
                Ok(r.to_string())
            } else {
                Err(malformed(format!(
                    "{label}: Resource {r:?} is not \"*\" or an ARN"
                )))
            }
        })
        .collect()
}
