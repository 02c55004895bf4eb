//! `kcm backup` (a client of a running server) and `kcm restore` (offline, into a
//! new data directory and, when the settings name one, an empty PostgreSQL database).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kcm_core::backup::{self, ArchiveHeader, ArchiveReader};
use kcm_core::secret::SecretString;
use kcm_core::store::{Store, StoreError};
use kcm_keystore_software::{MasterKeySource, SoftwareKeystore};
use kcm_store_postgres::PostgresStore;
use kcm_store_sqlite::SqliteStore;
use serde_json::{json, Value};

use super::client::Clients;
use super::{output, ClientOptions};
use crate::config::{Settings, SOFTWARE_KEYSTORE};
use crate::keystores::{self, Keystores};
use crate::serve::{CREDENTIALS_FILE, DB_FILE};

/// `kcm backup`.
#[derive(Args, Debug)]
#[command(after_long_help = BACKUP_HELP)]
pub struct BackupArgs {
    /// File to write the archive to (created with mode 0600).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: PathBuf,
    /// Replace FILE if it already exists.
    #[arg(long)]
    force: bool,
}

const BACKUP_HELP: &str = "\
Downloads a backup archive of the whole store from a running server: every tenant, \
key, key version, alias, system, access key and setting, as one consistent snapshot \
taken without stopping the server. Only the operator may do this:

    kcm --profile system-admin backup -o kcm-backup.kcmbak

The archive is encrypted and integrity-protected. It holds only wrapped key \
material: its key is wrapped by the server's root key in its keystore, so restoring \
it (`kcm restore`) needs that keystore too. For the software keystore keep, apart \
from the archive, the master key file (default <data-dir>/master.key) or the \
passphrase (KCM_MASTER_PASSPHRASE). Clients' credential files are not in the archive.

The download goes to a temporary file next to FILE, is synced to disk and renamed \
into place only when complete; a progress bar is shown on a terminal.";

/// `kcm restore`.
#[derive(Args, Debug)]
#[command(after_long_help = RESTORE_HELP)]
pub struct RestoreArgs {
    /// The archive made by `kcm backup`.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    /// Data directory to restore into; it must not hold a store (default: the
    /// server's setting, ./kcm-data). With a database it receives only the node's
    /// keystore files.
    #[arg(long, env = "KCM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The server's TOML configuration file (for data_dir, database_url,
    /// keystore.master_key_file and the [keystores.<name>] tables: an archive whose
    /// key is in an HSM needs them).
    #[arg(long, env = "KCM_CONFIG")]
    config: Option<PathBuf>,
    /// The kept copy of the software keystore's master key file, when it is not
    /// where the server's settings say (KCM_MASTER_KEY_FILE, keystore.master_key_file,
    /// default DATA_DIR/master.key).
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<PathBuf>,
}

const RESTORE_HELP: &str = "\
Restores an archive made by `kcm backup`, offline (no server runs on the store during \
the restore). The store goes where the server's settings put it:

  - SQLite (the default): a new store in the data directory.

    kcm restore --input kcm-backup.kcmbak --data-dir /var/lib/kcm --master-key-file /safe/master.key
    KCM_MASTER_PASSPHRASE=... kcm restore --input kcm-backup.kcmbak --data-dir /var/lib/kcm

  - PostgreSQL, when database_url (in --config) or KCM_DATABASE_URL is set: the rows \
go into that database, which must be empty (a new database; the schema is created \
if missing). The data directory receives only this node's keystore files.

    KCM_DATABASE_URL=postgres://kcm@db/kcm kcm restore --input kcm-backup.kcmbak \\
        --data-dir /var/lib/kcm --master-key-file /safe/master.key

The master key must be the one the backed-up server used: the kept master key file, \
or the same passphrase (the archive carries the passphrase's salt). The whole archive \
is read and checked before anything is written; a modified, truncated or foreign \
archive, or the wrong master key, is refused and the data directory is left as it \
was (not created). The restore refuses a data directory that already holds a store, \
and a database that holds any row. The database is written last, in one transaction, \
once this node's files are ready: a failure up to then leaves the data directory as it \
was and adds no row to the database.

When the server reads its master key file from the data directory (the default), the \
kept copy given with --master-key-file is copied there, so `kcm serve --data-dir DIR` \
works as before. Clients keep using their own credentials: access keys are restored, \
but the `credentials` file of the first start is not part of the archive.

A cluster is restored once, from one node: stop every node, restore into an empty \
database with that node's settings, give every other node the same master key file \
(or, with a passphrase, the restored keystore-params.json) in a new data directory, \
then start the nodes.";

// ---------------------------------------------------------------- shared

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn table_counts(tables: &[(String, u64)]) -> Value {
    Value::Object(
        tables
            .iter()
            .map(|(name, rows)| (name.clone(), json!(rows)))
            .collect(),
    )
}

/// A path that is removed (file or directory tree) when dropped, unless kept.
struct Cleanup {
    path: Option<PathBuf>,
}

impl Cleanup {
    fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    kcm_core::crypto::fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- backup

impl BackupArgs {
    /// Runs the command.
    pub async fn run(self, client: &ClientOptions) -> Result<ExitCode> {
        let out = &self.out;
        let name = out
            .file_name()
            .with_context(|| format!("{} is not a file name", out.display()))?
            .to_string_lossy()
            .into_owned();
        if out.exists() && !self.force {
            bail!(
                "{} already exists; choose another file or pass --force to replace it",
                out.display()
            );
        }
        let dir = parent_of(out);
        if !dir.is_dir() {
            bail!("the directory {} does not exist", dir.display());
        }
        let clients = Clients::new(client)?;
        let tmp = dir.join(format!(".{name}.kcm-partial-{}", random_suffix()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let cleanup = Cleanup::new(tmp.clone());
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_message("backing up");
            bar
        } else {
            ProgressBar::hidden()
        };
        let received = clients
            .rest()
            .backup(&mut writer, |done, total| {
                if let Some(total) = total {
                    if bar.length() != Some(total) {
                        bar.set_length(total);
                        if let Ok(style) = ProgressStyle::with_template(
                            "{spinner} backup {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}",
                        ) {
                            bar.set_style(style.progress_chars("=> "));
                        }
                    }
                }
                bar.set_position(done);
            })
            .await
            .context("backup failed");
        bar.finish_and_clear();
        let received = received?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        drop(file);
        // A structural check of what arrived, and the summary to print.
        let header = ArchiveReader::open(BufReader::new(File::open(&tmp)?))
            .context("the server's answer is not a kcm backup archive")?
            .header()
            .clone();
        if self.force {
            std::fs::rename(&tmp, out)
                .with_context(|| format!("cannot write {}", out.display()))?;
        } else {
            // A hard link never replaces an existing file (someone may have made it meanwhile).
            std::fs::hard_link(&tmp, out)
                .with_context(|| format!("cannot write {} (does it exist now?)", out.display()))?;
        }
        drop(cleanup);
        sync_dir(&dir)?;
        let tables: Vec<(String, u64)> =
            header.tables.iter().map(|(k, v)| (k.clone(), *v)).collect();
        output::object(
            client.output,
            &json!({
                "file": out.display().to_string(),
                "bytes": received,
                "created_at": rfc3339(header.created_at),
                "kcm_version": header.kcm_version,
                "schema_version": header.schema_version,
                "keystore": format!("{} ({})", header.keystore, header.keystore_kind),
                "root_key_id": header.root_key_id,
                "rows": header.total_rows(),
                "tables": table_counts(&tables),
            }),
        );
        Ok(ExitCode::SUCCESS)
    }
}

// ---------------------------------------------------------------- restore

/// Files of a data directory that mean it already holds a store or a keystore.
fn server_files() -> [&'static str; 6] {
    [
        DB_FILE,
        "kcm.db-wal",
        "kcm.db-shm",
        kcm_keystore_software::CHECK_FILE,
        kcm_keystore_software::PARAMS_FILE,
        CREDENTIALS_FILE,
    ]
}

/// Where the master key comes from, and where the server will look for it.
struct MasterKey {
    source: MasterKeySource,
    /// For a file: copy it to this path in the staging directory (the server reads
    /// it from the data directory and it is not already there).
    copy_into_data_dir: Option<PathBuf>,
}

fn master_key(args: &RestoreArgs, settings: &Settings) -> Result<MasterKey> {
    if let Ok(passphrase) = std::env::var("KCM_MASTER_PASSPHRASE") {
        if !passphrase.is_empty() {
            std::env::remove_var("KCM_MASTER_PASSPHRASE");
            if args.master_key_file.is_some() {
                bail!("give either KCM_MASTER_PASSPHRASE or --master-key-file, not both");
            }
            return Ok(MasterKey {
                source: MasterKeySource::Passphrase(SecretString::new(passphrase)),
                copy_into_data_dir: None,
            });
        }
    }
    let server_reads = settings
        .keystore
        .master_key_file
        .clone()
        .unwrap_or_else(|| {
            settings
                .data_dir
                .join(kcm_keystore_software::MASTER_KEY_FILE)
        });
    let file = args
        .master_key_file
        .clone()
        .unwrap_or_else(|| server_reads.clone());
    if !file.is_file() {
        bail!(
            "the master key file {} does not exist. A restore needs the master key of the \
             server that made the backup: pass the kept copy with --master-key-file FILE \
             (or set KCM_MASTER_PASSPHRASE if that server used a passphrase)",
            file.display()
        );
    }
    let in_data_dir = settings.keystore.master_key_file.is_none();
    let elsewhere = args.master_key_file.is_some() && file != server_reads;
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

/// Refuses a data directory that holds a store; returns whether it exists.
fn check_data_dir(dir: &Path) -> Result<bool> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => bail!("{} exists and is not a directory", dir.display()),
        Ok(_) => {
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
        let store = crate::serve::open_postgres(url, settings).await?;
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
    fn describe(&self, data_dir: &Path) -> String {
        match self {
            Destination::Sqlite => data_dir.join(DB_FILE).display().to_string(),
            Destination::Postgres { target, .. } => target.clone(),
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
    let keystore = SoftwareKeystore::open(staging, master.source)
        .context("cannot open the software keystore")?;
    let mut keystores: Keystores = HashMap::new();
    keystores.insert(SOFTWARE_KEYSTORE.into(), Arc::new(keystore));
    keystores::open_configured(settings, &mut keystores).await?;
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

impl RestoreArgs {
    /// Runs the command.
    pub async fn run(self, format: output::Format) -> Result<ExitCode> {
        let mut settings = Settings::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            settings.data_dir = d.clone();
        }
        settings.validate()?;
        let data_dir = settings.data_dir.clone();
        let existed = check_data_dir(&data_dir)?;
        let master = master_key(&self, &settings)?;
        let destination = Destination::open(&settings).await?;
        let input = File::open(&self.input)
            .with_context(|| format!("cannot open {}", self.input.display()))?;
        let archive = ArchiveReader::open(BufReader::with_capacity(1 << 20, input))
            .with_context(|| format!("cannot restore {}", self.input.display()))?;

        let created_parent = create_parents(&data_dir)?;
        let parent_cleanup = created_parent.map(Cleanup::new);
        let name = data_dir
            .file_name()
            .with_context(|| format!("{} is not a directory name", data_dir.display()))?
            .to_string_lossy()
            .into_owned();
        let staging = parent_of(&data_dir).join(format!(".{name}.kcm-restore-{}", random_suffix()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let staging_cleanup = Cleanup::new(staging.clone());

        let nothing_written = match &destination {
            Destination::Sqlite => format!(
                "cannot restore {}; nothing was written to {}",
                self.input.display(),
                data_dir.display()
            ),
            Destination::Postgres { target, .. } => format!(
                "cannot restore {}; nothing was written to {} or to the database at {target}",
                self.input.display(),
                data_dir.display()
            ),
        };
        let keystores = stage_files(&staging, archive.header(), master, &settings)
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
        print_report(format, &report, &data_dir, &destination);
        Ok(ExitCode::SUCCESS)
    }
}

fn print_report(
    format: output::Format,
    report: &backup::RestoreReport,
    data_dir: &Path,
    destination: &Destination,
) {
    let h: &ArchiveHeader = &report.header;
    let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
    let store = destination.describe(data_dir);
    output::object(
        format,
        &json!({
            "store": store,
            "data_dir": data_dir.display().to_string(),
            "backup_created_at": rfc3339(h.created_at),
            "backup_kcm_version": h.kcm_version,
            "schema_version": h.schema_version,
            "rows": rows,
            "tables": table_counts(&report.tables),
        }),
    );
    if format == output::Format::Text {
        let serve = match destination {
            Destination::Sqlite => String::new(),
            Destination::Postgres { .. } => "KCM_DATABASE_URL=... ".into(),
        };
        eprintln!(
            "restored {rows} rows into {store}; start the server with: {serve}kcm serve --data-dir {}",
            data_dir.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_with_a_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!check_data_dir(&dir.path().join("new")).unwrap());
        assert!(check_data_dir(dir.path()).unwrap());
        std::fs::write(dir.path().join("master.key"), "x").unwrap();
        assert!(check_data_dir(dir.path()).unwrap());
        std::fs::write(dir.path().join(DB_FILE), "").unwrap();
        let e = check_data_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("already holds"), "{e}");
    }

    #[test]
    fn cleanup_removes_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        drop(Cleanup::new(a.clone()));
        assert!(!a.exists());
        let b = dir.path().join("b");
        std::fs::write(&b, "x").unwrap();
        Cleanup::new(b.clone()).keep();
        assert!(b.exists());
    }
}
