//! A statement's `Condition` block, in IAM's grammar: what it may say, and whether it
//! holds for one request.
//!
//! ```json
//! "Condition": {
//!   "StringEquals": {"kms:EncryptionContext:tenant": ["a", "b"]},
//!   "ForAllValues:StringLike": {"kms:EncryptionContextKeys": "app-*"},
//!   "Bool": {"aws:SecureTransport": "true"}
//! }
//! ```
//!
//! Every operator must hold (and), every key under an operator must hold (and), and a
//! key holds if the request's value matches one of the listed values (or). As IAM:
//! a key the request lacks makes an operator false, but a negated one (`StringNot…`,
//! `NotIpAddress`, `Arn Not…`) true; `…IfExists` holds when the key is absent; `Null`
//! asks whether it is. For keys with several values (`kms:EncryptionContextKeys`,
//! `kms:GrantOperations`) `ForAnyValue:` needs one value to match, `ForAllValues:`
//! every value (and holds when there is none); without a qualifier an operator holds
//! if any value matches, a negated one if none does.
//!
//! An operator or key kcm does not know is refused when the policy is written, naming
//! it: a condition is never silently ignored.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::principal::principal_arn;
use crate::authz::Principal;
use crate::error::{Error, ErrorKind, Result};
use crate::glob::{self, Wildcards};
use crate::keyspec::{EncryptionAlgorithm, KeyOrigin, KeySpec, KeyUsage, SigningAlgorithm};
use crate::model::{KeyId, UnixMillis};

fn malformed(message: String) -> Error {
    Error::new(ErrorKind::MalformedPolicy, message)
}

/// What a request says that conditions may ask about, beyond who sent it and which
/// key it names: filled in by the core call that serves it (all `None` for calls
/// that carry none of it).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestFacts<'a> {
    /// The encryption context (`kms:EncryptionContext:…`, `kms:EncryptionContextKeys`).
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    /// The encryption algorithm (`kms:EncryptionAlgorithm`).
    pub encryption_algorithm: Option<&'a str>,
    /// The signing algorithm (`kms:SigningAlgorithm`).
    pub signing_algorithm: Option<&'a str>,
    /// The operations a grant being created would allow (`kms:GrantOperations`).
    pub grant_operations: Option<&'a [String]>,
}

impl<'a> RequestFacts<'a> {
    /// A request that says none of it.
    pub const NONE: RequestFacts<'static> = RequestFacts {
        encryption_context: None,
        encryption_algorithm: None,
        signing_algorithm: None,
        grant_operations: None,
    };

    /// A request in kcm's symmetric format (Encrypt, Decrypt, GenerateDataKey, a
    /// ReEncrypt side): its encryption context, and `kms:EncryptionAlgorithm`
    /// `SYMMETRIC_DEFAULT` (as AWS, also when the request names no algorithm).
    pub fn symmetric(context: &'a BTreeMap<String, String>) -> Self {
        RequestFacts {
            encryption_context: Some(context),
            encryption_algorithm: Some(EncryptionAlgorithm::SymmetricDefault.as_str()),
            ..RequestFacts::NONE
        }
    }

    /// A request that binds an encryption context and names no algorithm
    /// (GenerateDataKeyPair).
    pub fn context(context: &'a BTreeMap<String, String>) -> Self {
        RequestFacts {
            encryption_context: Some(context),
            ..RequestFacts::NONE
        }
    }

    /// An encryption or decryption with `algorithm` (RSAES-OAEP: no context).
    pub fn encryption(algorithm: EncryptionAlgorithm) -> Self {
        RequestFacts {
            encryption_algorithm: Some(algorithm.as_str()),
            ..RequestFacts::NONE
        }
    }

    /// A signature made or checked with `algorithm`.
    pub fn signing(algorithm: SigningAlgorithm) -> Self {
        RequestFacts {
            signing_algorithm: Some(algorithm.as_str()),
            ..RequestFacts::NONE
        }
    }

    /// A grant being created for `operations` (kcm's names).
    pub fn grant(operations: &'a [String]) -> Self {
        RequestFacts {
            grant_operations: Some(operations),
            ..RequestFacts::NONE
        }
    }
}

/// Where a request came from (`aws:SourceIp`, `aws:SecureTransport`): what its front
/// door knows of the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    /// The client's address, when the request came over a network connection.
    pub source_ip: Option<IpAddr>,
    /// Whether the connection is TLS, when the door knows.
    pub secure_transport: Option<bool>,
}

/// The key a request acts on, as conditions and `Resource` see it.
#[derive(Clone, Copy, Debug)]
pub struct KeyFacts<'a> {
    /// Its id.
    pub id: KeyId,
    /// The region in its ARN.
    pub region: &'a str,
    /// `kms:KeySpec`.
    pub spec: KeySpec,
    /// `kms:KeyUsage`.
    pub usage: KeyUsage,
    /// `kms:KeyOrigin`.
    pub origin: KeyOrigin,
}

impl KeyFacts<'_> {
    /// The key's ARN in `account`.
    pub fn arn(&self, account: &str) -> String {
        format!("arn:aws:kms:{}:{account}:key/{}", self.region, self.id)
    }
}

/// Everything a policy may ask about one request on one key.
#[derive(Clone, Copy, Debug)]
pub struct ConditionContext<'a> {
    /// What the request says.
    pub request: RequestFacts<'a>,
    /// Where it came from.
    pub connection: Connection,
    /// The key, when the request acts on one.
    pub key: Option<KeyFacts<'a>>,
    /// The alias the request named the key by (`kms:RequestAlias`), `alias/…`.
    pub request_alias: Option<&'a str>,
    /// The time (`aws:CurrentTime`); `None`: the clock, read when asked.
    pub now: Option<UnixMillis>,
}

impl ConditionContext<'_> {
    /// A request that says nothing and acts on no known key (tests, and decisions
    /// that ask no condition).
    pub const NONE: ConditionContext<'static> = ConditionContext {
        request: RequestFacts::NONE,
        connection: Connection {
            source_ip: None,
            secure_transport: None,
        },
        key: None,
        request_alias: None,
        now: None,
    };
}

/// The condition keys kcm evaluates.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ConditionKey {
    /// `kms:EncryptionContext:<name>` (the name compared without regard to case).
    EncryptionContext(String),
    EncryptionContextKeys,
    CallerAccount,
    EncryptionAlgorithm,
    SigningAlgorithm,
    KeySpec,
    KeyUsage,
    KeyOrigin,
    RequestAlias,
    GrantOperations,
    GrantIsForAwsResource,
    /// `kms:ViaService`: no request reaches kcm through an AWS service, so it is
    /// always absent (as in AWS for a direct call).
    ViaService,
    PrincipalArn,
    PrincipalAccount,
    SourceIp,
    SecureTransport,
    CurrentTime,
    EpochTime,
}

/// The names of [`ConditionKey`], lowercase, as a refusal lists them.
const KEY_NAMES: &[(&str, ConditionKey)] = &[
    (
        "kms:encryptioncontextkeys",
        ConditionKey::EncryptionContextKeys,
    ),
    ("kms:calleraccount", ConditionKey::CallerAccount),
    ("kms:encryptionalgorithm", ConditionKey::EncryptionAlgorithm),
    ("kms:signingalgorithm", ConditionKey::SigningAlgorithm),
    ("kms:keyspec", ConditionKey::KeySpec),
    ("kms:keyusage", ConditionKey::KeyUsage),
    ("kms:keyorigin", ConditionKey::KeyOrigin),
    ("kms:requestalias", ConditionKey::RequestAlias),
    ("kms:grantoperations", ConditionKey::GrantOperations),
    (
        "kms:grantisforawsresource",
        ConditionKey::GrantIsForAwsResource,
    ),
    ("kms:viaservice", ConditionKey::ViaService),
    ("aws:principalarn", ConditionKey::PrincipalArn),
    ("aws:principalaccount", ConditionKey::PrincipalAccount),
    ("aws:sourceip", ConditionKey::SourceIp),
    ("aws:securetransport", ConditionKey::SecureTransport),
    ("aws:currenttime", ConditionKey::CurrentTime),
    ("aws:epochtime", ConditionKey::EpochTime),
];

const KNOWN_KEYS: &str = "kms:EncryptionContext:<name>, kms:EncryptionContextKeys, \
kms:CallerAccount, kms:EncryptionAlgorithm, kms:SigningAlgorithm, kms:KeySpec, kms:KeyUsage, \
kms:KeyOrigin, kms:RequestAlias, kms:GrantOperations, kms:GrantIsForAWSResource, kms:ViaService, \
aws:PrincipalArn, aws:PrincipalAccount, aws:SourceIp, aws:SecureTransport, aws:CurrentTime, \
aws:EpochTime";

impl ConditionKey {
    fn parse(name: &str) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        if let Some(context_key) = lower.strip_prefix("kms:encryptioncontext:") {
            if context_key.is_empty() {
                return Err(malformed(format!(
                    "condition key {name:?} names no encryption context key"
                )));
            }
            return Ok(ConditionKey::EncryptionContext(context_key.to_string()));
        }
        KEY_NAMES
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, key)| key.clone())
            .ok_or_else(|| {
                malformed(format!(
                    "condition key {name:?} is not one kcm evaluates; it evaluates {KNOWN_KEYS}"
                ))
            })
    }

    /// The request's values of this key (none: the key is absent).
    fn values<'a>(&self, principal: &Principal, ctx: &ConditionContext<'a>) -> Vec<Fact<'a>> {
        let one = |fact: Option<Fact<'a>>| fact.into_iter().collect();
        let text = |s: Option<&'a str>| one(s.map(|s| Fact::Text(Cow::Borrowed(s))));
        let context = ctx.request.encryption_context.filter(|c| !c.is_empty());
        match self {
            ConditionKey::EncryptionContext(name) => text(context.and_then(|c| {
                c.iter()
                    .find(|(k, _)| k.to_ascii_lowercase() == *name)
                    .map(|(_, v)| v.as_str())
            })),
            ConditionKey::EncryptionContextKeys => context
                .map(|c| c.keys().map(|k| Fact::Text(Cow::Borrowed(k))).collect())
                .unwrap_or_default(),
            ConditionKey::CallerAccount | ConditionKey::PrincipalAccount => {
                one(Some(Fact::Text(Cow::Owned(principal.account_id.clone()))))
            }
            ConditionKey::EncryptionAlgorithm => text(ctx.request.encryption_algorithm),
            ConditionKey::SigningAlgorithm => text(ctx.request.signing_algorithm),
            ConditionKey::KeySpec => text(ctx.key.map(|k| k.spec.as_str())),
            ConditionKey::KeyUsage => text(ctx.key.map(|k| k.usage.as_str())),
            ConditionKey::KeyOrigin => text(ctx.key.map(|k| k.origin.as_str())),
            ConditionKey::RequestAlias => text(ctx.request_alias),
            ConditionKey::GrantOperations => {
                let mut facts = Vec::new();
                for op in ctx.request.grant_operations.unwrap_or_default() {
                    match op.as_str() {
                        // In AWS's names: kcm's one ReEncrypt is AWS's two.
                        "ReEncrypt" => facts.extend(
                            ["ReEncryptFrom", "ReEncryptTo"].map(|n| Fact::Text(Cow::Borrowed(n))),
                        ),
                        name => facts.push(Fact::Text(Cow::Borrowed(name))),
                    }
                }
                facts
            }
            ConditionKey::GrantIsForAwsResource => {
                one(ctx.request.grant_operations.map(|_| Fact::Bool(false)))
            }
            ConditionKey::ViaService => Vec::new(),
            ConditionKey::PrincipalArn => {
                one(Some(Fact::Text(Cow::Owned(principal_arn(principal)))))
            }
            ConditionKey::SourceIp => one(ctx.connection.source_ip.map(Fact::Ip)),
            ConditionKey::SecureTransport => one(ctx.connection.secure_transport.map(Fact::Bool)),
            ConditionKey::CurrentTime => one(Some(Fact::Time(
                ctx.now.unwrap_or_else(crate::service::now_ms),
            ))),
            ConditionKey::EpochTime => {
                let now = ctx.now.unwrap_or_else(crate::service::now_ms);
                one(Some(Fact::Text(Cow::Owned((now / 1000).to_string()))))
            }
        }
    }
}

/// One value of a condition key in a request.
#[derive(Clone, Debug)]
enum Fact<'a> {
    Text(Cow<'a, str>),
    Bool(bool),
    Ip(IpAddr),
    Time(UnixMillis),
}

impl Fact<'_> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Fact::Text(s) => Cow::Borrowed(s),
            Fact::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Fact::Ip(ip) => Cow::Owned(ip.to_string()),
            Fact::Time(ms) => Cow::Owned(rfc3339(*ms)),
        }
    }
}

/// How two values are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric(Order),
    Date(Order),
    Bool,
    IpAddress,
    Arn,
    Null,
}

/// A numeric or date comparison: request value `order` policy value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Order {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Order::Equal => ordering == Equal,
            Order::Less => ordering == Less,
            Order::LessOrEqual => ordering != Greater,
            Order::Greater => ordering == Greater,
            Order::GreaterOrEqual => ordering != Less,
        }
    }
}

/// The base operators: name, test, negated.
const OPERATORS: &[(&str, Test, bool)] = &[
    ("StringEquals", Test::String, false),
    ("StringNotEquals", Test::String, true),
    ("StringEqualsIgnoreCase", Test::StringIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Test::StringIgnoreCase, true),
    ("StringLike", Test::StringLike, false),
    ("StringNotLike", Test::StringLike, true),
    ("NumericEquals", Test::Numeric(Order::Equal), false),
    ("NumericNotEquals", Test::Numeric(Order::Equal), true),
    ("NumericLessThan", Test::Numeric(Order::Less), false),
    (
        "NumericLessThanEquals",
        Test::Numeric(Order::LessOrEqual),
        false,
    ),
    ("NumericGreaterThan", Test::Numeric(Order::Greater), false),
    (
        "NumericGreaterThanEquals",
        Test::Numeric(Order::GreaterOrEqual),
        false,
    ),
    ("DateEquals", Test::Date(Order::Equal), false),
    ("DateNotEquals", Test::Date(Order::Equal), true),
    ("DateLessThan", Test::Date(Order::Less), false),
    ("DateLessThanEquals", Test::Date(Order::LessOrEqual), false),
    ("DateGreaterThan", Test::Date(Order::Greater), false),
    (
        "DateGreaterThanEquals",
        Test::Date(Order::GreaterOrEqual),
        false,
    ),
    ("Bool", Test::Bool, false),
    ("IpAddress", Test::IpAddress, false),
    ("NotIpAddress", Test::IpAddress, true),
    ("ArnEquals", Test::Arn, false),
    ("ArnLike", Test::Arn, false),
    ("ArnNotEquals", Test::Arn, true),
    ("ArnNotLike", Test::Arn, true),
    ("Null", Test::Null, false),
];

/// `ForAnyValue:` or `ForAllValues:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetQualifier {
    AnyValue,
    AllValues,
}

/// A parsed operator: `[ForAnyValue:|ForAllValues:]<base>[IfExists]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Operator {
    test: Test,
    negated: bool,
    if_exists: bool,
    set: Option<SetQualifier>,
}

impl Operator {
    fn parse(name: &str) -> Result<Self> {
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::AnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::AllValues), rest)
        } else {
            (None, name)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let Some(&(_, test, negated)) = OPERATORS.iter().find(|(n, _, _)| *n == base) else {
            return Err(malformed(format!(
                "condition operator {name:?} is not one kcm knows; it knows {}, each with an \
                 IfExists form (but Null) and the ForAnyValue: and ForAllValues: qualifiers",
                OPERATORS
                    .iter()
                    .map(|(n, _, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if test == Test::Null && (if_exists || set.is_some()) {
            return Err(malformed(format!(
                "condition operator {name:?}: Null has no IfExists form and takes no set qualifier"
            )));
        }
        Ok(Operator {
            test,
            negated,
            if_exists,
            set,
        })
    }
}

/// One value a condition lists, parsed for its test.
#[derive(Clone, Debug, PartialEq)]
enum Expected {
    Text(String),
    Number(f64),
    Time(UnixMillis),
    Bool(bool),
    Network(IpAddr, u8),
}

impl Expected {
    fn parse(test: Test, operator: &str, key: &str, value: &Value) -> Result<Self> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(malformed(format!(
                    "condition {operator} {key:?}: {other} is not a string, number or boolean"
                )))
            }
        };
        let bad = |what: &str| {
            malformed(format!(
                "condition {operator} {key:?}: {text:?} is not {what}"
            ))
        };
        Ok(match test {
            Test::String | Test::StringIgnoreCase | Test::StringLike | Test::Arn => {
                Expected::Text(text)
            }
            Test::Numeric(_) => Expected::Number(
                text.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| bad("a number"))?,
            ),
            Test::Date(_) => Expected::Time(
                parse_date(&text).ok_or_else(|| bad("a date (ISO 8601, or epoch seconds)"))?,
            ),
            Test::Bool | Test::Null => {
                Expected::Bool(parse_bool(&text).ok_or_else(|| bad("true or false"))?)
            }
            Test::IpAddress => {
                let (ip, prefix) =
                    parse_network(&text).ok_or_else(|| bad("an IP address or CIDR block"))?;
                Expected::Network(ip, prefix)
            }
        })
    }

    /// Whether request value `fact` matches this under `test` (never negated here).
    fn matches(&self, test: Test, fact: &Fact<'_>) -> bool {
        match (test, self) {
            (Test::String, Expected::Text(want)) => fact.text() == want.as_str(),
            (Test::StringIgnoreCase, Expected::Text(want)) => {
                fact.text().to_lowercase() == want.to_lowercase()
            }
            (Test::StringLike, Expected::Text(want)) => {
                glob::matches(want, &fact.text(), Wildcards::StarAndQuestionMark)
            }
            (Test::Arn, Expected::Text(want)) => arn_like(want, &fact.text()),
            (Test::Numeric(order), Expected::Number(want)) => fact
                .text()
                .parse::<f64>()
                .ok()
                .and_then(|n| n.partial_cmp(want))
                .is_some_and(|o| order.holds(o)),
            (Test::Date(order), Expected::Time(want)) => {
                let at = match fact {
                    Fact::Time(ms) => Some(*ms),
                    other => parse_date(&other.text()),
                };
                at.is_some_and(|at| order.holds(at.cmp(want)))
            }
            (Test::Bool, Expected::Bool(want)) => match fact {
                Fact::Bool(b) => b == want,
                other => parse_bool(&other.text()) == Some(*want),
            },
            (Test::IpAddress, Expected::Network(net, prefix)) => match fact {
                Fact::Ip(ip) => in_network(*ip, *net, *prefix),
                other => other
                    .text()
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| in_network(ip, *net, *prefix)),
            },
            _ => false,
        }
    }
}

/// One operator applied to one key: `"<operator>": {"<key>": <values>}`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Condition {
    operator: Operator,
    key: ConditionKey,
    values: Vec<Expected>,
}

impl Condition {
    /// Parses a statement's `Condition` object.
    pub(crate) fn parse_block(block: &Value) -> Result<Vec<Condition>> {
        let Value::Object(operators) = block else {
            return Err(malformed(
                "Condition must be an object of operators, each an object of condition keys".into(),
            ));
        };
        let mut conditions = Vec::new();
        for (operator_name, keys) in operators {
            let operator = Operator::parse(operator_name)?;
            let Value::Object(keys) = keys else {
                return Err(malformed(format!(
                    "condition operator {operator_name:?} must name an object of condition keys and values"
                )));
            };
            if keys.is_empty() {
                return Err(malformed(format!(
                    "condition operator {operator_name:?} names no condition key"
                )));
            }
            for (key_name, values) in keys {
                let key = ConditionKey::parse(key_name)?;
                let listed: Vec<&Value> = match values {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                if listed.is_empty() {
                    return Err(malformed(format!(
                        "condition {operator_name} {key_name:?} lists no value"
                    )));
                }
                let values = listed
                    .into_iter()
                    .map(|v| Expected::parse(operator.test, operator_name, key_name, v))
                    .collect::<Result<Vec<_>>>()?;
                conditions.push(Condition {
                    operator,
                    key,
                    values,
                });
            }
        }
        Ok(conditions)
    }

    /// Whether the condition holds for `principal`'s request described by `ctx`.
    pub(crate) fn holds(&self, principal: &Principal, ctx: &ConditionContext<'_>) -> bool {
        let facts = self.key.values(principal, ctx);
        let Operator {
            test,
            negated,
            if_exists,
            set,
        } = self.operator;
        if test == Test::Null {
            // `Null: true` holds when the key is absent.
            return self.values.contains(&Expected::Bool(facts.is_empty()));
        }
        if facts.is_empty() {
            return if_exists
                || match set {
                    Some(SetQualifier::AllValues) => true,
                    Some(SetQualifier::AnyValue) => false,
                    None => negated,
                };
        }
        let matches_one = |fact: &Fact<'_>| self.values.iter().any(|v| v.matches(test, fact));
        match set {
            None => facts.iter().any(matches_one) != negated,
            Some(SetQualifier::AnyValue) => facts.iter().any(|f| matches_one(f) != negated),
            Some(SetQualifier::AllValues) => facts.iter().all(|f| matches_one(f) != negated),
        }
    }
}

/// IAM's ARN match: the six `:`-separated parts compared one by one, each with `*`
/// and `?` wildcards that do not reach into the next part.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let pattern: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn: Vec<&str> = arn.splitn(6, ':').collect();
    pattern.len() == 6
        && arn.len() == 6
        && pattern
            .iter()
            .zip(&arn)
            .all(|(p, a)| glob::matches(p, a, Wildcards::StarAndQuestionMark))
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An ISO 8601 date or date-time (`2026-12-31`, `2026-12-31T23:59:59Z`, with an
/// offset or fraction), or epoch seconds, as milliseconds since the epoch.
fn parse_date(s: &str) -> Option<UnixMillis> {
    use time::format_description::well_known::Rfc3339;
    if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().map(|secs| secs * 1000);
    }
    if let Ok(at) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok();
    }
    let day =
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(day.midnight().assume_utc().unix_timestamp() * 1000)
}

fn rfc3339(ms: UnixMillis) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `address` or `address/prefix`.
fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = address.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some((ip, prefix))
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        (IpAddr::V6(a), IpAddr::V4(n)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
            None => return false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => return false,
    };
    let host_bits = bits - u32::from(prefix);
    if host_bits >= 128 {
        return true;
    }
    (ip >> host_bits) == (net >> host_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn principal() -> Principal {
        Principal {
            access_key_id: "KCMAPPAAAAAAAAAAAAAA".into(),
            tenant_id: None,
            account_id: "111122223333".into(),
            role: Role::KeyUser,
            system_scope: None,
            operations: None,
        }
    }

    /// Whether the condition block `json` holds for a request with `ctx`.
    fn holds(json: &str, ctx: &ConditionContext<'_>) -> bool {
        let block: Value = serde_json::from_str(json).unwrap();
        Condition::parse_block(&block)
            .unwrap()
            .iter()
            .all(|c| c.holds(&principal(), ctx))
    }

    fn with_context(context: &BTreeMap<String, String>) -> ConditionContext<'_> {
        ConditionContext {
            request: RequestFacts {
                encryption_context: Some(context),
                encryption_algorithm: Some("SYMMETRIC_DEFAULT"),
                ..RequestFacts::NONE
            },
            ..ConditionContext::NONE
        }
    }

    fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn string_operators_match_one_of_the_listed_values() {
        let ec = context(&[("Department", "IT"), ("project", "alpha-7")]);
        let ctx = with_context(&ec);
        for (json, expected) in [
            (
                r#"{"StringEquals":{"kms:EncryptionContext:department":["HR","IT"]}}"#,
                true,
            ),
            (
                r#"{"StringEquals":{"kms:EncryptionContext:Department":"it"}}"#,
                false,
            ),
            (
                r#"{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Department":"it"}}"#,
                true,
            ),
            (
                r#"{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}"#,
                false,
            ),
            (
                r#"{"StringNotEquals":{"kms:EncryptionContext:Department":"HR"}}"#,
                true,
            ),
            (
                r#"{"StringLike":{"kms:EncryptionContext:project":"alpha-?"}}"#,
                true,
            ),
            (
                r#"{"StringLike":{"kms:EncryptionContext:project":"beta-*"}}"#,
                false,
            ),
            (
                r#"{"StringNotLike":{"kms:EncryptionContext:project":"beta-*"}}"#,
                true,
            ),
            (
                r#"{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#,
                true,
            ),
            (
                r#"{"StringEquals":{"kms:CallerAccount":"111122223333"}}"#,
                true,
            ),
            (
                r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/KCM*"}}"#,
                true,
            ),
            (
                r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}"#,
                false,
            ),
            // Two keys under one operator, two operators: all must hold.
            (
                r#"{"StringEquals":{"kms:EncryptionContext:Department":"IT","kms:EncryptionContext:project":"x"}}"#,
                false,
            ),
            (
                r#"{"StringEquals":{"kms:EncryptionContext:Department":"IT"},"StringLike":{"kms:EncryptionContext:project":"alpha*"}}"#,
                true,
            ),
        ] {
            assert_eq!(holds(json, &ctx), expected, "{json}");
        }
    }

    #[test]
    fn an_absent_key_fails_positive_operators_and_passes_negated_ones() {
        let ctx = ConditionContext::NONE;
        for (json, expected) in [
            (r#"{"StringEquals":{"kms:EncryptionContext:a":"x"}}"#, false),
            (
                r#"{"StringNotEquals":{"kms:EncryptionContext:a":"x"}}"#,
                true,
            ),
            (
                r#"{"StringEqualsIfExists":{"kms:EncryptionContext:a":"x"}}"#,
                true,
            ),
            (r#"{"Null":{"kms:EncryptionContextKeys":"true"}}"#, true),
            (r#"{"Null":{"kms:EncryptionContextKeys":false}}"#, false),
            (
                r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":"a"}}"#,
                true,
            ),
            (
                r#"{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"a"}}"#,
                false,
            ),
            (r#"{"StringLike":{"kms:ViaService":"*"}}"#, false),
        ] {
            assert_eq!(holds(json, &ctx), expected, "{json}");
        }
        // An empty encryption context is no encryption context.
        let empty = BTreeMap::new();
        assert!(holds(
            r#"{"Null":{"kms:EncryptionContextKeys":true}}"#,
            &with_context(&empty)
        ));
    }

    #[test]
    fn set_qualifiers_ask_any_or_every_value() {
        let ec = context(&[("app", "1"), ("tenant", "2")]);
        let ctx = with_context(&ec);
        for (json, expected) in [
            (
                r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["app","tenant","x"]}}"#,
                true,
            ),
            (
                r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["app"]}}"#,
                false,
            ),
            (
                r#"{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["app"]}}"#,
                true,
            ),
            (
                r#"{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["z"]}}"#,
                false,
            ),
            (
                r#"{"ForAnyValue:StringNotEquals":{"kms:EncryptionContextKeys":["app"]}}"#,
                true,
            ),
            (
                r#"{"ForAllValues:StringNotEquals":{"kms:EncryptionContextKeys":["app"]}}"#,
                false,
            ),
            (
                r#"{"StringEquals":{"kms:EncryptionContextKeys":"tenant"}}"#,
                true,
            ),
            (
                r#"{"StringNotEquals":{"kms:EncryptionContextKeys":"tenant"}}"#,
                false,
            ),
        ] {
            assert_eq!(holds(json, &ctx), expected, "{json}");
        }
        let ops = vec!["Encrypt".to_string(), "Decrypt".to_string()];
        let grant = ConditionContext {
            request: RequestFacts::grant(&ops),
            ..ConditionContext::NONE
        };
        assert!(holds(
            r#"{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt","DescribeKey"]},"Bool":{"kms:GrantIsForAWSResource":false}}"#,
            &grant
        ));
        assert!(!holds(
            r#"{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt"]}}"#,
            &grant
        ));
        // kcm's ReEncrypt is seen under AWS's two names.
        let ops = vec!["ReEncrypt".to_string()];
        let re_encrypt = ConditionContext {
            request: RequestFacts::grant(&ops),
            ..ConditionContext::NONE
        };
        for (json, expected) in [
            (
                r#"{"ForAllValues:StringEquals":{"kms:GrantOperations":["ReEncryptFrom","ReEncryptTo"]}}"#,
                true,
            ),
            (
                r#"{"ForAllValues:StringEquals":{"kms:GrantOperations":["ReEncryptFrom"]}}"#,
                false,
            ),
            (
                r#"{"ForAnyValue:StringEquals":{"kms:GrantOperations":"ReEncryptTo"}}"#,
                true,
            ),
            (
                r#"{"ForAnyValue:StringEquals":{"kms:GrantOperations":"ReEncrypt"}}"#,
                false,
            ),
        ] {
            assert_eq!(holds(json, &re_encrypt), expected, "{json}");
        }
    }

    #[test]
    fn numbers_dates_booleans_and_addresses_compare_as_such() {
        let ctx = ConditionContext {
            connection: Connection {
                source_ip: Some("10.1.2.3".parse().unwrap()),
                secure_transport: Some(true),
            },
            now: Some(1_800_000_000_000), // 2027-01-15T08:00:00Z
            ..ConditionContext::NONE
        };
        for (json, expected) in [
            (
                r#"{"DateLessThan":{"aws:CurrentTime":"2027-02-01T00:00:00Z"}}"#,
                true,
            ),
            (
                r#"{"DateGreaterThan":{"aws:CurrentTime":"2027-02-01"}}"#,
                false,
            ),
            (
                r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2027-01-15T09:00:00+01:00"}}"#,
                true,
            ),
            (
                r#"{"NumericGreaterThan":{"aws:EpochTime":1799999999}}"#,
                true,
            ),
            (
                r#"{"NumericGreaterThan":{"aws:EpochTime":1800000000}}"#,
                false,
            ),
            (r#"{"DateEquals":{"aws:EpochTime":"1800000000"}}"#, true),
            (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, true),
            (r#"{"Bool":{"aws:SecureTransport":false}}"#, false),
            (
                r#"{"IpAddress":{"aws:SourceIp":["192.168.0.0/16","10.0.0.0/8"]}}"#,
                true,
            ),
            (r#"{"IpAddress":{"aws:SourceIp":"10.1.2.4"}}"#, false),
            (r#"{"NotIpAddress":{"aws:SourceIp":"10.1.0.0/16"}}"#, false),
            (r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#, true),
            (r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#, false),
        ] {
            assert_eq!(holds(json, &ctx), expected, "{json}");
        }
        assert!(in_network(
            "::ffff:10.1.2.3".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(in_network(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::".parse().unwrap(),
            32
        ));
    }

    #[test]
    fn unknown_operators_keys_and_values_are_refused_naming_them() {
        for (json, needle) in [
            (
                r#"{"StringEqualz":{"kms:CallerAccount":"1"}}"#,
                "\"StringEqualz\"",
            ),
            (r#"{"StringEquals":{"kms:Shoe":"1"}}"#, "\"kms:Shoe\""),
            (
                r#"{"StringEquals":{"aws:SourceVpc":"1"}}"#,
                "\"aws:SourceVpc\"",
            ),
            (
                r#"{"NumericLessThan":{"aws:EpochTime":"soon"}}"#,
                "\"soon\"",
            ),
            (
                r#"{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}"#,
                "\"tomorrow\"",
            ),
            (r#"{"Bool":{"aws:SecureTransport":"yes"}}"#, "\"yes\""),
            (
                r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}"#,
                "\"10.0.0.0/33\"",
            ),
            (
                r#"{"NullIfExists":{"aws:SourceIp":true}}"#,
                "Null has no IfExists",
            ),
            (r#"{"StringEquals":{}}"#, "names no condition key"),
            (
                r#"{"StringEquals":{"kms:CallerAccount":[]}}"#,
                "lists no value",
            ),
            (
                r#"{"StringEquals":{"kms:CallerAccount":{"a":1}}}"#,
                "not a string",
            ),
            (
                r#"{"StringEquals":"kms:CallerAccount"}"#,
                "must name an object",
            ),
            (r#"["StringEquals"]"#, "Condition must be an object"),
        ] {
            let block: Value = serde_json::from_str(json).unwrap();
            let err = Condition::parse_block(&block).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedPolicy);
            assert!(err.message().contains(needle), "{json}: {err}");
        }
    }
}
