//! Applying [`Write`]s inside a transaction, and inserting linked audit records.
//!
//! `Put*` writes are upserts on the primary key only (`ON CONFLICT (pk) DO UPDATE`),
//! never `INSERT OR REPLACE`: a clash on any *other* unique column (a tenant's name,
//! a system's name) must fail as a conflict rather than silently delete the row
//! that holds it. `Insert*` writes are plain inserts, so a taken key fails the
//! write and [`from_write`] reports it as a conflict.
//!
//! Audit records are not a [`Write`]: [`insert_linked_audit_records`] is private to
//! this crate and called only by `append_audit`, on records linked inside the
//! same transaction.

use kcm_core::model::AuditRecord;
use kcm_core::store::{StoreResult, Write};
use kcm_store_rows::{encode, Param};
use rusqlite::{params, Params, Transaction};

use crate::codec::bind_all;
use crate::error::{from_audit_insert, from_write};

/// Applies every write in order within `tx`; the caller commits or rolls back.
pub(crate) fn apply_all(tx: &Transaction<'_>, writes: &[Write]) -> StoreResult<()> {
    for write in writes {
        apply(tx, write)?;
    }
    Ok(())
}

/// Runs one statement through the connection's statement cache.
fn execute(tx: &Transaction<'_>, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

/// Applies `write`: records go in as [`kcm_store_rows::encode`] makes them, so
/// each INSERT names its columns in the order of `kcm_store_rows::cols`.
fn apply(tx: &Transaction<'_>, write: &Write) -> StoreResult<()> {
    let failed = |e| from_write(write, e);
    let sql = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> StoreResult<()> {
        execute(tx, sql, params).map(drop).map_err(failed)
    };
    let run = |sql: &str, params: &[Param<'_>]| -> StoreResult<()> {
        execute(tx, sql, bind_all(params)).map(drop).map_err(failed)
    };
    match write {
        Write::PutMeta { key, value } => sql(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        ),
        Write::InsertMeta { key, value } => sql(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        ),
        Write::ReplaceMeta {
            key,
            expected,
            value,
        } => {
            let changed = execute(
                tx,
                "UPDATE meta SET value = ?3 WHERE key = ?1 AND value = ?2",
                params![key, expected, value],
            )
            .map_err(failed)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(failed(rusqlite::Error::StatementChangedRows(changed)))
            }
        }
        Write::PutTenant(t) => run(
            "INSERT INTO tenants (id, name, account_id, default_root_key_id,
                                  default_system_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET
                 name = excluded.name, account_id = excluded.account_id,
                 default_root_key_id = excluded.default_root_key_id,
                 default_system_id = excluded.default_system_id,
                 created_at = excluded.created_at",
            &encode::tenant(t),
        ),
        Write::PutAccessKey(k) => run(
            "INSERT INTO access_keys (id, tenant_id, role, system_id, sealed_secret,
                                      description, enabled, created_at, secret_salt,
                                      secret_verifier, operations)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, role = excluded.role,
                 system_id = excluded.system_id, sealed_secret = excluded.sealed_secret,
                 description = excluded.description, enabled = excluded.enabled,
                 created_at = excluded.created_at, secret_salt = excluded.secret_salt,
                 secret_verifier = excluded.secret_verifier,
                 operations = excluded.operations",
            &encode::access_key(k)?,
        ),
        Write::DeleteAccessKey(id) => sql("DELETE FROM access_keys WHERE id = ?1", params![id]),
        Write::PutRootKey(k) => run(
            "INSERT INTO root_keys (id, tenant_id, keystore, handle, origin, state,
                                    description, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, keystore = excluded.keystore,
                 handle = excluded.handle, origin = excluded.origin,
                 state = excluded.state, description = excluded.description,
                 created_at = excluded.created_at",
            &encode::root_key(k),
        ),
        Write::PutSystem(s) => run(
            "INSERT INTO systems (id, tenant_id, name, kind, description,
                                  active_key_version, created_at, region, labels)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, name = excluded.name,
                 kind = excluded.kind, description = excluded.description,
                 active_key_version = excluded.active_key_version,
                 created_at = excluded.created_at, region = excluded.region,
                 labels = excluded.labels",
            &encode::system(s),
        ),
        Write::PutSystemKey(k) => run(
            "INSERT INTO system_keys (system_id, version, root_key_id, wrapped, state,
                                      created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (system_id, version) DO UPDATE SET
                 root_key_id = excluded.root_key_id, wrapped = excluded.wrapped,
                 state = excluded.state, created_at = excluded.created_at",
            &encode::system_key(k),
        ),
        Write::PutServiceKey(k) => run(
            "INSERT INTO service_keys (id, tenant_id, system_id, description, usage, spec,
                                       origin, state, created_at, deletion_at,
                                       rotation_period_days, next_rotation_at,
                                       primary_version, tags, policy, import_check,
                                       material_expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, system_id = excluded.system_id,
                 description = excluded.description, usage = excluded.usage,
                 spec = excluded.spec, origin = excluded.origin, state = excluded.state,
                 created_at = excluded.created_at, deletion_at = excluded.deletion_at,
                 rotation_period_days = excluded.rotation_period_days,
                 next_rotation_at = excluded.next_rotation_at,
                 primary_version = excluded.primary_version, tags = excluded.tags,
                 policy = excluded.policy, import_check = excluded.import_check,
                 material_expires_at = excluded.material_expires_at",
            &encode::service_key(k),
        ),
        Write::PutKeyVersion(v) => run(
            "INSERT INTO key_versions (key_id, version, system_key_version, wrapped, origin,
                                       created_at, import_check)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (key_id, version) DO UPDATE SET
                 system_key_version = excluded.system_key_version,
                 wrapped = excluded.wrapped, origin = excluded.origin,
                 created_at = excluded.created_at, import_check = excluded.import_check",
            &encode::key_version(v),
        ),
        Write::DeleteKeyVersions(key) => sql(
            "DELETE FROM key_versions WHERE key_id = ?1",
            params![key.to_string()],
        ),
        Write::DeleteKeyVersion { key, version } => sql(
            "DELETE FROM key_versions WHERE key_id = ?1 AND version = ?2",
            params![key.to_string(), version],
        ),
        Write::InsertAlias(a) => run(
            "INSERT INTO aliases (tenant_id, name, key_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &encode::alias(a),
        ),
        Write::PutAlias(a) => run(
            "INSERT INTO aliases (tenant_id, name, key_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, name) DO UPDATE SET
                 key_id = excluded.key_id, created_at = excluded.created_at,
                 updated_at = excluded.updated_at",
            &encode::alias(a),
        ),
        Write::DeleteAlias { tenant_id, name } => sql(
            "DELETE FROM aliases WHERE tenant_id = ?1 AND name = ?2",
            params![tenant_id.to_string(), name],
        ),
        Write::DeleteAliasesOf(key) => sql(
            "DELETE FROM aliases WHERE key_id = ?1",
            params![key.to_string()],
        ),
        Write::PutGrant(g) => run(
            "INSERT INTO grants (id, tenant_id, key_id, grantee, retiring_principal,
                                 operations, name, issuing_principal, created_at,
                                 constraints)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, key_id = excluded.key_id,
                 grantee = excluded.grantee,
                 retiring_principal = excluded.retiring_principal,
                 operations = excluded.operations, name = excluded.name,
                 issuing_principal = excluded.issuing_principal,
                 created_at = excluded.created_at, constraints = excluded.constraints",
            &encode::grant(g),
        ),
        Write::DeleteGrant(id) => sql("DELETE FROM grants WHERE id = ?1", params![id]),
        Write::DeleteGrantsOf(key) => sql(
            "DELETE FROM grants WHERE key_id = ?1",
            params![key.to_string()],
        ),
        Write::PutAuditCheckpoint(c) => run(
            "INSERT INTO audit_checkpoints (chain, seq, hash, time, signature)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (chain, seq) DO UPDATE SET
                 hash = excluded.hash, time = excluded.time,
                 signature = excluded.signature",
            &encode::audit_checkpoint(c)?,
        ),
        Write::PutManagedObject(o) => run(
            "INSERT INTO managed_objects (id, tenant_id, system_id, kind, state, created_at,
                                          updated_at, attributes, system_key_version,
                                          sealed_payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, system_id = excluded.system_id,
                 kind = excluded.kind, state = excluded.state,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 attributes = excluded.attributes,
                 system_key_version = excluded.system_key_version,
                 sealed_payload = excluded.sealed_payload",
            &encode::managed_object(o),
        ),
        Write::DeleteManagedObject(id) => sql(
            "DELETE FROM managed_objects WHERE id = ?1",
            params![id.to_string()],
        ),
    }
}

/// Inserts `records`, which [`kcm_store_rows::audit::linked`] linked after the
/// tails read inside `tx`, as they are. Only `append_audit` calls it: being the
/// store's one way to add a record is what keeps every stored chain linked.
///
/// The hot path (every request, up to thousands per append): one cached
/// statement, no reads.
pub(crate) fn insert_linked_audit_records(
    tx: &Transaction<'_>,
    records: &[AuditRecord],
) -> StoreResult<()> {
    for r in records {
        execute(
            tx,
            "INSERT INTO audit_records (chain, seq, time, principal, role, front_door,
                                        operation, keys, key_ids, system_id, outcome, error,
                                        request_id, source, prev_hash, hash, client_request_id,
                                        detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18)",
            bind_all(&encode::audit_record(r)?),
        )
        .map_err(|e| from_audit_insert(r, e))?;
    }
    Ok(())
}

/// The parameters come from `kcm_store_rows::encode` in the order of its column
/// lists, so every INSERT of a record above must name its columns in that order.
#[cfg(test)]
#[test]
fn inserts_name_the_encoders_columns_in_order() {
    kcm_store_rows::cols::check_inserts(include_str!("write.rs"), 13).unwrap();
}
