//! Aliases: friendly names (`alias/…`) for service keys, unique within a tenant.

use super::keys::page_limit;
use super::{now_ms, KeyRef, Service};
use crate::authz::{Caller, Op};
use crate::error::{Error, ErrorKind, Result};
use crate::lifecycle::KeyUse;
use crate::model::*;
use crate::store::Write;

/// The prefix AWS reserves for its managed keys' aliases: no caller may create,
/// move or delete an alias under it.
pub const RESERVED_ALIAS_PREFIX: &str = "alias/aws/";

/// Whether `name` is under [`RESERVED_ALIAS_PREFIX`].
pub fn is_reserved_alias(name: &str) -> bool {
    name.starts_with(RESERVED_ALIAS_PREFIX)
}

/// Checks an alias name by AWS's rules: `alias/` followed by 1–250 characters of
/// letters, digits, `/`, `_`, `-`; the `alias/aws/` prefix is reserved.
pub fn validate_alias_name(name: &str) -> Result<()> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidAliasName,
            format!("alias name {name:?} {why}"),
        )
    };
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(invalid("must begin with alias/"));
    };
    if rest.is_empty() || name.len() > 256 {
        return Err(invalid("must have 1 to 250 characters after alias/"));
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'))
    {
        return Err(invalid(
            "may contain only letters, digits, '/', '_' and '-'",
        ));
    }
    if is_reserved_alias(name) {
        return Err(invalid("uses the reserved prefix alias/aws/"));
    }
    Ok(())
}

impl Service {
    /// The target of a new or updated alias: a live key of the caller's tenant, by id.
    async fn alias_target_record(
        &self,
        caller: &Caller,
        target: &KeyRef,
        op: Op,
    ) -> Result<ServiceKeyRecord> {
        if let KeyRef::Alias(_) = target.unqualified() {
            return Err(Error::invalid(
                "an alias must point at a key id or key ARN, not another alias",
            ));
        }
        self.authorized_record(caller, op, target).await
    }

    /// Creates `name` pointing at `target`.
    pub async fn create_alias(&self, caller: &Caller, name: &str, target: &KeyRef) -> Result<()> {
        let tenant = Self::own_tenant_for(caller, Op::CreateAlias)?;
        validate_alias_name(name)?;
        let mut changes = self.lock_changes().await?;
        let record = self
            .alias_target_record(caller, target, Op::CreateAlias)
            .await?;
        let now = now_ms();
        let alias = AliasRecord {
            tenant_id: tenant,
            name: name.to_string(),
            key_id: record.id,
            created_at: now,
            updated_at: now,
        };
        changes
            .commit(vec![Write::InsertAlias(alias)])
            .await
            .map_err(Error::conflict_means_exists(format_args!("alias {name}")))?;
        self.aliases.remove(&(tenant, name.to_string()));
        Ok(())
    }

    async fn existing_alias(&self, caller: &Caller, name: &str, op: Op) -> Result<AliasRecord> {
        let tenant = Self::own_tenant_for(caller, op)?;
        validate_alias_name(name)?;
        let alias = self
            .store
            .alias(tenant, name)
            .await?
            .ok_or_else(|| Error::not_found(format!("alias {name} does not exist")))?;
        // The caller must be allowed to manage the key it currently points at,
        // whatever its state (an alias may leave a key pending deletion).
        self.authorized_record_for(
            caller,
            op,
            Some(KeyUse::Describe),
            &KeyRef::Id(alias.key_id),
        )
        .await?;
        Ok(alias)
    }

    /// Points an existing alias at another key.
    pub async fn update_alias(&self, caller: &Caller, name: &str, target: &KeyRef) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let mut alias = self.existing_alias(caller, name, Op::UpdateAlias).await?;
        let record = self
            .alias_target_record(caller, target, Op::UpdateAlias)
            .await?;
        alias.key_id = record.id;
        alias.updated_at = now_ms();
        let tenant = alias.tenant_id;
        changes.commit(vec![Write::PutAlias(alias)]).await?;
        self.aliases.remove(&(tenant, name.to_string()));
        Ok(())
    }

    /// Deletes an alias (the key is untouched).
    pub async fn delete_alias(&self, caller: &Caller, name: &str) -> Result<()> {
        let mut changes = self.lock_changes().await?;
        let alias = self.existing_alias(caller, name, Op::DeleteAlias).await?;
        let tenant = alias.tenant_id;
        changes
            .commit(vec![Write::DeleteAlias {
                tenant_id: tenant,
                name: name.to_string(),
            }])
            .await?;
        self.aliases.remove(&(tenant, name.to_string()));
        Ok(())
    }

    /// Aliases of the caller's tenant, or of one key, paged by name.
    pub async fn list_aliases(
        &self,
        caller: &Caller,
        key: Option<&KeyRef>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<(Vec<AliasRecord>, Option<String>)> {
        let tenant = Self::own_tenant_for(caller, Op::ListAliases)?;
        let limit = page_limit(limit, 100, 50)?;
        let key_id = match key {
            Some(k) => Some(self.authorized_record(caller, Op::ListAliases, k).await?.id),
            None => None,
        };
        let mut all = self.store.aliases(tenant, key_id).await?;
        if let Some(scope) = caller.principal.system_scope {
            // A key scoped to one system sees only the aliases of that system's keys.
            let mut visible = Vec::with_capacity(all.len());
            for alias in all {
                let system = self
                    .store
                    .service_key(alias.key_id)
                    .await?
                    .map(|k| k.system_id);
                if system == Some(scope) {
                    visible.push(alias);
                }
            }
            all = visible;
        }
        let start = match marker {
            None => 0,
            Some(m) => {
                if !m.starts_with("alias/") {
                    return Err(Error::new(
                        ErrorKind::InvalidMarker,
                        format!("marker {m:?} is not valid"),
                    ));
                }
                all.partition_point(|a| a.name.as_str() <= m)
            }
        };
        let rest = &all[start..];
        let page: Vec<AliasRecord> = rest.iter().take(limit).cloned().collect();
        let next = (rest.len() > limit).then(|| page[limit - 1].name.clone());
        Ok((page, next))
    }
}
