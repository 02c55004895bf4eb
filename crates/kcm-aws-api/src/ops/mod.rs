//! One module per group of operations; each operation parses its request, calls the
//! core, and shapes the AWS response. No business rule lives here.

pub mod aliases;
pub mod asymmetric;
pub mod crypto;
pub mod import;
pub mod keys;
pub mod policies;
pub mod rotation;
pub mod tags;

use std::collections::BTreeMap;

use kcm_core::authz::{Caller, Op};
use kcm_core::keyspec::KeyAlgorithms;
use kcm_core::service::{KeyInfo, KeyRef, Service};
use serde::Serialize;

use crate::error::AwsError;
use crate::ids;
pub use crate::shape::Request;

/// What every operation gets: the core, the authenticated caller, and the region.
pub struct Ctx<'a> {
    /// The core.
    pub service: &'a Service,
    /// Who signed the request (and what the core notes for its audit record).
    pub caller: &'a Caller,
    /// The operation being served.
    pub op: Op,
}

impl Ctx<'_> {
    /// The region in ARNs.
    pub fn region(&self) -> &str {
        self.service.region()
    }

    /// Parses a key identifier: an alias only where the operation takes one
    /// ([`ids::takes_alias`]).
    pub fn key(&self, input: &str) -> Result<KeyRef, AwsError> {
        let key = ids::parse_key_ref(input, self.region())?;
        if !ids::takes_alias(self.op) && matches!(key.unqualified(), KeyRef::Alias(_)) {
            return Err(AwsError::bad_request(
                "InvalidArnException",
                "Key Aliases are not supported for this operation.",
            ));
        }
        Ok(key)
    }

    /// Parses a key identifier that a request may leave out.
    pub fn optional_key(&self, input: Option<&str>) -> Result<Option<KeyRef>, AwsError> {
        input.map(|k| self.key(k)).transpose()
    }

    /// The key of a request that names nothing but a key (`{"KeyId": …}`).
    pub fn requested_key(&self, body: Request) -> Result<KeyRef, AwsError> {
        let req: KeyIdRequest = body.parse()?;
        self.key(&req.key_id)
    }

    /// The ARN of a key of the caller.
    pub fn arn(&self, id: kcm_core::model::KeyId) -> String {
        ids::key_arn(self.region(), &self.caller.principal.account_id, id)
    }
}

/// Serialises a response body.
pub fn reply<T: Serialize>(value: &T) -> Result<Vec<u8>, AwsError> {
    serde_json::to_vec(value).map_err(|e| kcm_core::error::Error::internal(e).into())
}

/// An encryption context as sent (absent = empty).
pub type Context = BTreeMap<String, String>;

/// `KeyMetadata` as AWS returns it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    aws_account_id: String,
    key_id: String,
    arn: String,
    creation_date: f64,
    enabled: bool,
    description: String,
    key_usage: &'static str,
    key_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_date: Option<f64>,
    origin: &'static str,
    key_manager: &'static str,
    customer_master_key_spec: &'static str,
    key_spec: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    encryption_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    signing_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mac_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    key_agreement_algorithms: Vec<&'static str>,
    multi_region: bool,
    /// For origin EXTERNAL: whether the imported material expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_model: Option<&'static str>,
    /// For origin EXTERNAL with expiring material: when it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_to: Option<f64>,
    /// For symmetric encryption keys: the material that encrypts now; it changes
    /// when the key rotates.
    #[serde(skip_serializing_if = "Option::is_none")]
    current_key_material_id: Option<String>,
    /// kcm's own lifecycle state, finer than AWS's `KeyState` (extra members are
    /// ignored by AWS SDKs).
    kcm_key_state: &'static str,
}

/// AWS's `KeyState` for a kcm lifecycle state. Suspended and compromised keys have no
/// AWS equivalent; `Unavailable` is what AWS reports for keys that cannot be used normally.
pub fn aws_key_state(state: kcm_core::lifecycle::KeyState) -> &'static str {
    use kcm_core::lifecycle::KeyState::*;
    match state {
        PreActive => "PendingImport",
        Active => "Enabled",
        Suspended | Compromised => "Unavailable",
        Disabled => "Disabled",
        PendingDeletion | Destroyed | DestroyedCompromised => "PendingDeletion",
    }
}

impl KeyMetadata {
    /// Builds the metadata of `info` in `region`.
    pub fn new(region: &str, info: &KeyInfo) -> Self {
        let r = &info.record;
        let state = r.lifecycle.state();
        let algorithms = KeyAlgorithms::of(r.spec, r.usage);
        Self {
            aws_account_id: info.account_id.clone(),
            key_id: r.id.to_string(),
            arn: ids::key_arn(region, &info.account_id, r.id),
            creation_date: crate::codec::epoch_seconds(r.created_at),
            enabled: state == kcm_core::lifecycle::KeyState::Active,
            description: r.description.clone(),
            key_usage: r.usage.as_str(),
            key_state: aws_key_state(state),
            deletion_date: r.deletion_at.map(crate::codec::epoch_seconds),
            origin: r.origin.as_str(),
            key_manager: "CUSTOMER",
            customer_master_key_spec: r.spec.as_str(),
            key_spec: r.spec.as_str(),
            encryption_algorithms: algorithms.encryption,
            signing_algorithms: algorithms.signing,
            mac_algorithms: algorithms.mac,
            key_agreement_algorithms: algorithms.key_agreement,
            multi_region: false,
            expiration_model: (r.origin == kcm_core::keyspec::KeyOrigin::External).then_some(
                if r.material_expires_at.is_some() {
                    "KEY_MATERIAL_EXPIRES"
                } else {
                    "KEY_MATERIAL_DOES_NOT_EXPIRE"
                },
            ),
            valid_to: r.material_expires_at.map(crate::codec::epoch_seconds),
            // A key still waiting for its imported material has none yet.
            current_key_material_id: (r.spec == kcm_core::keyspec::KeySpec::SymmetricDefault
                && state != kcm_core::lifecycle::KeyState::PreActive)
                .then(|| r.current_material_id()),
            kcm_key_state: state.as_str(),
        }
    }
}

/// `{"KeyMetadata": …}`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadataResponse {
    key_metadata: KeyMetadata,
}

impl KeyMetadataResponse {
    /// Wraps metadata of `info`.
    pub fn new(region: &str, info: &KeyInfo) -> Self {
        Self {
            key_metadata: KeyMetadata::new(region, info),
        }
    }
}

/// A request that only names a key.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyIdRequest {
    /// The key.
    pub key_id: String,
}

/// An empty response body.
pub fn empty() -> Result<Vec<u8>, AwsError> {
    Ok(b"{}".to_vec())
}

/// How an AWS list response ends: `Truncated`, with the `NextMarker` that the next
/// request passes while it is. Every list response flattens one in, so that the two
/// members always agree.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PageEnd {
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

impl PageEnd {
    /// A page that continues after `next_marker`, or the last page when it is `None`.
    pub fn at(next_marker: Option<String>) -> Self {
        Self {
            truncated: next_marker.is_some(),
            next_marker,
        }
    }
}

/// Validates an AWS page size given as `Limit` (1..=`max`).
pub fn check_limit(limit: Option<i64>, max: u32) -> Result<Option<u32>, AwsError> {
    match limit {
        None => Ok(None),
        Some(l) if l >= 1 && l <= i64::from(max) => Ok(Some(l as u32)),
        Some(l) => Err(AwsError::validation(format!(
            "Limit must be between 1 and {max}, got {l}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ListThings {
        things: Vec<u8>,
        #[serde(flatten)]
        page_end: PageEnd,
    }

    fn listed(next_marker: Option<&str>) -> serde_json::Value {
        let list = ListThings {
            things: vec![1],
            page_end: PageEnd::at(next_marker.map(String::from)),
        };
        serde_json::from_slice(&reply(&list).unwrap()).unwrap()
    }

    #[test]
    fn a_page_end_is_two_members_of_the_list_response() {
        assert_eq!(
            listed(Some("m")),
            serde_json::json!({"Things": [1], "Truncated": true, "NextMarker": "m"})
        );
        // The last page has no NextMarker at all, as in AWS.
        assert_eq!(
            listed(None),
            serde_json::json!({"Things": [1], "Truncated": false})
        );
    }
}
