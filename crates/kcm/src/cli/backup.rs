//! `kcm backup` (a client of a running server) and `kcm restore` (offline, into a
//! new data directory and, when the settings name one, an empty PostgreSQL
//! database; the work is [`kcm_server::restore`], this is its command line).

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kcm_core::backup::ArchiveReader;
use kcm_server::files::{parent_of, random_suffix, sync_dir, Cleanup};
use kcm_server::restore::{self, Restored, RestoredStore};
use kcm_server::Settings;
use serde_json::{json, Value};

use super::client::Clients;
use super::{output, ClientOptions};

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
passphrase. Clients' credential files are not in the archive.

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
    /// keystore.master_key_file and the [keystores.NAME] tables: an archive whose
    /// key is in an HSM needs them).
    #[arg(long, env = "KCM_CONFIG")]
    config: Option<PathBuf>,
    /// The kept copy of the software keystore's master key file, when it is not
    /// where the server's settings say (KCM_MASTER_KEY_FILE, keystore.master_key_file,
    /// default DATA_DIR/master.key).
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// File holding the passphrase of a passphrase-protected software keystore
    /// (readable by its owner only; one line); also KCM_MASTER_PASSPHRASE_FILE or
    /// keystore.passphrase_file.
    #[arg(long, value_name = "FILE", conflicts_with = "master_key_file")]
    passphrase_file: Option<PathBuf>,
}

const RESTORE_HELP: &str = "\
Restores an archive made by `kcm backup`, offline (no server runs on the store during \
the restore). The store goes where the server's settings put it:

  - SQLite (the default): a new store in the data directory.

    kcm restore --input kcm-backup.kcmbak --data-dir /var/lib/kcm --master-key-file /safe/master.key
    kcm restore --input kcm-backup.kcmbak --data-dir /var/lib/kcm --passphrase-file /safe/passphrase
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

impl RestoreArgs {
    /// Runs the command.
    pub async fn run(self, format: output::Format) -> Result<ExitCode> {
        let mut settings = Settings::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            settings.data_dir = d.clone();
        }
        if let Some(f) = &self.passphrase_file {
            settings.keystore.passphrase_file = Some(f.clone());
        }
        settings.validate()?;
        let restored =
            restore::restore(&settings, &self.input, self.master_key_file.as_deref()).await?;
        print_report(format, &restored);
        Ok(ExitCode::SUCCESS)
    }
}

fn print_report(format: output::Format, restored: &Restored) {
    let Restored {
        report,
        data_dir,
        store,
        interrupted,
    } = restored;
    for path in interrupted {
        eprintln!(
            "removed {}: left by an earlier restore that was interrupted",
            path.display()
        );
    }
    let h = &report.header;
    let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
    let serve = match store {
        RestoredStore::Sqlite(_) => "",
        RestoredStore::Postgres { .. } => "KCM_DATABASE_URL=... ",
    };
    let store = store.location();
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
        eprintln!(
            "restored {rows} rows into {store}; start the server with: {serve}kcm serve --data-dir {}",
            data_dir.display()
        );
    }
}
