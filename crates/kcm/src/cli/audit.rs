//! `kcm audit export` and `kcm audit verify`.
//!
//! Export writes JSON lines for shipping to a SIEM: one object per record
//! (`"type": "record"` plus the record's fields exactly as hashed), and with
//! `--checkpoints` the chain's signed checkpoints (`"type": "checkpoint"`). Verify
//! checks a chain — fetched from the server, or from an unfiltered export — with
//! the same code the server's format is defined by (`kcm_core::audit::verify`).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kcm_api_types::{AuditParams, CheckpointParams};
use kcm_core::audit::export::{self, ExportLine};
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
        /// Also write the chain's signed checkpoints (needed by `audit verify --file`).
        #[arg(long)]
        checkpoints: bool,
        /// Output file (default: standard output).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Check your audit chain and its signed checkpoints; name the first record that
    /// was altered, removed, inserted or reordered. Exits 0 when intact, 3 when not.
    Verify {
        /// Verify an export (`audit export --checkpoints`, without filters) instead of
        /// the server's store.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The audit signing public key (64 hex characters), to check checkpoint
        /// signatures without trusting the server. Default: fetched from the server.
        #[arg(long)]
        public_key: Option<String>,
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
                // Checkpoints before records, for the reason given in `verify`.
                let checkpoints = if checkpoints {
                    fetch_checkpoints(&c).await?
                } else {
                    Vec::new()
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
                sink.flush()?;
                if let Some(path) = out {
                    eprintln!("wrote {written} audit records to {}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Verify { file, public_key } => {
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
                let (records, checkpoints, source) = match &file {
                    Some(path) => {
                        let (r, c) = read_export(path)?;
                        (r, c, path.display().to_string())
                    }
                    None => {
                        let c = Clients::new(client)?;
                        // Checkpoints first: reading records appends a record (this
                        // read's own), which a checkpoint signed in between would
                        // vouch for although the records fetched end before it.
                        let checkpoints = fetch_checkpoints(&c).await?;
                        let records = fetch_records(&c, AuditParams::default()).await?;
                        (records, checkpoints, client.endpoint.clone())
                    }
                };
                let report = verify_chain(&records, &checkpoints, public_key.as_deref());
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

fn read_export(path: &PathBuf) -> Result<(Vec<AuditRecord>, Vec<AuditCheckpoint>)> {
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
            match &report.problem {
                None => println!("intact"),
                Some(p) => println!("TAMPERED: {}", p.message),
            }
        }
    }
}
