//! Applying [`Write`]s inside a transaction.
//!
//! `Put*` writes are upserts on the primary key only (`ON CONFLICT (pk) DO UPDATE`),
//! never `INSERT OR REPLACE`: a clash on any *other* unique column (a tenant's name,
//! a system's name) must fail as a conflict rather than silently delete the row
//! that holds it. `Insert*` and `AppendAudit` are plain inserts, so a taken key
//! fails the write and [`from_write`] reports it as a conflict.

use kcm_core::store::{StoreResult, Write};
use rusqlite::{params, Transaction};

use crate::codec::{
    audit_key_ids, audit_keys_json, chain_key, op_set_names, operation_names, secret_columns,
    tags_json,
};
use crate::error::from_write;

/// Applies every write in order within `tx`; the caller commits or rolls back.
pub(crate) fn apply_all(tx: &Transaction<'_>, writes: &[Write]) -> StoreResult<()> {
    for write in writes {
        apply(tx, write).map_err(|e| from_write(write, e))?;
    }
    Ok(())
}

fn apply(tx: &Transaction<'_>, write: &Write) -> rusqlite::Result<()> {
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<()> {
        tx.prepare_cached(sql)?.execute(params)?;
        Ok(())
    };
    match write {
        Write::PutMeta { key, value } => run(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        ),
        Write::InsertMeta { key, value } => run(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        ),
        Write::ReplaceMeta {
            key,
            expected,
            value,
        } => {
            let changed = tx
                .prepare_cached("UPDATE meta SET value = ?3 WHERE key = ?1 AND value = ?2")?
                .execute(params![key, expected, value])?;
            if changed == 1 {
                Ok(())
            } else {
                Err(rusqlite::Error::StatementChangedRows(changed))
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
            params![
                t.id.to_string(),
                t.name,
                t.account_id,
                t.default_root_key_id.to_string(),
                t.default_system_id.to_string(),
                t.created_at
            ],
        ),
        Write::PutAccessKey(k) => {
            let (sealed, salt, verifier) = secret_columns(&k.secret);
            run(
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
                params![
                    k.id,
                    k.tenant_id.map(|t| t.to_string()),
                    k.role.as_str(),
                    k.system_id.map(|s| s.to_string()),
                    sealed,
                    k.description,
                    k.enabled,
                    k.created_at,
                    salt,
                    verifier,
                    operation_names(k.operations.as_deref())?
                ],
            )
        }
        Write::DeleteAccessKey(id) => run("DELETE FROM access_keys WHERE id = ?1", params![id]),
        Write::PutRootKey(k) => run(
            "INSERT INTO root_keys (id, tenant_id, keystore, handle, origin, state,
                                    description, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, keystore = excluded.keystore,
                 handle = excluded.handle, origin = excluded.origin,
                 state = excluded.state, description = excluded.description,
                 created_at = excluded.created_at",
            params![
                k.id.to_string(),
                k.tenant_id.map(|t| t.to_string()),
                k.keystore,
                k.handle,
                k.origin.as_str(),
                k.lifecycle.state().as_str(),
                k.description,
                k.created_at
            ],
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
            params![
                s.id.to_string(),
                s.tenant_id.to_string(),
                s.name,
                s.kind,
                s.description,
                s.active_key_version,
                s.created_at,
                s.region,
                serde_json::to_string(&s.labels).unwrap_or_else(|_| "{}".into())
            ],
        ),
        Write::PutSystemKey(k) => run(
            "INSERT INTO system_keys (system_id, version, root_key_id, wrapped, state,
                                      created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (system_id, version) DO UPDATE SET
                 root_key_id = excluded.root_key_id, wrapped = excluded.wrapped,
                 state = excluded.state, created_at = excluded.created_at",
            params![
                k.system_id.to_string(),
                k.version,
                k.root_key_id.to_string(),
                k.wrapped,
                k.lifecycle.state().as_str(),
                k.created_at
            ],
        ),
        Write::PutServiceKey(k) => run(
            "INSERT INTO service_keys (id, tenant_id, system_id, description, usage, spec,
                                       origin, state, created_at, deletion_at,
                                       rotation_period_days, next_rotation_at,
                                       primary_version, tags, policy, import_check)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, system_id = excluded.system_id,
                 description = excluded.description, usage = excluded.usage,
                 spec = excluded.spec, origin = excluded.origin, state = excluded.state,
                 created_at = excluded.created_at, deletion_at = excluded.deletion_at,
                 rotation_period_days = excluded.rotation_period_days,
                 next_rotation_at = excluded.next_rotation_at,
                 primary_version = excluded.primary_version, tags = excluded.tags,
                 policy = excluded.policy, import_check = excluded.import_check",
            params![
                k.id.to_string(),
                k.tenant_id.to_string(),
                k.system_id.to_string(),
                k.description,
                k.usage.as_str(),
                k.spec.as_str(),
                k.origin.as_str(),
                k.lifecycle.state().as_str(),
                k.created_at,
                k.deletion_at,
                k.rotation.map(|r| r.period_days),
                k.rotation.map(|r| r.next_rotation_at),
                k.primary_version,
                tags_json(&k.tags),
                k.policy,
                k.import_check
            ],
        ),
        Write::PutKeyVersion(v) => run(
            "INSERT INTO key_versions (key_id, version, system_key_version, wrapped, origin,
                                       created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (key_id, version) DO UPDATE SET
                 system_key_version = excluded.system_key_version,
                 wrapped = excluded.wrapped, origin = excluded.origin,
                 created_at = excluded.created_at",
            params![
                v.key_id.to_string(),
                v.version,
                v.system_key_version,
                v.wrapped,
                v.origin.as_str(),
                v.created_at
            ],
        ),
        Write::DeleteKeyVersions(key) => run(
            "DELETE FROM key_versions WHERE key_id = ?1",
            params![key.to_string()],
        ),
        Write::InsertAlias(a) => run(
            "INSERT INTO aliases (tenant_id, name, key_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                a.tenant_id.to_string(),
                a.name,
                a.key_id.to_string(),
                a.created_at,
                a.updated_at
            ],
        ),
        Write::PutAlias(a) => run(
            "INSERT INTO aliases (tenant_id, name, key_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, name) DO UPDATE SET
                 key_id = excluded.key_id, created_at = excluded.created_at,
                 updated_at = excluded.updated_at",
            params![
                a.tenant_id.to_string(),
                a.name,
                a.key_id.to_string(),
                a.created_at,
                a.updated_at
            ],
        ),
        Write::DeleteAlias { tenant_id, name } => run(
            "DELETE FROM aliases WHERE tenant_id = ?1 AND name = ?2",
            params![tenant_id.to_string(), name],
        ),
        Write::DeleteAliasesOf(key) => run(
            "DELETE FROM aliases WHERE key_id = ?1",
            params![key.to_string()],
        ),
        Write::PutGrant(g) => run(
            "INSERT INTO grants (id, tenant_id, key_id, grantee, retiring_principal,
                                 operations, name, issuing_principal, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = excluded.tenant_id, key_id = excluded.key_id,
                 grantee = excluded.grantee,
                 retiring_principal = excluded.retiring_principal,
                 operations = excluded.operations, name = excluded.name,
                 issuing_principal = excluded.issuing_principal,
                 created_at = excluded.created_at",
            params![
                g.id,
                g.tenant_id.to_string(),
                g.key_id.to_string(),
                g.grantee,
                g.retiring_principal,
                op_set_names(g.operations),
                g.name,
                g.issuing_principal,
                g.created_at
            ],
        ),
        Write::DeleteGrant(id) => run("DELETE FROM grants WHERE id = ?1", params![id]),
        Write::DeleteGrantsOf(key) => run(
            "DELETE FROM grants WHERE key_id = ?1",
            params![key.to_string()],
        ),
        // The hot path (every request, up to thousands per commit): one cached
        // statement, no reads.
        Write::AppendAudit(r) => run(
            "INSERT INTO audit_records (chain, seq, time, principal, role, front_door,
                                        operation, keys, key_ids, system_id, outcome, error,
                                        request_id, source, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                chain_key(r.tenant),
                r.seq,
                r.time,
                r.principal,
                r.role.map(|role| role.as_str()),
                r.front_door,
                r.operation,
                audit_keys_json(&r.keys),
                audit_key_ids(&r.keys),
                r.system.map(|s| s.to_string()),
                r.outcome.as_str(),
                r.error,
                r.request_id,
                r.source,
                r.prev_hash,
                r.hash
            ],
        ),
        Write::PutAuditCheckpoint(c) => run(
            "INSERT INTO audit_checkpoints (chain, seq, hash, time, signature)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (chain, seq) DO UPDATE SET
                 hash = excluded.hash, time = excluded.time,
                 signature = excluded.signature",
            params![chain_key(c.tenant), c.seq, c.hash, c.time, c.signature],
        ),
    }
}
