//! The column list of each record's table, in the order its decoder reads and its
//! encoder writes them. A store selects with `format!("SELECT {TENANT_COLS} FROM …")`;
//! its INSERT statements name the same columns in the same order (each store has
//! a test that they do), because the encoders' parameters come in that order.

/// `tenants`: [`crate::decode::tenant`], [`crate::encode::tenant`].
pub const TENANT_COLS: &str =
    "id, name, account_id, default_root_key_id, default_system_id, created_at";

/// `access_keys`: [`crate::decode::access_key`], [`crate::encode::access_key`].
pub const ACCESS_KEY_COLS: &str = "id, tenant_id, role, system_id, sealed_secret, \
     description, enabled, created_at, secret_salt, secret_verifier, operations";

/// `root_keys`: [`crate::decode::root_key`], [`crate::encode::root_key`].
pub const ROOT_KEY_COLS: &str =
    "id, tenant_id, keystore, handle, origin, state, description, created_at";

/// `systems`: [`crate::decode::system`], [`crate::encode::system`].
pub const SYSTEM_COLS: &str =
    "id, tenant_id, name, kind, description, active_key_version, created_at, region, labels";

/// `system_keys`: [`crate::decode::system_key`], [`crate::encode::system_key`].
pub const SYSTEM_KEY_COLS: &str = "system_id, version, root_key_id, wrapped, state, created_at";

/// `service_keys`: [`crate::decode::service_key`], [`crate::encode::service_key`].
pub const SERVICE_KEY_COLS: &str = "id, tenant_id, system_id, description, usage, spec, \
     origin, state, created_at, deletion_at, rotation_period_days, next_rotation_at, \
     primary_version, tags, policy, import_check, material_expires_at";

/// `key_versions`: [`crate::decode::key_version`], [`crate::encode::key_version`].
pub const KEY_VERSION_COLS: &str =
    "key_id, version, system_key_version, wrapped, origin, created_at, import_check";

/// `aliases`: [`crate::decode::alias`], [`crate::encode::alias`].
pub const ALIAS_COLS: &str = "tenant_id, name, key_id, created_at, updated_at";

/// `grants`: [`crate::decode::grant`], [`crate::encode::grant`].
pub const GRANT_COLS: &str = "id, tenant_id, key_id, grantee, retiring_principal, \
     operations, name, issuing_principal, created_at, constraints";

/// `audit_records` as read: [`crate::decode::audit_record`].
pub const AUDIT_RECORD_COLS: &str = "chain, seq, time, principal, role, front_door, \
     operation, keys, system_id, outcome, error, request_id, source, prev_hash, hash, \
     client_request_id, detail";

/// `audit_records` as written: [`AUDIT_RECORD_COLS`] with `key_ids` after `keys` (a
/// search column derived from `keys`, never read back); [`crate::encode::audit_record`].
pub const AUDIT_RECORD_WRITTEN_COLS: &str = "chain, seq, time, principal, role, front_door, \
     operation, keys, key_ids, system_id, outcome, error, request_id, source, prev_hash, hash, \
     client_request_id, detail";

/// `audit_checkpoints`: [`crate::decode::audit_checkpoint`],
/// [`crate::encode::audit_checkpoint`].
pub const AUDIT_CHECKPOINT_COLS: &str = "chain, seq, hash, time, signature";

/// `managed_objects`: [`crate::decode::managed_object`],
/// [`crate::encode::managed_object`]. The attributes are one JSON column; the payload
/// is its two columns, both set or both NULL.
pub const MANAGED_OBJECT_COLS: &str = "id, tenant_id, system_id, kind, state, created_at, \
     updated_at, attributes, system_key_version, sealed_payload";

/// The tables the encoders write, each with the columns its encoder's parameters
/// come in.
const WRITTEN: &[(&str, &str)] = &[
    ("tenants", TENANT_COLS),
    ("access_keys", ACCESS_KEY_COLS),
    ("root_keys", ROOT_KEY_COLS),
    ("systems", SYSTEM_COLS),
    ("system_keys", SYSTEM_KEY_COLS),
    ("service_keys", SERVICE_KEY_COLS),
    ("key_versions", KEY_VERSION_COLS),
    ("aliases", ALIAS_COLS),
    ("grants", GRANT_COLS),
    ("audit_records", AUDIT_RECORD_WRITTEN_COLS),
    ("audit_checkpoints", AUDIT_CHECKPOINT_COLS),
    ("managed_objects", MANAGED_OBJECT_COLS),
];

/// Checks every `INSERT INTO <table> (<columns>)` in `source` (a store's SQL, or
/// the source file that holds it) for a table above: it must name exactly the
/// columns of the table's list, in order, because that is the order in which the
/// encoders hand over their parameters. `expected` is how many such statements
/// the source holds, so one this check cannot see (another layout) is noticed.
///
/// For the stores' tests: a column out of place would otherwise store one field
/// in another's column, and could go unseen until a value failed to decode.
pub fn check_inserts(source: &str, expected: usize) -> Result<(), String> {
    let names =
        |list: &str| -> Vec<String> { list.split(',').map(|c| c.trim().to_owned()).collect() };
    let mut checked = 0;
    for (table, cols) in WRITTEN {
        let head = format!("INSERT INTO {table} (");
        for (at, _) in source.match_indices(&head) {
            let rest = &source[at + head.len()..];
            let end = rest
                .find(')')
                .ok_or_else(|| format!("INSERT INTO {table}: unclosed column list"))?;
            let (got, want) = (names(&rest[..end]), names(cols));
            if got != want {
                return Err(format!(
                    "INSERT INTO {table} names ({}), but its encoder writes ({})",
                    got.join(", "),
                    want.join(", ")
                ));
            }
            checked += 1;
        }
    }
    if checked != expected {
        return Err(format!(
            "found {checked} INSERTs of records where {expected} were expected"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_are_checked_against_the_lists() {
        let good = "INSERT INTO aliases (tenant_id, name,\n key_id, created_at, updated_at) VALUES";
        assert_eq!(check_inserts(good, 1), Ok(()));
        assert!(check_inserts(good, 2)
            .unwrap_err()
            .contains("2 were expected"));
        let swapped = "INSERT INTO aliases (name, tenant_id, key_id, created_at, updated_at)";
        let err = check_inserts(swapped, 1).unwrap_err();
        assert!(err.contains("aliases"), "{err}");
        assert_eq!(check_inserts("INSERT INTO meta (key, value)", 0), Ok(()));
    }
}
