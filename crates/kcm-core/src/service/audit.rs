//! The audit log as the service sees it: appending a request's record, signing
//! checkpoints and heads, and reading chains back (tenant-admins and auditors their tenant's,
//! the operator the operator's).

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

use super::{now_ms, Service};
use crate::audit::heads;
use crate::audit::writer::AuditWriter;
use crate::audit::{checkpoint_message, head_message, AuditEvent, GENESIS_HASH};
use crate::authz::{authorize, Caller, Op, Target};
use crate::crypto::WrapBinding;
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::SecretBytes;
use crate::store::Write;

/// Meta key holding the audit signing key, wrapped by the credential root (hex).
const SIGNING_KEY_META: &str = "audit_signing_key";
/// Meta key holding the audit signing key's public half (hex, raw Ed25519).
const PUBLIC_KEY_META: &str = "audit_signing_public_key";
/// Most records or checkpoints one read returns.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// The audit signing key, unwrapped.
pub(crate) struct AuditSigner {
    key: Ed25519KeyPair,
}

impl Service {
    /// The audit writer, started on first use (and by the background tasks, so
    /// that an earlier run's spooled records are forwarded without waiting for a
    /// request).
    pub(super) fn audit_writer(&self) -> &AuditWriter {
        self.audit_writer.get_or_init(|| {
            AuditWriter::start(
                std::sync::Arc::clone(&self.store),
                self.audit_spool.clone(),
                std::sync::Arc::clone(&self.audit_health),
                std::sync::Arc::clone(&self.audit_heads),
            )
        })
    }

    /// Appends the record of one request and returns once it is durable. A front
    /// door calls this exactly once per request, before it sends the response; if
    /// it fails, the response must be an error (nothing unaudited goes out).
    pub async fn record_audit(&self, event: AuditEvent<'_>) -> Result<()> {
        if !self.config.audit {
            return Ok(());
        }
        let (tenant, principal, role) = match event.caller {
            Some(c) => (
                c.principal.tenant_id,
                c.principal.access_key_id.clone(),
                Some(c.principal.role),
            ),
            None => (
                None,
                event.claimed_access_key.unwrap_or("-").to_string(),
                None,
            ),
        };
        let noted = event.caller.map(Caller::noted_keys).unwrap_or_default();
        let record = AuditRecord {
            seq: 0,
            time: now_ms(),
            tenant,
            principal,
            role,
            front_door: event.front_door.to_string(),
            operation: event.operation.to_string(),
            // The hot path notes keys; only object operations fall back to the system.
            system: match noted.first() {
                Some(key) => Some(key.system),
                None => event.caller.and_then(Caller::noted_system),
            },
            keys: noted
                .iter()
                .map(|n| AuditKey {
                    id: n.id,
                    version: n.version,
                    compromised: n.compromised,
                })
                .collect(),
            outcome: event.outcome,
            error: event.error.map(str::to_string),
            request_id: event.request_id.to_string(),
            source: event.source,
            client_request_id: event.client_request_id.map(str::to_string),
            detail: event.detail.cloned(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        self.audit_writer().append(record).await
    }

    /// The chain a caller may read: its tenant's, or the operator's.
    fn audit_chain_of(caller: &Caller, op: Op) -> Result<AuditChain> {
        let target = match caller.principal.tenant_id {
            Some(t) => Target::tenant(t),
            None => Target::OPERATOR,
        };
        authorize(&caller.principal, op, target)?;
        Ok(caller.principal.tenant_id)
    }

    /// Records of the caller's chain matching `query` (its `tenant` is ignored: a
    /// caller reads its own chain). `limit` is capped at [`MAX_AUDIT_PAGE`].
    pub async fn list_audit_records(
        &self,
        caller: &Caller,
        mut query: AuditQuery,
    ) -> Result<Vec<AuditRecord>> {
        query.tenant = Self::audit_chain_of(caller, Op::ListAuditRecords)?;
        if query.limit == 0 || query.limit > MAX_AUDIT_PAGE {
            return Err(Error::invalid(format!(
                "limit must be between 1 and {MAX_AUDIT_PAGE}, got {}",
                query.limit
            )));
        }
        Ok(self.store.audit_records(&query).await?)
    }

    /// Checkpoints of the caller's chain after `after_seq`.
    pub async fn list_audit_checkpoints(
        &self,
        caller: &Caller,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditCheckpoint>> {
        let chain = Self::audit_chain_of(caller, Op::ListAuditCheckpoints)?;
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(Error::invalid(format!(
                "limit must be between 1 and {MAX_AUDIT_PAGE}, got {limit}"
            )));
        }
        Ok(self
            .store
            .audit_checkpoints(chain, after_seq, limit)
            .await?)
    }

    /// The public half of the audit signing key (raw Ed25519, 32 bytes), creating
    /// the key if this server has none yet.
    pub async fn audit_signing_public_key(&self, caller: &Caller) -> Result<Vec<u8>> {
        Self::audit_chain_of(caller, Op::GetAuditSigningKey)?;
        let signer = self.audit_signer().await?;
        Ok(signer.key.public_key().as_ref().to_vec())
    }

    /// A signed head of the caller's chain: "it had `seq` records ending in `hash`"
    /// now, for the caller to keep outside the store (see [`head_message`]). It
    /// vouches for the store's tail — or, when the store holds less than this node
    /// appended to the chain, or something else there, for what this node appended,
    /// so that the cut shows in every verification against it.
    pub async fn audit_head(&self, caller: &Caller) -> Result<AuditCheckpoint> {
        let chain = Self::audit_chain_of(caller, Op::GetAuditHead)?;
        let signer = self.audit_signer().await?;
        // What this node wrote, read before the store: the store holds at least that.
        let mine = self.audit_heads.record(chain);
        let store_tail = self.store.audit_tail(chain).await?;
        let store_last = store_tail.as_ref().map_or(0, |(seq, _)| *seq);
        let tampering = self
            .audit_tail_tampering(chain, mine.as_ref(), store_last)
            .await?;
        let (seq, hash) = match (tampering, mine) {
            (Some(_), Some(mine)) => mine,
            _ => store_tail.unwrap_or_else(|| (0, GENESIS_HASH.to_string())),
        };
        let time = now_ms();
        let message = head_message(chain, seq, &hash, time);
        Ok(AuditCheckpoint {
            tenant: chain,
            seq,
            hash,
            time,
            signature: hex::encode(signer.key.sign(&message).as_ref()),
        })
    }

    /// Whether the store's tail of `chain` (its last `seq`) disagrees with what this
    /// node appended (`mine`); a disagreement is logged, once.
    async fn audit_tail_tampering(
        &self,
        chain: AuditChain,
        mine: Option<&(u64, String)>,
        store_last: u64,
    ) -> Result<Option<heads::Tampering>> {
        let Some((seq, _)) = mine else {
            return Ok(None);
        };
        let hash_at_mine = if store_last >= *seq {
            self.store
                .audit_records(&AuditQuery {
                    tenant: chain,
                    after_seq: seq - 1,
                    limit: 1,
                    ..AuditQuery::default()
                })
                .await?
                .pop()
                .filter(|r| r.seq == *seq)
                .map(|r| r.hash)
        } else {
            None
        };
        let found = heads::compare_tail(chain, mine, store_last, hash_at_mine.as_deref());
        if let Some(t) = &found {
            self.audit_heads.report(t);
        }
        Ok(found)
    }

    /// Compares the store's tail of every chain this node appended to with what it
    /// appended (see [`heads`]); a difference is logged as tampering, once.
    pub(super) async fn check_audit_tails(&self) -> Result<()> {
        for chain in self.audit_heads.chains() {
            // Read before the store, which holds at least that.
            let mine = self.audit_heads.record(chain);
            let store_last = self
                .store
                .audit_tail(chain)
                .await?
                .map_or(0, |(seq, _)| seq);
            self.audit_tail_tampering(chain, mine.as_ref(), store_last)
                .await?;
        }
        Ok(())
    }

    /// Signs a checkpoint for every chain that grew since its last one, each linked
    /// to the checkpoint before it in its chain. First holds the store's chains to
    /// what this node appended and signed: a chain cut or rewritten, or a checkpoint
    /// removed, from outside kcm is logged as tampering, and the next checkpoint
    /// links to the one this node signed, so the gap stays in the chain of
    /// checkpoints for every verification to find. Returns how many it wrote.
    pub async fn write_audit_checkpoints(&self) -> Result<usize> {
        if !self.config.audit {
            return Ok(0);
        }
        let signer = self.audit_signer().await?;
        // What this node knows, read before the store (which holds at least that).
        let known: Vec<_> = self
            .audit_heads
            .chains()
            .into_iter()
            .map(|chain| {
                let record = self.audit_heads.record(chain);
                let checkpoint = self.audit_heads.checkpoint(chain);
                (chain, (record, checkpoint))
            })
            .collect();
        let mut chains: std::collections::HashMap<AuditChain, u64> =
            self.store.audit_chains().await?.into_iter().collect();
        for (chain, _) in &known {
            chains.entry(*chain).or_insert(0);
        }
        let mut known: std::collections::HashMap<_, _> = known.into_iter().collect();
        let mut written = 0;
        for (chain, last_seq) in chains {
            let (mine, my_checkpoint) = known.remove(&chain).unwrap_or_default();
            self.audit_tail_tampering(chain, mine.as_ref(), last_seq)
                .await?;
            let stored = self.store.last_audit_checkpoint(chain).await?;
            if let Some(t) =
                heads::compare_checkpoint(chain, my_checkpoint.as_ref(), stored.as_ref())
            {
                self.audit_heads.report(&t);
            }
            let prev = match (stored, my_checkpoint) {
                (Some(s), Some(m)) => Some(if s.seq > m.seq { s } else { m }),
                (s, m) => s.or(m),
            };
            if prev.as_ref().map_or(0, |c| c.seq) >= last_seq {
                continue;
            }
            let Some(record) = self
                .store
                .audit_records(&AuditQuery {
                    tenant: chain,
                    after_seq: last_seq - 1,
                    limit: 1,
                    ..AuditQuery::default()
                })
                .await?
                .pop()
            else {
                continue;
            };
            let time = now_ms();
            let message = checkpoint_message(chain, record.seq, &record.hash, time, prev.as_ref());
            let checkpoint = AuditCheckpoint {
                tenant: chain,
                seq: record.seq,
                hash: record.hash,
                time,
                signature: hex::encode(signer.key.sign(&message).as_ref()),
            };
            self.store
                .commit(vec![Write::PutAuditCheckpoint(checkpoint.clone())])
                .await?;
            self.audit_heads.signed(&checkpoint);
            written += 1;
        }
        Ok(written)
    }

    /// The audit signing key: unwrapped once from the store, or created. Creation
    /// inserts only if no key exists, so two nodes cannot both make one (the second
    /// uses the first's).
    async fn audit_signer(&self) -> Result<&AuditSigner> {
        self.audit_signer
            .get_or_try_init(|| async {
                let root = self.credential_root().await?;
                let aad = WrapBinding::AuditSigningKey { root: root.id }.to_aad();
                let keystore = self.keystore(&root.keystore)?;
                let (handle, key_aad) = (&root.handle, &aad);
                let stored = |wrapped: String| async move {
                    let (root_handle, aad) = (handle, key_aad);
                    let wrapped = hex::decode(wrapped)
                        .map_err(|_| Error::internal("stored audit signing key is not hex"))?;
                    let pkcs8 = keystore.unwrap(root_handle, &wrapped, aad).await?;
                    let key = Ed25519KeyPair::from_pkcs8(pkcs8.expose_secret())
                        .map_err(|_| Error::internal("stored audit signing key is invalid"))?;
                    Ok::<_, Error>(AuditSigner { key })
                };
                if let Some(wrapped) = self.store.meta(SIGNING_KEY_META).await? {
                    return stored(wrapped).await;
                }
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| Error::internal("could not generate the audit signing key"))?;
                let pkcs8 = SecretBytes::copy_from(pkcs8.as_ref());
                let key = Ed25519KeyPair::from_pkcs8(pkcs8.expose_secret())
                    .map_err(|_| Error::internal("generated audit signing key is invalid"))?;
                let wrapped = keystore.wrap(&root.handle, &pkcs8, &aad).await?;
                let created = self
                    .store
                    .commit(vec![
                        Write::InsertMeta {
                            key: SIGNING_KEY_META.into(),
                            value: hex::encode(wrapped),
                        },
                        Write::InsertMeta {
                            key: PUBLIC_KEY_META.into(),
                            value: hex::encode(key.public_key().as_ref()),
                        },
                    ])
                    .await;
                match created {
                    Ok(()) => {
                        tracing::info!("created the audit signing key");
                        Ok(AuditSigner { key })
                    }
                    Err(crate::store::StoreError::Conflict(_)) => {
                        let wrapped =
                            self.store.meta(SIGNING_KEY_META).await?.ok_or_else(|| {
                                Error::internal(
                                    "the audit signing key vanished while being created",
                                )
                            })?;
                        stored(wrapped).await
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }
}
