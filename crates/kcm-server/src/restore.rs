//! Offline restore of a backup archive made by `kcm backup`, into a new data
//! directory and, when the settings name one, an empty PostgreSQL database.
//!
//! It belongs with the server assembly, not the client: it opens the keystores the
//! server's settings configure (an archive's key may live in an HSM), writes the
//! store the server will open, and puts the node's files where the server looks for
//! them. The order is what keeps a failure harmless: everything is staged in a
//! directory beside the data directory, the store is written last (the database in
//! one transaction), then the staging directory is moved into place.

use std::fs::File;
use std::io::{BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kcm_core::backup::{self, ArchiveHeader, ArchiveReader, RestoreReport};
use kcm_core::store::{Store, StoreError};
use kcm_keystore_software::{MasterKeySource, SoftwareKeystore};
use kcm_store_postgres::PostgresStore;
use kcm_store_sqlite::SqliteStore;

use crate::config::Settings;
use crate::files::{parent_of, random_suffix, sync_dir, Cleanup};
use crate::keystores::{self, Keystores};
use crate::serve::{open_postgres, CREDENTIALS_FILE, DB_FILE};

/// What [`restore`] did, for its report.
#[derive(Debug)]
pub struct Restored {
    /// The archive's header and the rows restored per table.
    pub report: RestoreReport,
    /// The data directory that now holds this node's files.
    pub data_dir: PathBuf,
    /// Where the store went.
    pub store: RestoredStore,
    /// Staging directories of earlier restores into the same data directory, killed
    /// before they could clean up, that this one removed.
    pub interrupted: Vec<PathBuf>,
}

/// Where a restored store went.
#[derive(Debug)]
pub enum RestoredStore {
    /// The embedded SQLite file in the data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database; the server needs its `database_url` to find it.
    Postgres {
        /// The database's URL without its password.
        target: String,
    },
}

impl RestoredStore {
    /// The SQLite file, or the database URL without its password.
    pub fn location(&self) -> String {
        match self {
            RestoredStore::Sqlite(file) => file.display().to_string(),
            RestoredStore::Postgres { target } => target.clone(),
        }
    }
}

/// Restores the archive at `input` where `settings` put the store: a new SQLite
/// store in the data directory, or the empty PostgreSQL database of
/// `database_url`. `master_key_file` is the kept copy of the software keystore's
/// master key when it is not where the settings say; with a passphrase (a passphrase
/// file, the systemd credential or `KCM_MASTER_PASSPHRASE`) it must be `None`.
///
/// Offline: no server may run on the data directory or the database meanwhile. The
/// whole archive is authenticated before anything is written; a refusal or a
/// failure leaves the data directory as it was (not created) and the database
/// without a row, except where the error says otherwise (a database that did not
/// confirm its commit, or files that could not be moved into place after it).
pub async fn restore(
    settings: &Settings,
    input: &Path,
    master_key_file: Option<&Path>,
) -> Result<Restored> {
    let data_dir = settings.data_dir.clone();
    let existed = check_data_dir(&data_dir)?;
    let master = master_key(master_key_file, settings)?;
    let destination = Destination::open(settings).await?;
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let archive = ArchiveReader::open(BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("cannot restore {}", input.display()))?;

    let created_parent = create_parents(&data_dir)?;
    let parent_cleanup = created_parent.map(Cleanup::new);
    let name = data_dir
        .file_name()
        .with_context(|| format!("{} is not a directory name", data_dir.display()))?
        .to_string_lossy()
        .into_owned();
    let interrupted = remove_interrupted_restores(&data_dir, &name)?;
    let staging = parent_of(&data_dir).join(format!(".{name}.kcm-restore-{}", random_suffix()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let staging_cleanup = Cleanup::new(staging.clone());

    let nothing_written = match &destination {
        Destination::Sqlite => format!(
            "cannot restore {}; nothing was written to {}",
            input.display(),
            data_dir.display()
        ),
        Destination::Postgres { target, .. } => format!(
            "cannot restore {}; nothing was written to {} or to the database at {target}",
            input.display(),
            data_dir.display()
        ),
    };
    let keystores = stage_files(&staging, archive.header(), master, settings)
        .await
        .context(nothing_written.clone())?;
    let report = restore_store(
        &staging,
        archive,
        &keystores,
        &destination,
        &nothing_written,
    )
    .await?;

    let placed = if existed {
        move_contents(&staging, &data_dir)
    } else {
        std::fs::rename(&staging, &data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))
    };
    if let Err(e) = placed {
        if let Destination::Postgres { target, .. } = &destination {
            // The database is committed: keep the staged files, which this node
            // needs (a passphrase's salt is nowhere else but the archive).
            staging_cleanup.keep();
            if let Some(c) = parent_cleanup {
                c.keep();
            }
            return Err(e.context(format!(
                "the store was restored into the database at {target}, but this node's \
                 files could not be moved into {}. They are in {}: move them there by \
                 hand (or drop and recreate the database and restore again)",
                data_dir.display(),
                staging.display()
            )));
        }
        return Err(e);
    }
    if existed {
        drop(staging_cleanup);
        sync_dir(&data_dir)?;
    } else {
        staging_cleanup.keep();
        sync_dir(&parent_of(&data_dir))?;
    }
    if let Some(c) = parent_cleanup {
        c.keep();
    }
    let store = destination.restored(&data_dir);
    Ok(Restored {
        report,
        data_dir,
        store,
        interrupted,
    })
}

/// Removes the staging directories that restores into `data_dir` (named `name`) left
/// when they were killed before they could clean up: each holds part of a store
/// and perhaps a copy of the master key file, which must not linger. Restores are
/// offline, one at a time, so none of these belongs to a restore still running.
/// Returns what was removed.
fn remove_interrupted_restores(data_dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let parent = parent_of(data_dir);
    let prefix = format!(".{name}.kcm-restore-");
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(&parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", parent.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", parent.display()))?;
        let is_staging = entry.file_name().to_string_lossy().starts_with(&prefix)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if is_staging {
            let path = entry.path();
            std::fs::remove_dir_all(&path).with_context(|| {
                format!(
                    "cannot remove {}, left by an interrupted restore",
                    path.display()
                )
            })?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Files of a data directory that mean it already holds a store or a keystore —
/// or held one: the audit heads a node kept would hold a restored (older) store to
/// records it no longer has.
fn server_files() -> [&'static str; 7] {
    [
        DB_FILE,
        "kcm.db-wal",
        "kcm.db-shm",
        kcm_keystore_software::CHECK_FILE,
        kcm_keystore_software::PARAMS_FILE,
        CREDENTIALS_FILE,
        crate::serve::AUDIT_HEADS_FILE,
    ]
}

/// Where the master key comes from, and where the server will look for it.
struct MasterKey {
    source: MasterKeySource,
    /// For a file: copy it to this path in the staging directory (the server reads
    /// it from the data directory and it is not already there).
    copy_into_data_dir: Option<PathBuf>,
}

/// The master key the restore opens the software keystore with: the passphrase (see
/// [`keystores::passphrase`]: a passphrase file, the systemd credential or
/// `KCM_MASTER_PASSPHRASE`), else `kept_copy`, else the file the server reads.
fn master_key(kept_copy: Option<&Path>, settings: &Settings) -> Result<MasterKey> {
    if let Some(passphrase) = keystores::passphrase(settings)? {
        if kept_copy.is_some() {
            bail!("give either a passphrase (--passphrase-file or KCM_MASTER_PASSPHRASE) or --master-key-file, not both");
        }
        return Ok(MasterKey {
            source: MasterKeySource::Passphrase(passphrase),
            copy_into_data_dir: None,
        });
    }
    let server_reads = settings.master_key_file();
    let file = kept_copy.map_or_else(|| server_reads.clone(), Path::to_path_buf);
    if !file.is_file() {
        bail!(
            "the master key file {} does not exist. A restore needs the master key of the \
             server that made the backup: pass the kept copy with --master-key-file FILE \
             (or, if that server used a passphrase, --passphrase-file FILE or \
             KCM_MASTER_PASSPHRASE)",
            file.display()
        );
    }
    let in_data_dir = settings.keystore.master_key_file.is_none();
    let elsewhere = kept_copy.is_some() && file != server_reads;
    if elsewhere && server_reads.exists() {
        let same = std::fs::read(&file)
            .ok()
            .zip(std::fs::read(&server_reads).ok())
            .is_some_and(|(a, b)| zeroize::Zeroizing::new(a) == zeroize::Zeroizing::new(b));
        if !same {
            bail!(
                "{} exists and is not the master key file given with --master-key-file {}; \
                 the server would read the former",
                server_reads.display(),
                file.display()
            );
        }
    }
    let copy_into_data_dir = (in_data_dir && elsewhere && !server_reads.exists())
        .then(|| PathBuf::from(kcm_keystore_software::MASTER_KEY_FILE));
    Ok(MasterKey {
        source: MasterKeySource::File(file),
        copy_into_data_dir,
    })
}

/// Refuses a data directory that holds a store, or that group or others can enter
/// (the server would refuse it); returns whether it exists.
fn check_data_dir(dir: &Path) -> Result<bool> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => bail!("{} exists and is not a directory", dir.display()),
        Ok(_) => {
            crate::data_dir::ensure_private(dir)?;
            for name in server_files() {
                if dir.join(name).exists() {
                    bail!(
                        "the data directory {} already holds a kcm store or keystore (found \
                         {name}); restore only into a new or empty data directory",
                        dir.display()
                    );
                }
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Creates the missing ancestors of `dir`; returns the topmost one created, if any.
fn create_parents(dir: &Path) -> Result<Option<PathBuf>> {
    let parent = parent_of(dir);
    let mut topmost = None;
    let mut p = parent.as_path();
    while !p.exists() {
        topmost = Some(p.to_path_buf());
        match p.parent() {
            Some(up) if !up.as_os_str().is_empty() => p = up,
            _ => break,
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    Ok(topmost)
}

/// Where the restored store goes.
enum Destination {
    /// A new SQLite file in the data directory (through the staging directory).
    Sqlite,
    /// An empty PostgreSQL database, written after every local file is staged.
    Postgres {
        store: PostgresStore,
        /// The URL without its password, for messages.
        target: String,
    },
}

impl Destination {
    /// Opens the database the settings name, if any, and refuses one that already
    /// holds a store, before the archive is read or anything is written.
    async fn open(settings: &Settings) -> Result<Self> {
        let Some(url) = &settings.database_url else {
            return Ok(Destination::Sqlite);
        };
        let target = url.display_target();
        let store = open_postgres(url, settings).await?;
        // Every store a server has started holds the service's own root key and the
        // default tenant. The restore itself refuses any row; this only says so early.
        let read = |e: StoreError| anyhow::anyhow!("cannot read the database at {target}: {e}");
        let holds_store = !store.root_keys(None).await.map_err(read)?.is_empty()
            || !store.tenants().await.map_err(read)?.is_empty();
        if holds_store {
            bail!(
                "the database at {target} already holds a kcm store; restore only into an \
                 empty database (nothing was written)"
            );
        }
        Ok(Destination::Postgres { store, target })
    }

    /// Where the store went, for the report.
    fn restored(self, data_dir: &Path) -> RestoredStore {
        match self {
            Destination::Sqlite => RestoredStore::Sqlite(data_dir.join(DB_FILE)),
            Destination::Postgres { target, .. } => RestoredStore::Postgres { target },
        }
    }
}

/// Writes the node-local files into `staging` (the software keystore's check and
/// passphrase files, the master key copy) and returns the opened keystores.
async fn stage_files(
    staging: &Path,
    header: &ArchiveHeader,
    master: MasterKey,
    settings: &Settings,
) -> Result<Keystores> {
    if header.keystore_kind == "software" {
        SoftwareKeystore::prepare_restore(
            staging,
            header.keystore_parameters.as_ref(),
            &master.source,
        )
        .map_err(|e| anyhow::anyhow!("cannot restore with this master key: {e}"))?;
    }
    let copy_from = match (&master.source, &master.copy_into_data_dir) {
        (MasterKeySource::File(from), Some(name)) => Some((from.clone(), staging.join(name))),
        _ => None,
    };
    let keystores = keystores::open_all(staging, master.source, settings).await?;
    if let Some((from, to)) = copy_from {
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?,
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&to)
            .with_context(|| format!("cannot create {}", to.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    Ok(keystores)
}

/// Restores the store: the last step, so that a refusal (an occupied database)
/// comes before anything is in place, and the database is written only once every
/// local file is staged. `nothing_written` is the context of an error that left
/// everything as it was.
async fn restore_store(
    staging: &Path,
    archive: ArchiveReader<BufReader<File>>,
    keystores: &Keystores,
    destination: &Destination,
    nothing_written: &str,
) -> Result<backup::RestoreReport> {
    match destination {
        Destination::Sqlite => async {
            let store =
                SqliteStore::open(&staging.join(DB_FILE)).context("cannot create the store")?;
            anyhow::Ok(backup::restore_from(archive, keystores, &store).await?)
        }
        .await
        .context(nothing_written.to_owned()),
        Destination::Postgres { store, target } => {
            match backup::restore_from(archive, keystores, store).await {
                Ok(report) => Ok(report),
                // A lost connection or a timeout may come after the COMMIT was sent:
                // the restore is one transaction, so the database holds all or none.
                Err(e @ backup::BackupError::Store(StoreError::Unavailable(_))) => Err(e)
                    .with_context(|| {
                        format!(
                            "the database at {target} did not confirm the restore: it holds \
                             either the whole restored store or nothing (nothing was written \
                             to the data directory). Drop and recreate the database if it \
                             holds a kcm store, then restore again"
                        )
                    }),
                Err(e) => Err(e).context(nothing_written.to_owned()),
            }
        }
    }
}

/// Moves everything in `staging` into the existing directory `dir`, refusing to
/// replace anything; on failure moves back what it moved.
fn move_contents(staging: &Path, dir: &Path) -> Result<()> {
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| -> Result<()> {
        for entry in std::fs::read_dir(staging)? {
            let entry = entry?;
            let to = dir.join(entry.file_name());
            if to.exists() {
                bail!("{} appeared during the restore", to.display());
            }
            std::fs::rename(entry.path(), &to)
                .with_context(|| format!("cannot move into {}", dir.display()))?;
            moved.push((entry.path(), to));
        }
        Ok(())
    })();
    if result.is_err() {
        for (from, to) in moved {
            let _ = std::fs::rename(to, from);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_with_a_store_or_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(!check_data_dir(&dir.path().join("new")).unwrap());
        let chmod = |mode| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        chmod(0o755);
        let e = check_data_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("chmod 700"), "{e}");
        chmod(0o700);
        assert!(check_data_dir(dir.path()).unwrap());
        std::fs::write(dir.path().join("master.key"), "x").unwrap();
        assert!(check_data_dir(dir.path()).unwrap());
        std::fs::write(dir.path().join(DB_FILE), "").unwrap();
        let e = check_data_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("already holds"), "{e}");
    }
}
