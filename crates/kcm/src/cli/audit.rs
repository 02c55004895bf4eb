//! `kcm audit export`, `kcm audit head` and `kcm audit verify`.
//!
//! Export writes JSON lines for shipping to a SIEM: one object per record
//! (`"type": "record"` plus the record's fields exactly as hashed), and with
//! `--checkpoints` the chain's signed checkpoints (`"type": "checkpoint"`) and its
//! signed head at the time of the export (`"type": "head"`). Head writes the chain's
//! signed head alone, to keep outside the server. Verify checks a chain — fetched
//! from the server, or from an unfiltered export — with the same code the server's
//! format is defined by (`kcm_core::audit::verify`), against a saved head if given.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kcm_api_types::{AuditParams, CheckpointParams};
use kcm_core::audit::export::{self, Export, ExportLine};
use kcm_core::audit::verify::{verify_chain, Report};
use kcm_core::model::{AuditCheckpoint, AuditRecord};
use serde_json::Value;

use super::client::Clients;
use super::output::Format;
use super::ClientOptions;

/// `kcm audit …`
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Write your audit chain as JSON lines (for a SIEM, or for `audit verify --file`).
    ///
    /// Tenant-admins and auditors export their tenant's chain; system-admin the
    /// operator's. Times are RFC 3339 (2026-12-01T10:00:00Z).
    Export {
        /// Only records at or after this time.
        #[arg(long)]
        from: Option<String>,
        /// Only records before this time.
        #[arg(long)]
        to: Option<String>,
        /// Only records naming this key id.
        #[arg(long)]
        key: Option<String>,
        /// Only records of this access key id.
        #[arg(long)]
        principal: Option<String>,
        /// Only records of this operation (Encrypt, CreateSystem, …).
        #[arg(long)]
        operation: Option<String>,
        /// Also write the chain's signed checkpoints and its signed head as of now
        /// (needed by `audit verify --file`).
        #[arg(long)]
        checkpoints: bool,
        /// Output file (default: standard output).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Write your chain's signed head: "it had N records, ending in hash H", signed
    /// now by the audit signing key.
    ///
    /// Keep heads where whoever can write the server's store cannot (a SIEM, another
    /// machine): `audit verify --head` then finds records cut from the end of the
    /// chain since, even when the checkpoints covering them were removed with them.
    Head {
        /// Output file (default: standard output).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Check your audit chain, its signed checkpoints (each signed as the successor
    /// of the one before) and a signed head; name the first record that was altered,
    /// removed, inserted or reordered, or the checkpoint that was removed or forged.
    /// Exits 0 when intact, 3 when not.
    ///
    /// From the server, the chain is checked against a head the server signs now
    /// (which vouches for what the server itself wrote when its store lost records)
    /// and against `--head` when given; from a file, against the file's head or
    /// `--head`.
    Verify {
        /// Verify an export (`audit export --checkpoints`, without filters) instead of
        /// the server's store.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The audit signing public key (64 hex characters), to check checkpoint
        /// signatures without trusting the server. Default: fetched from the server.
        #[arg(long)]
        public_key: Option<String>,
        /// A signed head saved earlier (`audit head -o FILE`): the chain must still
        /// hold the record it vouches for, with the same hash.
        #[arg(long)]
        head: Option<PathBuf>,
    },
}

/// Exit code of a verification that found a problem.
const TAMPERED: u8 = 3;

impl AuditArgs {
    /// Runs the command.
    pub async fn run(self, client: &ClientOptions) -> Result<ExitCode> {
        match self.command {
            AuditCommand::Export {
                from,
                to,
                key,
                principal,
                operation,
                checkpoints,
                out,
            } => {
                let c = Clients::new(client)?;
                let filters = AuditParams {
                    from,
                    to,
                    key,
                    principal,
                    operation,
                    ..AuditParams::default()
                };
                let sink: Box<dyn Write> = match &out {
                    Some(path) => Box::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    ),
                    None => Box::new(std::io::stdout().lock()),
                };
                let mut sink = BufWriter::new(sink);
                // Head and checkpoints before records, for the reason given in
                // `verify`.
                let (head, checkpoints) = if checkpoints {
                    (Some(fetch_head(&c).await?), fetch_checkpoints(&c).await?)
                } else {
                    (None, Vec::new())
                };
                let mut written = 0u64;
                for record in fetch_records(&c, filters).await? {
                    serde_json::to_writer(&mut sink, &ExportLine::Record(Box::new(record)))?;
                    sink.write_all(b"\n")?;
                    written += 1;
                }
                for cp in checkpoints {
                    serde_json::to_writer(&mut sink, &ExportLine::Checkpoint(cp))?;
                    sink.write_all(b"\n")?;
                }
                if let Some(head) = head {
                    serde_json::to_writer(&mut sink, &ExportLine::Head(head))?;
                    sink.write_all(b"\n")?;
                }
                sink.flush()?;
                if let Some(path) = out {
                    eprintln!("wrote {written} audit records to {}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Head { out } => {
                let c = Clients::new(client)?;
                let head = serde_json::to_string_pretty(&fetch_head(&c).await?)?;
                match &out {
                    Some(path) => {
                        std::fs::write(path, head + "\n")
                            .with_context(|| format!("cannot write {}", path.display()))?;
                        eprintln!("wrote the signed head to {}", path.display());
                    }
                    None => println!("{head}"),
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Verify {
                file,
                public_key,
                head,
            } => {
                let saved_head = head.as_ref().map(read_head).transpose()?;
                let public_key = match public_key {
                    Some(hex_key) => Some(parse_public_key(&hex_key)?),
                    None => match Clients::new(client) {
                        Ok(c) => match c
                            .rest()
                            .audit_signing_key()
                            .await
                            .map_err(anyhow::Error::from)
                        {
                            Ok(key) => Some(parse_public_key(&key.public_key)?),
                            Err(e) if file.is_some() => {
                                eprintln!("warning: cannot fetch the signing key from the server ({e:#}); checkpoint signatures are not checked");
                                None
                            }
                            Err(e) => return Err(e),
                        },
                        Err(e) if file.is_some() => {
                            eprintln!("warning: no credentials to fetch the signing key ({e:#}); checkpoint signatures are not checked");
                            None
                        }
                        Err(e) => return Err(e),
                    },
                };
                let (export, source) = match &file {
                    Some(path) => (read_export(path)?, path.display().to_string()),
                    None => {
                        let c = Clients::new(client)?;
                        // Head and checkpoints first: reading records appends a
                        // record (this read's own), which a head or checkpoint signed
                        // in between would vouch for although the records fetched end
                        // before it.
                        let head = fetch_head(&c).await?;
                        let checkpoints = fetch_checkpoints(&c).await?;
                        let records = fetch_records(&c, AuditParams::default()).await?;
                        let export = Export {
                            records,
                            checkpoints,
                            head: Some(head),
                        };
                        (export, client.endpoint.clone())
                    }
                };
                let key = public_key.as_deref();
                let (records, checkpoints) = (&export.records, &export.checkpoints);
                let mut report = verify_chain(records, checkpoints, key, export.head.as_ref());
                // A saved head is checked too: the newer one cannot vouch for it.
                if report.is_intact() && saved_head.is_some() {
                    let unsigned_tail = report.unsigned_tail;
                    report = verify_chain(records, checkpoints, key, saved_head.as_ref());
                    report.unsigned_tail = report.unsigned_tail.min(unsigned_tail);
                }
                print_report(client.output, &source, &report);
                Ok(if report.is_intact() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(TAMPERED)
                })
            }
        }
    }
}

fn parse_public_key(hex_key: &str) -> Result<Vec<u8>> {
    let key = hex::decode(hex_key.trim()).context("the public key is not hex")?;
    if key.len() != 32 {
        bail!(
            "the public key must be 32 bytes (64 hex characters), got {}",
            key.len()
        );
    }
    Ok(key)
}

/// Every record of the caller's chain that `filters` select, page by page.
async fn fetch_records(c: &Clients, filters: AuditParams) -> Result<Vec<AuditRecord>> {
    let mut params = AuditParams {
        limit: Some(PAGE),
        ..filters
    };
    fetch_all(async |after| {
        params.after = Some(after);
        let page = c.rest().audit_records(&params).await?;
        Ok((page.records, page.next_after))
    })
    .await
}

/// The caller's chain's signed head, made now.
async fn fetch_head(c: &Clients) -> Result<AuditCheckpoint> {
    Ok(c.rest().audit_head().await?.head)
}

/// A head saved by `audit head -o FILE`.
fn read_head(path: &PathBuf) -> Result<AuditCheckpoint> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed head (`kcm audit head`)", path.display()))
}

/// Every signed checkpoint of the caller's chain, page by page.
async fn fetch_checkpoints(c: &Clients) -> Result<Vec<AuditCheckpoint>> {
    fetch_all(async |after| {
        let params = CheckpointParams {
            after: Some(after),
            limit: Some(PAGE),
        };
        let page = c.rest().audit_checkpoints(&params).await?;
        Ok((page.checkpoints, page.next_after))
    })
    .await
}

/// Page size of the audit listings (their largest).
const PAGE: usize = 1000;

/// Every item of a paged listing: `page(after)` fetches the items after `after`
/// and where the next page starts, until the last page.
async fn fetch_all<T>(
    mut page: impl AsyncFnMut(u64) -> Result<(Vec<T>, Option<u64>)>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let (items, next) = page(after).await?;
        out.extend(items);
        match next {
            Some(next) => after = next,
            None => return Ok(out),
        }
    }
}

fn read_export(path: &PathBuf) -> Result<Export> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    export::read_export(std::io::BufReader::new(file)).with_context(|| path.display().to_string())
}

fn print_report(format: Format, source: &str, report: &Report) {
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(report).unwrap_or(Value::Null);
            v["intact"] = Value::Bool(report.is_intact());
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Format::Text => {
            println!(
                "{} records, {} checkpoints verified{} ({source})",
                report.records,
                report.checkpoints_verified,
                if report.signatures_checked {
                    ""
                } else {
                    ", signatures NOT checked"
                }
            );
            if report.head_checked {
                println!("the chain reaches its signed head");
            }
            if report.unsigned_tail > 0 {
                println!(
                    "the newest {} records are covered by no signature yet: records cut from the end would not show (check against a head signed later)",
                    report.unsigned_tail
                );
            }
            match &report.problem {
                None => println!("intact"),
                Some(p) => println!("TAMPERED: {}", p.message),
            }
        }
    }
}
