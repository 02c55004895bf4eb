//! What tools ask a Vault before anything else: `sys/health` and
//! `sys/seal-status` (without a token), `sys/mounts` and the mount a path is in, and
//! the token's own `lookup-self` and `renew-self`.
//!
//! kcm has no seal: it answers initialized and unsealed; whether its store and
//! keystores answer is in kcm's own `/ready`. A kcm token does not expire (it
//! lives until its access key is disabled or deleted), so renewing it changes
//! nothing and says so (`ttl` 0, not renewable).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use kcm_core::service::Service;
use serde_json::{json, Value};

use crate::error::VaultError;
use crate::route::{Mounts, Route};

fn version() -> String {
    format!("kcm {}", env!("CARGO_PKG_VERSION"))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `sys/health` and `sys/seal-status`, which Vault answers without a token (and,
/// like Vault, outside the `data` envelope).
pub fn public(route: &Route, _service: &Service) -> Response {
    let body = match route {
        Route::SysHealth => json!({
            "initialized": true,
            "sealed": false,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": now_secs(),
            "version": version(),
            "cluster_name": "kcm",
        }),
        _ => json!({
            "type": "kcm",
            "initialized": true,
            "sealed": false,
            "t": 1,
            "n": 1,
            "progress": 0,
            "nonce": "",
            "version": version(),
            "migration": false,
            "recovery_seal": false,
            "storage_type": "kcm",
        }),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// One mount as `sys/mounts` lists it.
fn mount(kind: &str, description: &str, options: Value) -> Value {
    json!({
        "type": kind,
        "description": description,
        "accessor": format!("{kind}_kcm"),
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
        "options": options,
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
    })
}

/// `sys/mounts` (the engines kcm serves), or the mount a path is in
/// (`sys/internal/ui/mounts/<path>`, which Vault's CLI and ceph-csi ask to learn
/// a KV version): a path in no mount is not found.
pub fn mounts(route: &Route, mounts: &Mounts) -> Result<Option<Value>, VaultError> {
    let engines = [
        (
            &mounts.transit,
            mount("transit", "kcm Transit: kcm service keys", Value::Null),
        ),
        (
            &mounts.kv,
            mount(
                "kv",
                "kcm KV version 2: versioned secrets sealed under kcm's key chain",
                json!({"version": "2"}),
            ),
        ),
    ];
    match route {
        Route::SysMountOf(path) => {
            let first = path.split('/').next().unwrap_or("");
            let (name, mut found) = engines
                .into_iter()
                .find(|(name, _)| name.as_str() == first)
                .ok_or_else(|| {
                    VaultError::from(kcm_core::error::Error::not_found(format!(
                        "no mount holds {path:?}"
                    )))
                })?;
            found["path"] = json!(format!("{name}/"));
            Ok(Some(found))
        }
        _ => {
            let mut all: serde_json::Map<String, Value> = engines
                .into_iter()
                .map(|(name, m)| (format!("{name}/"), m))
                .collect();
            all.insert(
                "sys/".into(),
                mount(
                    "system",
                    "system endpoints (kcm answers a few)",
                    Value::Null,
                ),
            );
            Ok(Some(Value::Object(all)))
        }
    }
}

/// `auth/token/lookup-self` and `renew-self`: the token's access key, its role and
/// system; a Vault token does not expire, a login's session does (`ttl` says
/// when). The token itself is never echoed back.
pub fn token_self(
    route: &Route,
    call: &kcm_frontdoor::Call<'_>,
    request_id: &str,
    token: &str,
) -> Response {
    let expires_at = kcm_core::service::session_expiry(token);
    let ttl = expires_at.map_or(0, |e| (e - kcm_core::service::now_ms()).max(0) / 1000);
    let principal = &call
        .caller()
        .expect("a token's request has an admitted caller")
        .principal;
    let id = principal.access_key_id.clone();
    let meta = json!({
        "kcm_access_key_id": id,
        "kcm_role": principal.role.as_str(),
        "kcm_system_id": principal.system_scope.map(|s| s.to_string()),
    });
    if *route == Route::TokenRenewSelf {
        let warning = if expires_at.is_some() {
            "a login's session is not renewed: log in again before it expires"
        } else {
            "kcm tokens do not expire: they last until their access key is disabled or deleted"
        };
        let auth = json!({
            "client_token": "",
            "accessor": id,
            "policies": ["default"],
            "token_policies": ["default"],
            "metadata": meta,
            "lease_duration": ttl,
            "renewable": false,
            "orphan": true,
        });
        return crate::auth_answer(request_id, auth, Some(warning));
    }
    crate::answer(
        request_id,
        json!({
            "accessor": id,
            "display_name": format!("kcm-{id}"),
            "entity_id": "",
            "expire_time": expires_at.map(crate::kv::timestamp),
            "explicit_max_ttl": 0,
            "meta": meta,
            "num_uses": 0,
            "orphan": true,
            "path": if expires_at.is_some() { "auth/kubernetes/login" } else { "auth/token/create" },
            "policies": ["default"],
            "renewable": false,
            "ttl": ttl,
            "type": "service",
        }),
    )
}
