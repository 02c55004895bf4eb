//! The check of a request against its operation's shape, and AWS's words for what
//! breaks it.
//!
//! A member of the wrong JSON type, or a blob that is not base64, cannot be read at
//! all: `SerializationException`, naming the member. Everything else the shape says
//! (presence, length, range, pattern, enumeration) is gathered over the whole request
//! and answered at once as AWS does:
//!
//! `2 validation errors detected: Value '' at 'keyId' failed to satisfy constraint:
//! Member must have length greater than or equal to 1; Value null at 'plaintext' …`
//!
//! Paths are AWS's: the member name with a lower-case first letter, list elements as
//! `tags.1.member.tagKey` (from 1). A blob's or a sensitive member's value is never
//! shown ("Value at 'plaintext'"), as in AWS. Nothing is allocated unless a request
//! breaks its shape.

use serde_json::{Map, Value};

use super::{Member, Type};
use crate::error::AwsError;

/// Checks `object` against `members`.
pub fn check(members: &[Member], object: &Map<String, Value>) -> Result<(), AwsError> {
    let mut found = Violations::default();
    check_members(members, object, &Prefix::Top, &mut found)?;
    found.into_result()
}

/// What comes before a member's name in its path.
enum Prefix<'a> {
    /// A member of the request itself.
    Top,
    /// A member of a structure at this path (ends with `.`).
    Nested(&'a str),
}

impl Prefix<'_> {
    /// The path of the member called `name` (as sent: `KeyId`): `keyId`.
    fn path(&self, name: &str) -> String {
        let mut path = match self {
            Prefix::Top => String::with_capacity(name.len()),
            Prefix::Nested(prefix) => String::from(*prefix),
        };
        let mut chars = name.chars();
        if let Some(first) = chars.next() {
            path.extend(first.to_lowercase());
            path.push_str(chars.as_str());
        }
        path
    }
}

fn check_members(
    members: &[Member],
    object: &Map<String, Value>,
    prefix: &Prefix<'_>,
    found: &mut Violations,
) -> Result<(), AwsError> {
    for member in members {
        match object.get(member.name) {
            // JSON null is an absent member in AWS's protocol.
            None | Some(Value::Null) => {
                if member.required {
                    let shown = if member.sensitive { "" } else { " null" };
                    found.add(shown, prefix.path(member.name), "not be null");
                }
            }
            Some(value) => check_value(member, value, prefix, found)?,
        }
    }
    Ok(())
}

/// Why a value cannot be read as its member's type.
fn unreadable(member: &Member, expected: &str) -> AwsError {
    AwsError::bad_request(
        "SerializationException",
        format!("{} must be {expected}", member.name),
    )
}

fn check_value(
    member: &Member,
    value: &Value,
    prefix: &Prefix<'_>,
    found: &mut Violations,
) -> Result<(), AwsError> {
    let path = || prefix.path(member.name);
    match member.ty {
        Type::Str { min, max, pattern } => {
            let text = value
                .as_str()
                .ok_or_else(|| unreadable(member, "a string"))?;
            let shown = || shown_value(member, text);
            // Lengths in characters, as AWS counts them.
            let len = text.chars().count();
            found.bounds("length", len, (min, max), shown, path);
            if let Some(pattern) = pattern {
                if !pattern.matches(text) {
                    let rule = format!("satisfy regular expression pattern: {}", pattern.text());
                    found.add(&shown(), path(), &rule);
                }
            }
        }
        Type::Enum(values) => {
            let text = value
                .as_str()
                .ok_or_else(|| unreadable(member, "a string"))?;
            if !values.contains(&text) {
                found.add(&shown_value(member, text), path(), &enum_rule(values));
            }
        }
        Type::Blob { min, max } => {
            let text = value
                .as_str()
                .ok_or_else(|| unreadable(member, "a base64 string"))?;
            let len = base64_decoded_len(text)
                .filter(|_| member.sensitive || is_base64_alphabet(text))
                .ok_or_else(|| unreadable(member, "valid base64 (RFC 4648, padded)"))?;
            found.bounds("length", len, (min, max), String::new, path);
        }
        Type::Int { min, max } => {
            let n = value
                .as_i64()
                .ok_or_else(|| unreadable(member, "an integer"))?;
            found.bounds("value", n, (min, max), || format!(" '{n}'"), path);
        }
        Type::Bool => {
            value
                .as_bool()
                .ok_or_else(|| unreadable(member, "true or false"))?;
        }
        Type::Timestamp => {
            value
                .as_f64()
                .ok_or_else(|| unreadable(member, "a time in seconds since 1970"))?;
        }
        Type::Map => {
            let map = value
                .as_object()
                .ok_or_else(|| unreadable(member, "an object of strings"))?;
            if !map.values().all(Value::is_string) {
                return Err(unreadable(member, "an object of strings"));
            }
        }
        Type::Struct(members) => {
            let object = value
                .as_object()
                .ok_or_else(|| unreadable(member, "an object"))?;
            let nested = format!("{}.", path());
            check_members(members, object, &Prefix::Nested(&nested), found)?;
        }
        Type::List { min, max, item } => {
            let items = value
                .as_array()
                .ok_or_else(|| unreadable(member, "a list"))?;
            check_list(member, items, (min, max), item, prefix, found)?;
        }
    }
    Ok(())
}

/// A list: its own length, then its elements. Elements that are structures are
/// checked member by member (`tags.1.member.tagKey`); scalar elements are judged
/// together, as AWS does: `Value '[a, b]' at 'grantTokens' failed to satisfy
/// constraint: Member must satisfy constraint: [Member must have length …]`.
fn check_list(
    member: &Member,
    items: &[Value],
    (min, max): (usize, usize),
    item: &'static Type,
    prefix: &Prefix<'_>,
    found: &mut Violations,
) -> Result<(), AwsError> {
    let path = || prefix.path(member.name);
    let shown = || format!(" '{}'", list_text(items));
    found.bounds("length", items.len(), (min, max), shown, path);
    if let Type::Struct(members) = item {
        for (i, element) in items.iter().enumerate() {
            let object = element
                .as_object()
                .ok_or_else(|| unreadable(member, "a list of objects"))?;
            let nested = format!("{}.{}.member.", path(), i + 1);
            check_members(members, object, &Prefix::Nested(&nested), found)?;
        }
        return Ok(());
    }
    // Scalar elements: check each against the element type, gathering the rules
    // broken by any of them.
    let element = Member {
        name: member.name,
        ty: *item,
        required: false,
        sensitive: member.sensitive,
    };
    let mut broken = Violations::default();
    for value in items {
        check_value(&element, value, &Prefix::Top, &mut broken)?;
    }
    if !broken.rules.is_empty() {
        broken.rules.dedup();
        let rule = format!("satisfy constraint: [{}]", broken.rules.join(", "));
        found.add(&shown(), path(), &rule);
    }
    Ok(())
}

/// `Value '<text>'`, or nothing for a sensitive member.
fn shown_value(member: &Member, text: &str) -> String {
    if member.sensitive {
        String::new()
    } else {
        format!(" '{text}'")
    }
}

/// A list as AWS prints it: `[a, b]`.
fn list_text(items: &[Value]) -> String {
    let texts: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    format!("[{}]", texts.join(", "))
}

/// `satisfy enum value set: [A, B]`, in the order of AWS's API reference.
fn enum_rule(values: &[&str]) -> String {
    format!("satisfy enum value set: [{}]", values.join(", "))
}

/// The length of what `text` decodes to, if it is padded standard base64: from its
/// length and padding alone. For a sensitive blob (a plaintext), which characters
/// it holds is left to its one decode, in the operation's type (a scan here would
/// cost as much as the decode: 4 µs for a 4 KiB plaintext); a character outside the
/// alphabet fails there, as SerializationException too. Other blobs are scanned
/// whole ([`is_base64_alphabet`]): see `Request::parse` for why.
fn base64_decoded_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let padding = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return None;
    }
    Some(bytes.len() / 4 * 3 - padding)
}

/// Whether every character of `text` is of standard base64 (padding at the end).
fn is_base64_alphabet(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    body.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Most violations one answer spells out. A 128 KiB body of empty tags breaks
/// thousands of rules; listing them all would answer with megabytes. Past this, the
/// count stays exact and the rest are summed up (`…; and 8900 more`).
const MAX_LISTED: usize = 100;

/// The broken rules of one request, in the order found.
#[derive(Default)]
struct Violations {
    /// Whole items: `Value 'x' at 'p' failed to satisfy constraint: Member must …`.
    items: Vec<String>,
    /// How many more were found than `items` holds.
    more: usize,
    /// The rules alone (`Member must …`), for a list's elements.
    rules: Vec<String>,
}

impl Violations {
    /// Notes that the value (`shown`: ` 'x'`, ` null` or nothing) at `path` breaks
    /// `Member must <rule>`.
    fn add(&mut self, shown: &str, path: String, rule: &str) {
        if self.items.len() < MAX_LISTED {
            self.items.push(format!(
                "Value{shown} at '{path}' failed to satisfy constraint: Member must {rule}"
            ));
        } else {
            self.more += 1;
        }
        if self.rules.len() < MAX_LISTED {
            self.rules.push(format!("Member must {rule}"));
        }
    }

    /// Notes a length or value (`what`) `n` outside `min..=max`: "Member must have
    /// length greater than or equal to 1" and its kin.
    fn bounds<N: PartialOrd + std::fmt::Display>(
        &mut self,
        what: &str,
        n: N,
        (min, max): (N, N),
        shown: impl Fn() -> String,
        path: impl Fn() -> String,
    ) {
        if n < min {
            let rule = format!("have {what} greater than or equal to {min}");
            self.add(&shown(), path(), &rule);
        }
        if n > max {
            let rule = format!("have {what} less than or equal to {max}");
            self.add(&shown(), path(), &rule);
        }
    }

    fn into_result(self) -> Result<(), AwsError> {
        let more = match self.more {
            0 => String::new(),
            n => format!("; and {n} more"),
        };
        match self.items.len() + self.more {
            0 => Ok(()),
            1 => Err(AwsError::validation(format!(
                "1 validation error detected: {}",
                self.items[0]
            ))),
            n => Err(AwsError::validation(format!(
                "{n} validation errors detected: {}{more}",
                self.items.join("; ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::{self, Pattern};
    use kcm_core::authz::Op;
    use kcm_frontdoor::DoorError;

    fn message(op: Op, body: &str) -> Result<(), (String, String)> {
        let Value::Object(object) = serde_json::from_str(body).unwrap() else {
            panic!("not an object")
        };
        check(shape::of(op), &object).map_err(|e| (e.code().to_string(), e.message().to_string()))
    }

    fn validation(op: Op, body: &str) -> String {
        match message(op, body) {
            Err((code, message)) if code == "ValidationException" => message,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_request_within_its_shape_passes() {
        let ok = [
            (Op::Encrypt, r#"{"KeyId":"alias/x","Plaintext":"AA=="}"#),
            (
                Op::CreateKey,
                r#"{"Tags":[{"TagKey":"k","TagValue":""}],"KeySpec":"RSA_2048"}"#,
            ),
            (
                Op::CreateGrant,
                r#"{"KeyId":"k","Operations":["Encrypt","Decrypt"],"GrantTokens":[]}"#,
            ),
            (Op::ListKeys, r#"{"Limit":1000,"Marker":null}"#),
        ];
        for (op, body) in ok {
            assert_eq!(message(op, body), Ok(()), "{body}");
        }
    }

    #[test]
    fn each_broken_rule_is_worded_as_aws_words_it() {
        let cases = [
            (Op::DescribeKey, "{}", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"),
            (Op::Encrypt, r#"{"KeyId":"k"}"#, "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must not be null"),
            (Op::Encrypt, r#"{"KeyId":"k","Plaintext":""}"#, "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"),
            (Op::Verify, r#"{"KeyId":"k","Message":"AA==","SigningAlgorithm":"ECDSA_SHA_256"}"#, "1 validation error detected: Value null at 'signature' failed to satisfy constraint: Member must not be null"),
            (Op::GetPublicKey, r#"{"KeyId":""}"#, "2 validation errors detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'keyId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\p{ASCII}+$"),
            (Op::EnableKeyRotation, r#"{"KeyId":"k","RotationPeriodInDays":89}"#, "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90"),
            (Op::GenerateDataKey, r#"{"KeyId":"k","KeySpec":"AES_512"}"#, "1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"),
            (Op::CreateAlias, r#"{"AliasName":"alias/a b","TargetKeyId":"k"}"#, "1 validation error detected: Value 'alias/a b' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"),
            (Op::TagResource, r#"{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":"b"},{"TagKey":""}]}"#, "2 validation errors detected: Value '' at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1; Value null at 'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null"),
            (Op::CreateGrant, r#"{"KeyId":"k","Operations":["Encrypt","Nope"]}"#, "1 validation error detected: Value '[Encrypt, Nope]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, Sign, Verify, GetPublicKey, CreateGrant, RetireGrant, DescribeKey, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, DeriveSharedSecret, Encapsulate, Decapsulate]]"),
        ];
        for (op, body, expected) in cases {
            assert_eq!(validation(op, body), expected, "{op:?} {body}");
        }
    }

    #[test]
    fn every_broken_rule_is_listed_in_one_answer() {
        let long = "k".repeat(2049);
        let body = format!(
            r#"{{"KeyId":"{long}","Plaintext":"","GrantTokens":["{}","","","","","","","","","","t"]}}"#,
            "t"
        );
        let got = validation(Op::Encrypt, &body);
        assert!(got.starts_with("4 validation errors detected: "), "{got}");
        assert!(got.contains("at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048"));
        assert!(got.contains("Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"));
        assert!(got.contains("Value '[t, , , , , , , , , , t]' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"));
        assert!(got.contains("at 'grantTokens' failed to satisfy constraint: Member must satisfy constraint: [Member must have length greater than or equal to 1]"));
    }

    #[test]
    fn an_answer_lists_at_most_a_hundred_violations_and_counts_them_all() {
        let tags: Vec<String> = (0..500).map(|_| r#"{"TagKey":""}"#.to_string()).collect();
        let body = format!(r#"{{"KeyId":"k","Tags":[{}]}}"#, tags.join(","));
        let got = validation(Op::TagResource, &body);
        assert!(
            got.starts_with("1000 validation errors detected: "),
            "{}",
            &got[..80]
        );
        assert!(
            got.ends_with("; and 900 more"),
            "{}",
            &got[got.len() - 80..]
        );
        assert_eq!(got.matches("failed to satisfy constraint").count(), 100);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_unreadable() {
        for (op, body) in [
            (Op::DescribeKey, r#"{"KeyId":5}"#),
            (
                Op::Encrypt,
                r#"{"KeyId":"k","Plaintext":"AA==","EncryptionContext":{"a":1}}"#,
            ),
            (Op::ListKeys, r#"{"Limit":1.5}"#),
            // A blob that is not a plaintext is scanned whole.
            (
                Op::VerifyMac,
                r#"{"KeyId":"k","Message":"AA==","MacAlgorithm":"HMAC_SHA_256","Mac":"AA*A"}"#,
            ),
            (Op::CreateKey, r#"{"Tags":{"TagKey":"k"}}"#),
            (Op::CreateKey, r#"{"MultiRegion":"yes"}"#),
        ] {
            let (code, _) = message(op, body).expect_err(body);
            assert_eq!(code, "SerializationException", "{body}");
        }
    }

    #[test]
    fn base64_lengths_are_those_decoded() {
        use base64::Engine;
        for n in 0..20 {
            let text = base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
            assert_eq!(base64_decoded_len(&text), Some(n), "{text}");
        }
        for bad in ["A", "AA=", "A===", "===="] {
            assert_eq!(base64_decoded_len(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_pattern_compiles_and_means_what_aws_wrote() {
        for pattern in Pattern::ALL {
            // Compiling is the first use.
            let _ = pattern.matches("x");
        }
        assert!(Pattern::Ascii.matches("alias/x"));
        assert!(!Pattern::Ascii.matches("キー"));
        assert!(Pattern::PolicyName.matches("default"));
        assert!(!Pattern::PolicyName.matches("-"));
        assert!(Pattern::PrincipalId.matches("arn:aws:iam::111122223333:role/a+b=c,d.e@f"));
        assert!(!Pattern::PrincipalId.matches("a b"));
        // Java's \w is ASCII: so is the pattern's.
        assert!(!Pattern::PrincipalId.matches("é"));
        assert!(Pattern::Policy.matches("{\"é\": 1}"));
        assert!(!Pattern::Policy.matches("€"));
        assert!(Pattern::KeyMaterialId.matches(&"ab".repeat(32)));
        assert!(!Pattern::KeyMaterialId.matches("AB"));
    }
}
