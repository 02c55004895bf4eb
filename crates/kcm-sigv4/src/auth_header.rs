//! Parsing the `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::date::truncated;
use crate::SigV4Error;

/// The only supported algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credential scope: `<date>/<region>/<service>/<terminator>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD` (checked to be eight digits).
    pub date: String,
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The signing service, e.g. `kms`.
    pub service: String,
    /// Should be `aws4_request` (checked by [`crate::verify`]).
    pub terminator: String,
}

impl CredentialScope {
    /// The scope as it appears in the string to sign.
    pub fn to_scope_string(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

/// A parsed SigV4 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    /// The access key id from the credential.
    pub access_key_id: String,
    /// The credential scope.
    pub scope: CredentialScope,
    /// The signed header names, lowercase, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature the client sent.
    pub signature: [u8; 32],
}

fn malformed(msg: impl Into<String>) -> SigV4Error {
    SigV4Error::MalformedAuthorization(msg.into())
}

/// Reads and parses the request's `Authorization` header.
pub fn parse_authorization(headers: &HeaderMap) -> Result<AuthorizationHeader, SigV4Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(SigV4Error::MissingAuthorization)?;
    if values.next().is_some() {
        return Err(malformed("Only one Authorization header is allowed."));
    }
    let value = value
        .to_str()
        .map_err(|_| malformed("Authorization header contains invalid characters."))?;
    parse_authorization_value(value)
}

/// Parses the value of an `Authorization` header.
pub(crate) fn parse_authorization_value(value: &str) -> Result<AuthorizationHeader, SigV4Error> {
    let value = value.trim();
    let (algorithm, params) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(truncated(algorithm)));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in params.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, val) = part.split_once('=').ok_or_else(|| {
            malformed(format!(
                "Authorization header requires each component to be 'key=value'; got '{}'.",
                truncated(part)
            ))
        })?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => {
                return Err(malformed(format!(
                    "Unknown Authorization header component '{}'.",
                    truncated(name)
                )))
            }
        };
        if slot.replace(val).is_some() {
            return Err(malformed(format!(
                "Authorization header component '{name}' appears more than once."
            )));
        }
    }
    let missing: Vec<&str> = [
        ("Credential", credential.is_none()),
        ("SignedHeaders", signed.is_none()),
        ("Signature", signature.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        let msg = missing
            .iter()
            .map(|n| format!("Authorization header requires '{n}' parameter."))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(malformed(msg));
    }
    let (access_key_id, scope) = parse_credential(credential.unwrap_or_default())?;
    Ok(AuthorizationHeader {
        access_key_id,
        scope,
        signed_headers: parse_signed_headers(signed.unwrap_or_default())?,
        signature: parse_signature(signature.unwrap_or_default())?,
    })
}

fn parse_credential(value: &str) -> Result<(String, CredentialScope), SigV4Error> {
    let parts: Vec<&str> = value.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed(format!(
            "Credential must have the form '<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request'; got '{}'.",
            truncated(value)
        )));
    };
    if akid.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed(
            "Credential has an empty access key id, region or service.",
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "Credential scope date must be YYYYMMDD; got '{}'.",
            truncated(date)
        )));
    }
    Ok((
        (*akid).to_owned(),
        CredentialScope {
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
            terminator: (*terminator).to_owned(),
        },
    ))
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, SigV4Error> {
    let mut names: Vec<String> = Vec::new();
    for name in value.split(';') {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase());
        if !valid {
            return Err(malformed(format!(
                "SignedHeaders must be a ';'-separated list of lowercase header names; got '{}'.",
                truncated(value)
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(malformed(format!(
                "SignedHeaders lists '{}' more than once.",
                truncated(name)
            )));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn parse_signature(value: &str) -> Result<[u8; 32], SigV4Error> {
    let mut out = [0u8; 32];
    if value.len() != 64 || hex::decode_to_slice(value, &mut out).is_err() {
        return Err(malformed("Signature must be 64 hexadecimal characters."));
    }
    Ok(out)
}
