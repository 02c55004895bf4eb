//! Vault's KV version 2 engine on the core's versioned secrets.
//!
//! A secret `<path>` of a token's system is the core's entry at `<mount>/<path>`
//! ([`kcm_core::kv`]): its `data` object is kept, as the JSON the client sent, in a
//! version sealed under the system's key chain with the rest of the entry, so
//! versions, check-and-set, soft deletion, destruction and the kill switch are the
//! core's. This module only translates Vault's paths, fields and answers.

use std::collections::BTreeMap;

use kcm_core::authz::Caller;
use kcm_core::kv::{KvMetadata, KvSettingsChange, KvVersionAction, KvVersionInfo};
use kcm_core::model::UnixMillis;
use kcm_core::secret::SecretBytes;
use kcm_core::service::KvPath;
use kcm_frontdoor::Call;
use serde_json::{json, Map, Value};

use crate::error::VaultError;
use crate::request::Request;
use crate::route::Route;

/// Serves one KV endpoint of the engine at `mount`; `None` is Vault's 204.
pub async fn serve(
    call: &Call<'_>,
    route: &Route,
    mount: &str,
    body: &[u8],
) -> Result<Option<Value>, VaultError> {
    let service = call.service();
    let caller = call.caller().expect("a KV request has an admitted caller");
    let system = crate::token_system(caller)?;
    let request = Request::parse(body)?;
    let path_at = |path| KvPath {
        system,
        mount,
        path,
    };
    match route {
        Route::KvRead { path, version } => {
            let version = version
                .as_deref()
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| VaultError::invalid("version must be a whole number"))
                })
                .transpose()?;
            let (info, value) = service.kv_read(caller, path_at(path), version).await?;
            let data: Value = serde_json::from_slice(value.expose_secret())
                .map_err(|_| VaultError::invalid("the stored value is not JSON"))?;
            Ok(Some(json!({
                "data": data,
                "metadata": version_metadata(&info),
            })))
        }
        Route::KvWrite(path) => {
            let value = data_of(&request)?;
            let cas = match request.object("options")? {
                Some(options) => options.number("cas")?,
                None => None,
            };
            let info = service.kv_write(caller, path_at(path), value, cas).await?;
            Ok(Some(version_metadata(&info)))
        }
        Route::KvDeleteLatest(path) => {
            versions(service, caller, path_at(path), KvVersionAction::Delete, &[]).await
        }
        Route::KvVersions { action, path } => {
            let chosen = versions_of(&request)?;
            versions(service, caller, path_at(path), *action, &chosen).await
        }
        Route::KvReadMetadata(path) => {
            let metadata = service.kv_metadata(caller, path_at(path)).await?;
            Ok(Some(metadata_answer(&metadata)))
        }
        Route::KvWriteMetadata(path) => {
            let change = settings_of(&request)?;
            service.kv_configure(caller, path_at(path), change).await?;
            Ok(None)
        }
        Route::KvDeleteMetadata(path) => {
            service.kv_delete(caller, path_at(path)).await?;
            Ok(None)
        }
        Route::KvList(prefix) => {
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            let keys = service.kv_list(caller, system, mount, &prefix).await?;
            if keys.is_empty() {
                // Vault answers an empty folder as one that does not exist.
                return Err(kcm_core::error::Error::not_found(format!(
                    "nothing is stored below {mount}/{prefix}"
                ))
                .into());
            }
            Ok(Some(json!({ "keys": keys })))
        }
        _ => Err(VaultError::invalid("not a KV endpoint")),
    }
}

async fn versions(
    service: &kcm_core::service::Service,
    caller: &Caller,
    at: KvPath<'_>,
    action: KvVersionAction,
    chosen: &[u64],
) -> Result<Option<Value>, VaultError> {
    service
        .kv_change_versions(caller, at, action, chosen)
        .await?;
    Ok(None)
}

/// The `data` object of a write, as the JSON bytes kept.
pub fn data_of(request: &Request) -> Result<SecretBytes, VaultError> {
    match request.get("data") {
        Some(data @ Value::Object(_)) => serde_json::to_vec(data)
            .map(SecretBytes::new)
            .map_err(|_| VaultError::invalid("data does not serialise")),
        Some(_) => Err(VaultError::invalid("data must be a JSON object")),
        None => Err(VaultError::invalid("no data provided")),
    }
}

/// The `versions` list of a delete, undelete or destroy.
pub fn versions_of(request: &Request) -> Result<Vec<u64>, VaultError> {
    let invalid = || VaultError::invalid("versions must be a list of version numbers");
    match request.get("versions") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_u64().ok_or_else(invalid),
                Value::String(s) => s.parse().map_err(|_| invalid()),
                _ => Err(invalid()),
            })
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|v| v.trim().parse().map_err(|_| invalid()))
            .collect(),
        _ => Err(VaultError::invalid("no versions provided")),
    }
}

/// The settings a metadata write changes.
pub fn settings_of(request: &Request) -> Result<KvSettingsChange, VaultError> {
    let custom_metadata = match request.get("custom_metadata") {
        None => None,
        Some(Value::Object(map)) => Some(
            map.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(VaultError::invalid(format!(
                        "custom_metadata {k:?} must be a string"
                    ))),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?,
        ),
        Some(_) => return Err(VaultError::invalid("custom_metadata must be an object")),
    };
    let max_versions = request
        .number("max_versions")?
        .map(|n| u32::try_from(n).map_err(|_| VaultError::invalid("max_versions is too large")))
        .transpose()?;
    let delete_version_after_ms = match request.get("delete_version_after") {
        None => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .and_then(|s| s.checked_mul(1000))
                .ok_or_else(|| VaultError::invalid("delete_version_after is out of range"))?,
        ),
        Some(Value::String(s)) => Some(parse_duration_ms(s)?),
        Some(_) => {
            return Err(VaultError::invalid(
                "delete_version_after must be a duration",
            ))
        }
    };
    Ok(KvSettingsChange {
        max_versions,
        cas_required: request.flag("cas_required")?,
        delete_version_after_ms,
        custom_metadata,
    })
}

/// A version's description as Vault writes it.
fn version_metadata(info: &KvVersionInfo) -> Value {
    json!({
        "created_time": timestamp(info.created),
        "custom_metadata": null,
        "deletion_time": info.deletion_time.map(timestamp).unwrap_or_default(),
        "destroyed": info.destroyed,
        "version": info.version,
    })
}

/// A secret's metadata as Vault writes it.
fn metadata_answer(m: &KvMetadata) -> Value {
    let versions: Map<String, Value> = m
        .versions
        .iter()
        .map(|v| {
            (
                v.version.to_string(),
                json!({
                    "created_time": timestamp(v.created),
                    "deletion_time": v.deletion_time.map(timestamp).unwrap_or_default(),
                    "destroyed": v.destroyed,
                }),
            )
        })
        .collect();
    json!({
        "cas_required": m.settings.cas_required,
        "created_time": timestamp(m.created),
        "current_version": m.current_version,
        "custom_metadata": if m.custom_metadata.is_empty() { Value::Null } else { json!(m.custom_metadata) },
        "delete_version_after": format_duration_ms(m.settings.delete_version_after_ms),
        "max_versions": m.settings.max_versions,
        "oldest_version": m.oldest_version,
        "updated_time": timestamp(m.updated),
        "versions": versions,
    })
}

/// RFC 3339 in UTC, as Vault writes times.
pub(crate) fn timestamp(ms: UnixMillis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A Go duration (`90s`, `30m`, `1h30m`, `768h`) or whole seconds, in ms.
pub fn parse_duration_ms(text: &str) -> Result<i64, VaultError> {
    let invalid = || {
        VaultError::invalid(format!(
            "{text:?} is no duration: whole seconds or a number of h, m, s or ms (1h30m)"
        ))
    };
    if let Ok(seconds) = text.parse::<i64>() {
        return seconds.checked_mul(1000).ok_or_else(invalid);
    }
    let mut total: i64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1000,
            "ms" => 1,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(invalid)?;
    }
    Ok(total)
}

/// A duration as Go writes it (`0s`, `1h30m0s`).
fn format_duration_ms(ms: i64) -> String {
    let seconds = ms / 1000;
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_as_go_does() {
        assert_eq!(parse_duration_ms("90").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        for bad in ["", "h", "1x", "1h-", "99999999999999999999h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(5_400_000), "1h30m0s");
        assert_eq!(format_duration_ms(90_000), "1m30s");
    }

    #[test]
    fn versions_come_as_a_list_or_a_comma_string() {
        let r = Request::parse(br#"{"versions":[1,"2"]}"#).unwrap();
        assert_eq!(versions_of(&r).unwrap(), [1, 2]);
        let r = Request::parse(br#"{"versions":"3,4"}"#).unwrap();
        assert_eq!(versions_of(&r).unwrap(), [3, 4]);
        for bad in [r#"{}"#, r#"{"versions":[]}"#, r#"{"versions":[-1]}"#] {
            assert!(versions_of(&Request::parse(bad.as_bytes()).unwrap()).is_err());
        }
    }

    #[test]
    fn a_write_needs_a_data_object() {
        assert!(data_of(&Request::parse(br#"{"data":{"k":"v"}}"#).unwrap()).is_ok());
        for bad in [r#"{}"#, r#"{"data":"v"}"#, r#"{"data":[1]}"#] {
            assert!(data_of(&Request::parse(bad.as_bytes()).unwrap()).is_err());
        }
    }
}
