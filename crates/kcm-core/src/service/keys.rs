//! Service key (L3) management: create, describe, list, state changes, description,
//! tags and deletion scheduling.

use std::collections::BTreeMap;

use super::{now_ms, KeyRef, Service};
use crate::authz::{authorize, authorize_giving, Caller, KeyNote, Op, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::keyspec::{parse_key_spec, parse_key_usage, KeyOrigin, KeySpec};
use crate::lifecycle::{KeyState, Lifecycle, Transition};
use crate::model::*;
use crate::policy::{ConditionContext, KeyFacts, KeyPolicy};
use crate::store::Write;

const MAX_TAGS: usize = 50;

/// Parameters of [`Service::create_key`].
#[derive(Clone, Debug, Default)]
pub struct CreateKeyRequest {
    /// Free text (at most 8192 characters).
    pub description: String,
    /// A [`crate::keyspec::KeyUsage`] name; default: `ENCRYPT_DECRYPT` where the
    /// spec allows it, else the spec's only usage.
    pub key_usage: Option<String>,
    /// A [`KeySpec`] name; default `SYMMETRIC_DEFAULT`.
    pub key_spec: Option<String>,
    /// A [`KeyOrigin`] name: `AWS_KMS` (default) or `EXTERNAL`.
    pub origin: Option<String>,
    /// Initial tags.
    pub tags: BTreeMap<String, String>,
    /// Key policy document (see [`crate::policy`]); `None`: AWS's default policy
    /// (roles alone decide).
    pub policy: Option<String>,
    /// Skip AWS's policy lockout safety check ([`KeyPolicy::check_lockout`]).
    pub bypass_policy_lockout_safety_check: bool,
}

/// A key as shown to callers, with what a front door needs to build ARNs.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// The stored record.
    pub record: ServiceKeyRecord,
    /// The owning tenant's account id.
    pub account_id: String,
}

/// One page of a key listing.
#[derive(Clone, Debug)]
pub struct KeyPage {
    /// Keys on this page.
    pub keys: Vec<KeyId>,
    /// Marker for the next page, if there is one.
    pub next_marker: Option<String>,
}

fn lifecycle_error(id: KeyId, e: crate::lifecycle::IllegalTransition) -> Error {
    if e.from == KeyState::Disabled {
        return super::resolve::own_state_refusal(id, e.from);
    }
    Error::new(
        ErrorKind::InvalidState,
        format!("key {id} is {} and cannot be changed that way", e.from),
    )
    .about(crate::error::Subject::KeyState(id, e.from))
}

/// Validates tags by AWS's rules (key 1–128 characters not starting with `aws:`,
/// value at most 256 characters).
pub(crate) fn validate_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(Error::new(
                ErrorKind::InvalidTag,
                format!("tag key {k:?} must be 1–128 characters"),
            ));
        }
        if k.starts_with("aws:") {
            return Err(Error::new(
                ErrorKind::InvalidTag,
                format!("tag key {k:?} uses the reserved prefix aws:"),
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
        if !k.chars().all(allowed) || !v.chars().all(allowed) {
            return Err(Error::new(
                ErrorKind::InvalidTag,
                format!("tag {k:?} may contain only letters, digits, spaces and _ . : / = + - @"),
            ));
        }
        if v.chars().count() > 256 {
            return Err(Error::new(
                ErrorKind::InvalidTag,
                format!("the value of tag {k:?} is longer than 256 characters"),
            ));
        }
    }
    Ok(())
}

impl Service {
    /// Applies `change` to the current record of `key` under the write lock, commits
    /// it, and drops the cached copy. Nothing is written if `change` fails.
    pub(crate) async fn change_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        op: Op,
        change: impl FnOnce(&mut ServiceKeyRecord) -> Result<()>,
    ) -> Result<KeyInfo> {
        let mut changes = self.lock_changes().await?;
        let mut record = self.authorized_record(caller, op, key).await?;
        change(&mut record)?;
        changes
            .commit(vec![Write::PutServiceKey(record.clone())])
            .await?;
        self.keys.remove(&record.id);
        Ok(self.key_info(caller, record))
    }

    pub(crate) fn key_info(&self, caller: &Caller, record: ServiceKeyRecord) -> KeyInfo {
        KeyInfo {
            record,
            account_id: caller.principal.account_id.clone(),
        }
    }

    /// Creates a service key (symmetric, asymmetric or HMAC) in the caller's system (its scope, or the
    /// tenant's `default` system).
    pub async fn create_key(&self, caller: &Caller, req: CreateKeyRequest) -> Result<KeyInfo> {
        self.create_key_with_alias(caller, req, None).await
    }

    /// Creates a service key as [`Service::create_key`] does and, with `alias`,
    /// the alias naming it in the same commit (a Vault Transit key is a key and its
    /// name at once: neither exists without the other). An alias that exists is
    /// AlreadyExists, and no key is made.
    pub async fn create_key_with_alias(
        &self,
        caller: &Caller,
        req: CreateKeyRequest,
        alias: Option<&str>,
    ) -> Result<KeyInfo> {
        // Authorise before looking anything up, so denied callers learn nothing.
        let tenant_id = Self::own_tenant_for(caller, Op::CreateKey)?;
        if let Some(name) = alias {
            Self::own_tenant_for(caller, Op::CreateAlias)?;
            crate::service::aliases::validate_alias_name(name)?;
        }
        let spec = match req.key_spec.as_deref() {
            None => KeySpec::SymmetricDefault,
            Some(s) => parse_key_spec("KeySpec", s)?,
        };
        let usage = match req.key_usage.as_deref() {
            Some(u) => parse_key_usage("KeyUsage", u)?,
            None => spec.default_usage().ok_or_else(|| {
                Error::invalid(format!(
                    "a {spec} key needs a KeyUsage: SIGN_VERIFY or KEY_AGREEMENT"
                ))
            })?,
        };
        spec.check_usage(usage)?;
        let origin = match req.origin.as_deref() {
            None => KeyOrigin::AwsKms,
            Some(name) => KeyOrigin::parse(name).ok_or_else(|| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("origin {name} is not supported; use AWS_KMS or EXTERNAL"),
                )
            })?,
        };
        let external = origin == KeyOrigin::External;
        if external && spec != KeySpec::SymmetricDefault {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("importing key material is supported for SYMMETRIC_DEFAULT keys only, not {spec}"),
            ));
        }
        if req.description.chars().count() > 8192 {
            return Err(Error::invalid("description is longer than 8192 characters"));
        }
        validate_tags(&req.tags)?;
        let policy = match req.policy {
            Some(doc) => Some(KeyPolicy::parse(&doc)?),
            None => None,
        };
        if req.tags.len() > MAX_TAGS {
            return Err(Error::new(
                ErrorKind::InvalidTag,
                format!("a key can have at most {MAX_TAGS} tags"),
            ));
        }
        let tenant = self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| Error::internal("caller's tenant is missing"))?;
        let system_id = caller
            .principal
            .system_scope
            .unwrap_or(tenant.default_system_id);
        authorize(
            &caller.principal,
            Op::CreateKey,
            Target::system(tenant_id, system_id),
        )?;
        if let Some(policy) = &policy {
            // Judged as on a key without a policy: what the caller's role, operation
            // limit and system scope let it do (see `crate::policy`).
            authorize_giving(
                &caller.principal,
                policy.allowed_operations(),
                Target::system(tenant_id, system_id),
                "allow in a key policy",
            )?;
        }
        let id = KeyId::new_random();
        if let Some(policy) = &policy {
            let context = ConditionContext {
                connection: caller.connection,
                key: Some(KeyFacts {
                    id,
                    region: self.region(),
                    spec,
                    usage,
                    origin,
                }),
                ..ConditionContext::NONE
            };
            policy.check_lockout(
                &caller.principal,
                &context,
                req.bypass_policy_lockout_safety_check,
            )?;
        }
        let material = if external {
            None
        } else {
            // Made before the change lock is taken: RSA generation can take a second.
            Some(crate::key_material::generate_off_thread(spec).await?)
        };
        // Held from reading the system's active key version to the commit: a
        // system key rewrap (on any node) retires old versions once every key has
        // left them, and must not retire the one this new key is wrapped under.
        let mut changes = self.lock_changes().await?;
        let system = self.system_record(system_id).await?;
        let now = now_ms();
        let record = ServiceKeyRecord {
            id,
            tenant_id,
            system_id,
            description: req.description,
            usage,
            spec,
            origin,
            // A key for imported material waits for it (AWS: PendingImport).
            lifecycle: if external {
                Lifecycle::pending_material()
            } else {
                Lifecycle::active()
            },
            created_at: now,
            deletion_at: None,
            rotation: None,
            primary_version: 1,
            tags: req.tags,
            policy: policy.map(|p| p.document),
            import_check: None,
            material_expires_at: None,
        };
        let mut writes = vec![Write::PutServiceKey(record.clone())];
        if let Some(material) = material {
            let wrapped = self.wrap_service_key(&system, id, 1, &material).await?;
            writes.push(Write::PutKeyVersion(KeyVersionRecord {
                key_id: id,
                version: 1,
                system_key_version: system.active_key_version,
                wrapped,
                origin: VersionOrigin::Creation,
                created_at: now,
                import_check: None,
            }));
        }
        if let Some(name) = alias {
            writes.push(Write::InsertAlias(AliasRecord {
                tenant_id,
                name: name.to_string(),
                key_id: id,
                created_at: now,
                updated_at: now,
            }));
        }
        let committed = changes.commit(writes).await;
        match alias {
            Some(name) => {
                committed.map_err(Error::conflict_means_exists(format_args!("alias {name}")))?;
                self.aliases.remove(&(tenant_id, name.to_string()));
            }
            None => committed?,
        }
        caller.note_key(KeyNote::of(&record, (!external).then_some(1)));
        Ok(self.key_info(caller, record))
    }

    /// Metadata of a key.
    pub async fn describe_key(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo> {
        let record = self.authorized_record(caller, Op::DescribeKey, key).await?;
        Ok(self.key_info(caller, record))
    }

    /// A page of the caller's keys (a scoped access key sees only its system's keys).
    /// `limit` is 1–1000; `marker` is the `next_marker` of the previous page.
    pub async fn list_keys(
        &self,
        caller: &Caller,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<KeyPage> {
        let tenant = Self::own_tenant_for(caller, Op::ListKeys)?;
        let limit = page_limit(limit, 1000, 100)?;
        let mut after = match marker {
            None => None,
            Some(m) => Some(KeyId::parse(m).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidMarker,
                    format!("marker {m:?} is not valid"),
                )
            })?),
        };
        let mut keys = Vec::with_capacity(limit);
        loop {
            let batch = self.store.service_keys(tenant, after, limit + 1).await?;
            let exhausted = batch.len() <= limit;
            for record in batch {
                after = Some(record.id);
                let visible = !record.lifecycle.state().is_destroyed()
                    && caller
                        .principal
                        .system_scope
                        .is_none_or(|s| s == record.system_id);
                if visible {
                    if keys.len() == limit {
                        // One more visible key exists: this page is truncated.
                        let last = *keys.last().expect("limit >= 1");
                        return Ok(KeyPage {
                            keys,
                            next_marker: Some(KeyId::to_string(&last)),
                        });
                    }
                    keys.push(record.id);
                }
            }
            if exhausted {
                return Ok(KeyPage {
                    keys,
                    next_marker: None,
                });
            }
        }
    }

    /// Changes a key's description.
    pub async fn update_key_description(
        &self,
        caller: &Caller,
        key: &KeyRef,
        description: String,
    ) -> Result<KeyInfo> {
        if description.chars().count() > 8192 {
            return Err(Error::invalid("description is longer than 8192 characters"));
        }
        self.change_key(caller, key, Op::UpdateKeyDescription, |r| {
            r.description = description;
            Ok(())
        })
        .await
    }

    /// Enables a disabled key.
    pub async fn enable_key(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo> {
        self.transition_key(caller, key, Transition::Enable, Op::EnableKey)
            .await
    }

    /// Disables a key: every operation is refused until it is enabled again.
    pub async fn disable_key(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo> {
        self.transition_key(caller, key, Transition::Disable, Op::DisableKey)
            .await
    }

    async fn transition_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        transition: Transition,
        op: Op,
    ) -> Result<KeyInfo> {
        self.change_key(caller, key, op, |r| {
            r.lifecycle
                .apply(transition)
                .map_err(|e| lifecycle_error(r.id, e))?;
            Ok(())
        })
        .await
    }

    /// Schedules deletion after `days` (7–30, default 30) configured days.
    pub async fn schedule_key_deletion(
        &self,
        caller: &Caller,
        key: &KeyRef,
        days: Option<u32>,
    ) -> Result<KeyInfo> {
        let days = days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(Error::invalid(format!(
                "PendingWindowInDays must be between 7 and 30, got {days}"
            )));
        }
        let when = now_ms() + self.config.days_ms(days);
        let info = self
            .change_key(caller, key, Op::ScheduleKeyDeletion, |r| {
                r.lifecycle
                    .apply(Transition::ScheduleDeletion)
                    .map_err(|e| match e.from {
                        KeyState::PendingDeletion => Error::new(
                            ErrorKind::InvalidState,
                            format!("key {} is already pending deletion", r.id),
                        ),
                        _ => lifecycle_error(r.id, e),
                    })?;
                r.deletion_at = Some(when);
                Ok(())
            })
            .await?;
        Ok(info)
    }

    /// Cancels a scheduled deletion; the key becomes disabled, as in AWS KMS.
    pub async fn cancel_key_deletion(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo> {
        self.change_key(caller, key, Op::CancelKeyDeletion, |r| {
            r.lifecycle.apply(Transition::CancelDeletion).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidState,
                    format!("key {} is not pending deletion", r.id),
                )
            })?;
            r.deletion_at = None;
            Ok(())
        })
        .await
    }

    /// Marks a key compromised (NIST SP 800-57 §5.3.7): from now on it only
    /// decrypts and verifies, so that data can be recovered and re-protected under
    /// another key, and every audit record naming it says so. It never becomes
    /// usable again; a scheduled deletion is cancelled (a compromised key is
    /// destroyed with [`Service::destroy_compromised_key`], which keeps its mark).
    pub async fn mark_key_compromised(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo> {
        let info = self
            .change_key(caller, key, Op::MarkKeyCompromised, |r| {
                r.lifecycle
                    .apply(Transition::MarkCompromised)
                    .map_err(|e| lifecycle_error(r.id, e))?;
                r.deletion_at = None;
                Ok(())
            })
            .await?;
        caller.note_key(KeyNote::of(&info.record, None));
        tracing::warn!(key = %info.record.id, "key marked compromised");
        Ok(info)
    }

    /// Destroys a compromised key at once: its material, aliases and grants are
    /// erased and it becomes destroyed-compromised, its metadata kept for audit.
    /// Only a compromised key is destroyed this way; others are scheduled for
    /// deletion with a waiting period.
    pub async fn destroy_compromised_key(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo> {
        let mut changes = self.lock_changes().await?;
        let mut record = self
            .authorized_record(caller, Op::DestroyCompromisedKey, key)
            .await?;
        if !record.lifecycle.state().is_compromised() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "key {} is {}: only a compromised key is destroyed at once; schedule the \
                     deletion of others",
                    record.id,
                    record.lifecycle.state()
                ),
            ));
        }
        record
            .lifecycle
            .apply(Transition::Destroy)
            .map_err(|e| lifecycle_error(record.id, e))?;
        changes.commit(destroy_writes(&record)).await?;
        self.keys.remove(&record.id);
        self.aliases.clear();
        caller.note_key(KeyNote::of(&record, None));
        tracing::warn!(key = %record.id, "compromised key destroyed");
        Ok(self.key_info(caller, record))
    }

    /// The key's tags.
    pub async fn list_resource_tags(
        &self,
        caller: &Caller,
        key: &KeyRef,
    ) -> Result<BTreeMap<String, String>> {
        Ok(self
            .authorized_record(caller, Op::ListResourceTags, key)
            .await?
            .tags)
    }

    /// Adds or replaces tags.
    pub async fn tag_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        tags: BTreeMap<String, String>,
    ) -> Result<()> {
        validate_tags(&tags)?;
        self.change_key(caller, key, Op::TagResource, |r| {
            r.tags.extend(tags);
            if r.tags.len() > MAX_TAGS {
                return Err(Error::new(
                    ErrorKind::InvalidTag,
                    format!("a key can have at most {MAX_TAGS} tags"),
                ));
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Removes tags by key (absent keys are ignored, as in AWS).
    pub async fn untag_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        tag_keys: Vec<String>,
    ) -> Result<()> {
        self.change_key(caller, key, Op::UntagResource, |r| {
            for k in &tag_keys {
                r.tags.remove(k);
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }
}

/// The writes that destroy `record` (already in a destroyed state): its material,
/// aliases and grants are erased; the record stays, for audit.
pub(crate) fn destroy_writes(record: &ServiceKeyRecord) -> Vec<Write> {
    vec![
        Write::DeleteKeyVersions(record.id),
        Write::DeleteAliasesOf(record.id),
        Write::DeleteGrantsOf(record.id),
        Write::PutServiceKey(record.clone()),
    ]
}

/// Validates a page size: 1..=max, `default` when absent.
pub(crate) fn page_limit(limit: Option<u32>, max: u32, default: u32) -> Result<usize> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(Error::invalid(format!(
            "Limit must be between 1 and {max}, got {limit}"
        )));
    }
    Ok(limit as usize)
}
