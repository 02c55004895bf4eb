//! Backups of the whole store, for the operator: a consistent snapshot of a
//! running service, sealed into one archive (see [`crate::backup`]) whose key is
//! wrapped by the service's own root key — the credential root named by the meta
//! setting `credential_root_key_id`.

use super::{now_ms, Service};
use crate::authz::{authorize, Caller, Op, Target};
use crate::backup;
use crate::error::{Error, ErrorKind, Result};
use crate::lifecycle::KeyUse;
use crate::model::UnixMillis;

/// A backup archive made by [`Service::backup`].
#[derive(Debug)]
pub struct BackupArchive {
    /// The archive bytes (format: [`crate::backup`]). Holds wrapped material only.
    pub bytes: Vec<u8>,
    /// When the snapshot was taken.
    pub created_at: UnixMillis,
    /// Rows per table in the archive, in table order.
    pub tables: Vec<(String, u64)>,
}

impl Service {
    /// Takes a consistent snapshot of the whole store — every tenant, while writes
    /// go on — and seals it into an archive under a fresh archive key wrapped by the
    /// service's root key through its keystore. Operator (system-admin) only.
    pub async fn backup(&self, caller: &Caller) -> Result<BackupArchive> {
        let principal = &caller.principal;
        authorize(principal, Op::GetBackup, Target::OPERATOR)?;
        let root = self.credential_root().await?;
        if !root.lifecycle.state().allows(KeyUse::Wrap) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "the service root key {} is {} and cannot wrap a backup's key",
                    root.id,
                    root.lifecycle.state()
                ),
            ));
        }
        let keystore = std::sync::Arc::clone(self.keystore(&root.keystore)?);
        let snapshot = self.store.snapshot().await?;
        let tables = snapshot.row_counts();
        let created_at = now_ms();
        let bytes = backup::create_archive(snapshot, &root, keystore.as_ref(), created_at).await?;
        tracing::info!(
            by = %principal.access_key_id,
            bytes = bytes.len(),
            rows = tables.iter().map(|(_, n)| n).sum::<u64>(),
            "backup archive made"
        );
        Ok(BackupArchive {
            bytes,
            created_at,
            tables,
        })
    }
}
