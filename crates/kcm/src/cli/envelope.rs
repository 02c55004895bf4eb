//! `kcm encrypt` / `kcm decrypt`: envelope encryption of files and streams with a
//! data key from GenerateDataKey (the "service agent" of a KMS).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kcm_client::envelope::{self, DataKey};
use kcm_server::files::PendingFile;
use serde_json::json;
use zeroize::Zeroizing;

use super::client::Clients;
use super::ClientOptions;

/// `kcm encrypt`.
#[derive(Args, Debug)]
pub struct EncryptArgs {
    /// Key id, ARN or alias to protect the data key with.
    #[arg(long)]
    key_id: String,
    /// Input file (default: stdin).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Output file (default: stdout). It appears only when complete: until then it has
    /// no name (or, where the file system cannot do that, a hidden one).
    #[arg(short = 'o', long = "out")]
    out_path: Option<PathBuf>,
}

/// `kcm decrypt`.
#[derive(Args, Debug)]
pub struct DecryptArgs {
    /// Input file made by `kcm encrypt` (default: stdin).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Output file (default: stdout). Created only if the whole input authenticates:
    /// until then the plaintext is in a file without a name, which an interrupted run
    /// (Ctrl-C, kill, even kill -9) leaves nowhere.
    #[arg(short = 'o', long = "out")]
    out_path: Option<PathBuf>,
}

/// Where `kcm encrypt` / `decrypt` read from: a file or stdin.
type Input = Box<dyn Read + Send>;

/// Where they write to: a file not yet named, or stdout (see [`Output`]).
type Sink = Box<dyn Write + Send>;

fn open_input(path: Option<&Path>) -> Result<(Input, Option<u64>)> {
    match path {
        None => Ok((Box::new(std::io::stdin()), None)),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
        }
    }
}

/// Output that becomes visible only when `commit` is called: a [`PendingFile`] (no
/// name until it is complete, so an interrupted run leaves nothing behind), or
/// stdout.
struct Output {
    target: Option<PendingFile>,
    /// Taken by the thread that writes ([`Output::take_writer`]).
    writer: Option<Sink>,
}

impl Output {
    fn create(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Ok(Self {
                target: None,
                writer: Some(Box::new(BufWriter::new(std::io::stdout()))),
            }),
            Some(p) => {
                let pending = PendingFile::create(p)?;
                let file = pending.file().try_clone()?;
                Ok(Self {
                    target: Some(pending),
                    writer: Some(Box::new(BufWriter::with_capacity(1 << 20, file))),
                })
            }
        }
    }

    /// The writer, for the thread that streams into it; it flushes it when done.
    fn take_writer(&mut self) -> Sink {
        self.writer
            .take()
            .unwrap_or_else(|| Box::new(std::io::sink()))
    }

    /// Gives the file its name (the writer was flushed).
    fn commit(mut self) -> Result<()> {
        match self.target.take() {
            Some(pending) => pending.persist(),
            None => Ok(()),
        }
    }
}

/// Resolves when SIGINT (Ctrl-C), SIGTERM or SIGHUP arrives: the signal's name and
/// the exit code a shell gives a process it ends (128 + its number). Never resolves
/// if the handlers cannot be installed (the default action then ends the process).
async fn interrupted() -> (&'static str, u8) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => ("SIGINT", 130),
        _ = term.recv() => ("SIGTERM", 143),
        _ = hup.recv() => ("SIGHUP", 129),
    }
}

fn progress_bar(len: Option<u64>) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}"
    } else {
        "{spinner} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Streams `reader` (`len` bytes, when known) through `transform` — encryption or
/// decryption — into the output at `out_path`, off the async threads and with a
/// progress bar. The output appears only if `transform` succeeds (see [`Output`]).
/// Returns what `transform` returns: the plaintext bytes.
///
/// SIGINT, SIGTERM or SIGHUP meanwhile ends the process at once, with the output not
/// written: an unnamed file goes with the process, a named temporary one is removed
/// first.
async fn stream_to_output(
    mut reader: Input,
    len: Option<u64>,
    out_path: Option<&Path>,
    transform: impl FnOnce(&mut Input, &mut Sink, &dyn Fn(u64)) -> Result<u64> + Send + 'static,
) -> Result<u64> {
    let mut output = Output::create(out_path)?;
    let mut writer = output.take_writer();
    let bar = progress_bar(len);
    let progress = bar.clone();
    let work = tokio::task::spawn_blocking(move || -> Result<u64> {
        let total = transform(&mut reader, &mut writer, &|n| progress.set_position(n))?;
        writer.flush()?;
        Ok(total)
    });
    let total = tokio::select! {
        done = work => done??,
        (signal, code) = interrupted() => {
            bar.finish_and_clear();
            drop(output);
            eprintln!("interrupted by {signal}: no output was written");
            std::process::exit(i32::from(code));
        }
    };
    output.commit()?;
    bar.finish_and_clear();
    Ok(total)
}

fn decode_b64(v: &serde_json::Value, field: &str) -> Result<Zeroizing<Vec<u8>>> {
    let text = v[field]
        .as_str()
        .with_context(|| format!("response has no {field}"))?;
    Ok(Zeroizing::new(
        STANDARD
            .decode(text)
            .with_context(|| format!("{field} is not base64"))?,
    ))
}

impl EncryptArgs {
    /// Runs the command.
    pub async fn run(self, client: &ClientOptions) -> Result<ExitCode> {
        let clients = Clients::new(client)?;
        let out = clients
            .kms(
                "GenerateDataKey",
                json!({"KeyId": self.key_id, "KeySpec": "AES_256"}),
            )
            .await?;
        let plaintext = decode_b64(&out, "Plaintext")?;
        let wrapped = decode_b64(&out, "CiphertextBlob")?;
        let key_id = out["KeyId"].as_str().unwrap_or(&self.key_id).to_string();
        let data_key = DataKey::from_slice(&plaintext)?;
        let (reader, len) = open_input(self.input.as_deref())?;
        let total = stream_to_output(
            reader,
            len,
            self.out_path.as_deref(),
            move |reader, writer, progress| {
                // The envelope error becomes the command's error.
                Ok(envelope::encrypt_stream(
                    reader, writer, &data_key, &wrapped, &key_id, progress,
                )?)
            },
        )
        .await?;
        eprintln!("encrypted {total} bytes");
        Ok(ExitCode::SUCCESS)
    }
}

impl DecryptArgs {
    /// Runs the command.
    pub async fn run(self, client: &ClientOptions) -> Result<ExitCode> {
        let clients = Clients::new(client)?;
        let (mut reader, len) = open_input(self.input.as_deref())?;
        let (reader, header) = tokio::task::spawn_blocking(move || {
            let header = envelope::read_header(&mut reader);
            (reader, header)
        })
        .await?;
        let header = header.context("input is not a kcm envelope (or its header is damaged)")?;
        let out = clients
            .kms(
                "Decrypt",
                json!({"CiphertextBlob": STANDARD.encode(&header.wrapped_data_key), "KeyId": header.key_id}),
            )
            .await?;
        let plaintext = decode_b64(&out, "Plaintext")?;
        if plaintext.len() != 32 {
            bail!("the data key in this envelope is not an AES-256 key");
        }
        let data_key = DataKey::from_slice(&plaintext)?;
        let total = stream_to_output(
            reader,
            len,
            self.out_path.as_deref(),
            move |reader, writer, progress| {
                envelope::decrypt_body(reader, writer, &data_key, &header, progress).context(
                    "decryption failed: the input was modified, truncated, or is not a kcm envelope",
                )
            },
        )
        .await?;
        eprintln!("decrypted {total} bytes");
        Ok(ExitCode::SUCCESS)
    }
}
