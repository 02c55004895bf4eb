//! How the core's values become `/v1` bodies ([`kcm_api_types`]).
//!
//! The bodies are shared with clients, which do not depend on the core; so the
//! conversions live here, on the server's side. `From` cannot express them (neither
//! type is this crate's), hence the small [`ToWire`] trait.

use kcm_api_types::{
    AccessKey, AccessKeyList, CreateTenantResponse, CreatedAccessKey, Keychain, KeychainRootKey,
    KeychainServiceKeyNode, KeychainSystemNode, RootKey, RootKeyImpactBody,
    RootKeyImportParameters, RootKeyList, ServiceKey, System, SystemKeyRotationBody, SystemList,
    Tenant, TenantList,
};
use kcm_core::model::{CredentialKind, TenantRecord, UnixMillis};
use kcm_core::service::{
    AccessKeyInfo, ImportParameters, KeyInfo, KeychainRoot, KeychainServiceKey, KeychainSystem,
    KeychainView, NewAccessKey, NewTenant, RootKeyImpact, RootKeyInfo, SystemInfo,
    SystemKeyRotation,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A core value that has a `/v1` body.
pub(crate) trait ToWire {
    /// The body.
    type Wire;
    /// The body of this value.
    fn to_wire(&self) -> Self::Wire;
}

/// The bodies of a list of core values.
pub(crate) fn all<T: ToWire>(items: &[T]) -> Vec<T::Wire> {
    items.iter().map(ToWire::to_wire).collect()
}

/// The list bodies: what `GET` of a collection answers with.
macro_rules! list_bodies {
    ($($item:ty => $list:ident { $field:ident }),+ $(,)?) => {$(
        impl ToWire for Vec<$item> {
            type Wire = $list;
            fn to_wire(&self) -> $list {
                $list { $field: all(self) }
            }
        }
    )+};
}

list_bodies! {
    TenantRecord => TenantList { tenants },
    AccessKeyInfo => AccessKeyList { access_keys },
    SystemInfo => SystemList { systems },
    RootKeyInfo => RootKeyList { root_keys },
}

/// Formats milliseconds since the Unix epoch as an RFC 3339 UTC timestamp.
pub(crate) fn rfc3339(ms: UnixMillis) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or_else(
        |_| {
            tracing::warn!(ms, "timestamp out of range; shown as the epoch");
            OffsetDateTime::UNIX_EPOCH
        },
    );
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl ToWire for TenantRecord {
    type Wire = Tenant;
    fn to_wire(&self) -> Tenant {
        Tenant {
            id: self.id.to_string(),
            name: self.name.clone(),
            account_id: self.account_id.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

impl ToWire for NewTenant {
    type Wire = CreateTenantResponse;
    fn to_wire(&self) -> CreateTenantResponse {
        CreateTenantResponse {
            tenant: self.tenant.to_wire(),
            access_key: self.access_key.to_wire(),
        }
    }
}

impl ToWire for AccessKeyInfo {
    type Wire = AccessKey;
    fn to_wire(&self) -> AccessKey {
        AccessKey {
            access_key_id: self.id.clone(),
            kind: self.kind.as_str().to_string(),
            role: self.role.as_str().to_string(),
            tenant_id: self.tenant_id.map(|t| t.to_string()),
            system: self.system.clone(),
            description: self.description.clone(),
            enabled: self.enabled,
            operations: self.operations.clone(),
            created_at: rfc3339(self.created_at),
            arn: self.arn.clone(),
        }
    }
}

impl ToWire for NewAccessKey {
    type Wire = CreatedAccessKey;
    fn to_wire(&self) -> CreatedAccessKey {
        CreatedAccessKey {
            access_key: self.info.to_wire(),
            secret_access_key: self.secret.expose_secret().to_string(),
            vault_token: (self.info.kind == CredentialKind::Vault)
                .then(|| kcm_core::model::vault_token(&self.info.id, self.secret.expose_secret())),
        }
    }
}

impl ToWire for SystemInfo {
    type Wire = System;
    fn to_wire(&self) -> System {
        System {
            id: self.record.id.to_string(),
            name: self.record.name.clone(),
            kind: self.record.kind.clone(),
            description: self.record.description.clone(),
            region: self.record.region.clone(),
            labels: self.record.labels.clone(),
            root_key_id: self.root_key_id.map(|id| id.to_string()),
            system_key_state: self.system_key_state.map(|state| state.to_string()),
            system_key_version: self.record.active_key_version,
            status: self.status.describe(),
            created_at: rfc3339(self.record.created_at),
        }
    }
}

impl ToWire for SystemKeyRotation {
    type Wire = SystemKeyRotationBody;
    fn to_wire(&self) -> SystemKeyRotationBody {
        SystemKeyRotationBody {
            system: self.system.to_wire(),
            rewrapped: self.rewrapped,
            remaining: self.remaining,
        }
    }
}

impl ToWire for KeychainServiceKey {
    type Wire = KeychainServiceKeyNode;
    fn to_wire(&self) -> KeychainServiceKeyNode {
        KeychainServiceKeyNode {
            id: self.id.to_string(),
            description: self.description.clone(),
            state: self.state.to_string(),
            primary_version: self.primary_version,
            aliases: self.aliases.clone(),
        }
    }
}

impl ToWire for KeychainSystem {
    type Wire = KeychainSystemNode;
    fn to_wire(&self) -> KeychainSystemNode {
        KeychainSystemNode {
            id: self.id.to_string(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            state: self.state.map(|state| state.to_string()),
            system_key_version: self.system_key_version,
            status: self.status.clone(),
            service_keys: all(&self.service_keys),
            managed_objects: self.managed_objects,
            xks_access_keys: self.xks_access_keys.clone(),
            kmip_clients: self.kmip_clients.clone(),
            vault_tokens: self.vault_tokens.clone(),
        }
    }
}

impl ToWire for KeychainRoot {
    type Wire = KeychainRootKey;
    fn to_wire(&self) -> KeychainRootKey {
        KeychainRootKey {
            id: self.id.to_string(),
            keystore: self.keystore.clone(),
            origin: self.origin.as_str().to_string(),
            state: self.state.to_string(),
            systems: all(&self.systems),
        }
    }
}

impl ToWire for KeychainView {
    type Wire = Keychain;
    fn to_wire(&self) -> Keychain {
        Keychain {
            tenant: self.tenant.to_wire(),
            root_keys: all(&self.roots),
            unlinked_systems: all(&self.unlinked),
        }
    }
}

impl ToWire for RootKeyInfo {
    type Wire = RootKey;
    fn to_wire(&self) -> RootKey {
        RootKey {
            id: self.id.to_string(),
            keystore: self.keystore.clone(),
            keystore_kind: self.keystore_kind.to_string(),
            origin: self.origin.as_str().to_string(),
            state: self.state.to_string(),
            description: self.description.clone(),
            default: self.is_default,
            created_at: rfc3339(self.created_at),
        }
    }
}

impl ToWire for ImportParameters {
    type Wire = RootKeyImportParameters;
    fn to_wire(&self) -> RootKeyImportParameters {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.public_key_der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        RootKeyImportParameters {
            import_token: self.import_token.clone(),
            public_key: b64,
            public_key_pem: pem,
            wrapping_algorithm: self.algorithm.as_str().to_string(),
            wrapping_key_spec: self.key_spec.as_str().to_string(),
            expires_at: rfc3339(self.expires_at),
        }
    }
}

impl ToWire for RootKeyImpact {
    type Wire = RootKeyImpactBody;
    fn to_wire(&self) -> RootKeyImpactBody {
        RootKeyImpactBody {
            root_key: self.root.to_wire(),
            previous_state: self.previous_state.to_string(),
            new_state: self.new_state.to_string(),
            applied: self.applied,
            systems: all(&self.systems),
        }
    }
}

impl ToWire for KeyInfo {
    type Wire = ServiceKey;
    fn to_wire(&self) -> ServiceKey {
        let r = &self.record;
        ServiceKey {
            id: r.id.to_string(),
            system_id: r.system_id.to_string(),
            key_spec: r.spec.as_str().to_string(),
            key_usage: r.usage.as_str().to_string(),
            origin: r.origin.as_str().to_string(),
            state: r.lifecycle.state().as_str().to_string(),
            description: r.description.clone(),
            created_at: rfc3339(r.created_at),
            deletion_at: r.deletion_at.map(rfc3339),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_api_types::RoleName;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        // Out of range: never panics.
        assert_eq!(rfc3339(i64::MAX), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn role_names_match_the_core() {
        for role in kcm_core::model::ALL_ROLES {
            let doc: RoleName = serde_json::from_value(serde_json::json!(role.as_str())).unwrap();
            assert_eq!(serde_json::to_value(doc).unwrap(), role.as_str());
        }
    }
}
