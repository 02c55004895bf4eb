//! `kcm encrypt` / `kcm decrypt`: envelope encryption of files and streams with a
//! data key from GenerateDataKey (the "service agent" of a KMS).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kcm_client::envelope::{self, DataKey};
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
    /// Output file (default: stdout). Written to a temporary file and renamed on success.
    #[arg(short = 'o', long = "out")]
    out_path: Option<PathBuf>,
}

/// `kcm decrypt`.
#[derive(Args, Debug)]
pub struct DecryptArgs {
    /// Input file made by `kcm encrypt` (default: stdin).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Output file (default: stdout). Created only if the whole input authenticates.
    #[arg(short = 'o', long = "out")]
    out_path: Option<PathBuf>,
}

/// Where `kcm encrypt` / `decrypt` read from: a file or stdin.
type Input = Box<dyn Read + Send>;

/// Where they write to: a temporary file or stdout (see [`Output`]).
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

/// Output that becomes visible only when `commit` is called: a temporary file next to
/// the target, renamed into place; or stdout.
struct Output {
    target: Option<(PathBuf, PathBuf)>,
    writer: Sink,
}

impl Output {
    fn create(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Ok(Self {
                target: None,
                writer: Box::new(BufWriter::new(std::io::stdout())),
            }),
            Some(p) => {
                let name = p.file_name().context("output path has no file name")?;
                let tmp = p.with_file_name(format!(".{}.kcm-partial", name.to_string_lossy()));
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                Ok(Self {
                    target: Some((tmp, p.to_path_buf())),
                    writer: Box::new(BufWriter::with_capacity(1 << 20, f)),
                })
            }
        }
    }

    fn commit(mut self) -> Result<()> {
        self.writer.flush()?;
        drop(std::mem::replace(
            &mut self.writer,
            Box::new(std::io::sink()),
        ));
        if let Some((tmp, target)) = self.target.take() {
            File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &target)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // Not committed: never leave partial (possibly unauthenticated) output behind.
        if let Some((tmp, _)) = &self.target {
            let _ = std::fs::remove_file(tmp);
        }
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
async fn stream_to_output(
    mut reader: Input,
    len: Option<u64>,
    out_path: Option<&Path>,
    transform: impl FnOnce(&mut Input, &mut Sink, &dyn Fn(u64)) -> Result<u64> + Send + 'static,
) -> Result<u64> {
    let mut output = Output::create(out_path)?;
    let bar = progress_bar(len);
    let progress = bar.clone();
    let (output, total) = tokio::task::spawn_blocking(move || -> Result<(Output, u64)> {
        let total = transform(&mut reader, &mut output.writer, &|n| {
            progress.set_position(n)
        })?;
        Ok((output, total))
    })
    .await??;
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
