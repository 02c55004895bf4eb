//! # kcm-keystore-example
//!
//! An example kcm keystore plugin: a file-backed keystore that speaks the
//! `kcm.keystore.v1` gRPC protocol (`proto/kcm/keystore/v1/plugin.proto`) on the
//! Unix socket kcm names in `KCM_PLUGIN_SOCKET`. It is written against the
//! protocol only and depends on no kcm crate, so it doubles as a template for
//! your own plugin. See `README.md` beside this crate and
//! `docs/keystore-plugins.md`.

mod keystore;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};
use zeroize::Zeroize;

use keystore::{Error, FileKeystore, Handle};
use proto::keystore_plugin_server::{KeystorePlugin, KeystorePluginServer};
use proto::*;

/// The generated protocol types.
#[allow(missing_docs, clippy::all)]
mod proto {
    tonic::include_proto!("kcm.keystore.v1");

    // Messages that carry plaintext erase it when they are dropped.
    impl Drop for ImportKeyRequest {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.material);
        }
    }
    impl Drop for WrapRequest {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.plaintext);
        }
    }
    impl Drop for UnwrapResponse {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.plaintext);
        }
    }
}

/// An example kcm keystore plugin: root keys in files, sealed under a key-encryption key.
///
/// kcm starts it with KCM_PLUGIN_SOCKET set; it listens there (gRPC, kcm.keystore.v1).
#[derive(Parser, Debug)]
#[command(name = "kcm-keystore-example", version)]
struct Args {
    /// Directory holding the key files (created with mode 0700 if missing).
    #[arg(long, env = "KCM_EXAMPLE_KEYSTORE_DIR")]
    dir: PathBuf,

    /// File holding the 32-byte key-encryption key: 32 raw bytes or 64 hex digits.
    /// Must be mode 0600 (owner only).
    #[arg(long, env = "KCM_EXAMPLE_KEYSTORE_KEK_FILE")]
    kek_file: PathBuf,

    /// Unix socket to listen on (kcm sets KCM_PLUGIN_SOCKET).
    #[arg(long, env = "KCM_PLUGIN_SOCKET")]
    socket: PathBuf,

    /// Refuse ImportKey (UNIMPLEMENTED) and report import = false.
    #[arg(long)]
    no_import: bool,

    /// Refuse ReferenceKey (UNIMPLEMENTED) and report reference = false.
    #[arg(long)]
    no_reference: bool,
}

struct Service {
    keystore: Arc<FileKeystore>,
    import: bool,
    reference: bool,
}

fn status(e: Error) -> Status {
    match e {
        Error::NotFound(m) => Status::not_found(m),
        Error::Disabled(m) => Status::failed_precondition(m),
        Error::Invalid(m) => Status::invalid_argument(m),
        Error::BadBlob => Status::invalid_argument("wrapped blob does not authenticate"),
        Error::Unavailable(m) => Status::unavailable(m),
        Error::Corrupt(m) => Status::internal(m),
    }
}

impl Service {
    /// Runs blocking file work off the async workers.
    async fn run<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&FileKeystore) -> keystore::Result<T> + Send + 'static,
    {
        let keystore = self.keystore.clone();
        tokio::task::spawn_blocking(move || f(&keystore))
            .await
            .map_err(|e| Status::internal(format!("keystore task failed: {e}")))?
            .map_err(status)
    }
}

fn handle(bytes: &[u8]) -> Result<Handle, Status> {
    Handle::parse(bytes).map_err(status)
}

#[tonic::async_trait]
impl KeystorePlugin for Service {
    async fn get_capabilities(
        &self,
        _: Request<GetCapabilitiesRequest>,
    ) -> Result<Response<GetCapabilitiesResponse>, Status> {
        Ok(Response::new(GetCapabilitiesResponse {
            generate: true,
            import: self.import,
            reference: self.reference,
            plugin_name: env!("CARGO_PKG_NAME").into(),
            plugin_version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        self.run(|ks| ks.health()).await?;
        Ok(Response::new(HealthResponse {}))
    }

    async fn create_key(
        &self,
        request: Request<CreateKeyRequest>,
    ) -> Result<Response<CreateKeyResponse>, Status> {
        let label = request.into_inner().label;
        let handle = self.run(move |ks| ks.create(&label)).await?;
        Ok(Response::new(CreateKeyResponse {
            handle: handle.to_bytes(),
        }))
    }

    async fn import_key(
        &self,
        request: Request<ImportKeyRequest>,
    ) -> Result<Response<ImportKeyResponse>, Status> {
        let mut request = request.into_inner();
        if !self.import {
            return Err(Status::unimplemented("this keystore does not import keys"));
        }
        let label = std::mem::take(&mut request.label);
        let material = zeroize::Zeroizing::new(std::mem::take(&mut request.material));
        let handle = self.run(move |ks| ks.import(&label, &material)).await?;
        Ok(Response::new(ImportKeyResponse {
            handle: handle.to_bytes(),
        }))
    }

    async fn reference_key(
        &self,
        request: Request<ReferenceKeyRequest>,
    ) -> Result<Response<ReferenceKeyResponse>, Status> {
        if !self.reference {
            return Err(Status::unimplemented(
                "this keystore does not reference keys",
            ));
        }
        let reference = request.into_inner().reference;
        let handle = self.run(move |ks| ks.reference(&reference)).await?;
        Ok(Response::new(ReferenceKeyResponse {
            handle: handle.to_bytes(),
        }))
    }

    async fn check_key(
        &self,
        request: Request<CheckKeyRequest>,
    ) -> Result<Response<CheckKeyResponse>, Status> {
        let h = handle(&request.into_inner().handle)?;
        self.run(move |ks| ks.check(&h)).await?;
        Ok(Response::new(CheckKeyResponse {}))
    }

    async fn enable_key(
        &self,
        request: Request<EnableKeyRequest>,
    ) -> Result<Response<EnableKeyResponse>, Status> {
        let h = handle(&request.into_inner().handle)?;
        self.run(move |ks| ks.set_enabled(&h, true)).await?;
        Ok(Response::new(EnableKeyResponse {}))
    }

    async fn disable_key(
        &self,
        request: Request<DisableKeyRequest>,
    ) -> Result<Response<DisableKeyResponse>, Status> {
        let h = handle(&request.into_inner().handle)?;
        self.run(move |ks| ks.set_enabled(&h, false)).await?;
        Ok(Response::new(DisableKeyResponse {}))
    }

    async fn destroy_key(
        &self,
        request: Request<DestroyKeyRequest>,
    ) -> Result<Response<DestroyKeyResponse>, Status> {
        // A handle that is not ours names no key of ours: nothing to destroy.
        let Ok(h) = Handle::parse(&request.into_inner().handle) else {
            return Ok(Response::new(DestroyKeyResponse {}));
        };
        self.run(move |ks| ks.destroy(&h)).await?;
        Ok(Response::new(DestroyKeyResponse {}))
    }

    async fn wrap(&self, request: Request<WrapRequest>) -> Result<Response<WrapResponse>, Status> {
        let mut request = request.into_inner();
        let h = handle(&request.handle)?;
        let plaintext = zeroize::Zeroizing::new(std::mem::take(&mut request.plaintext));
        let aad = std::mem::take(&mut request.aad);
        let wrapped = self.run(move |ks| ks.wrap(&h, &plaintext, &aad)).await?;
        Ok(Response::new(WrapResponse { wrapped }))
    }

    async fn unwrap(
        &self,
        request: Request<UnwrapRequest>,
    ) -> Result<Response<UnwrapResponse>, Status> {
        let mut request = request.into_inner();
        let h = handle(&request.handle)?;
        let wrapped = std::mem::take(&mut request.wrapped);
        let aad = std::mem::take(&mut request.aad);
        let mut plaintext = self.run(move |ks| ks.unwrap(&h, &wrapped, &aad)).await?;
        // Moved into the response, which erases it when dropped after encoding.
        let response = UnwrapResponse {
            plaintext: std::mem::take(&mut *plaintext),
        };
        plaintext.zeroize();
        Ok(Response::new(response))
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
}

fn bind(path: &std::path::Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    // A socket left behind by an earlier run is replaced; any other file is not.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
        } else {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict socket {}: {e}", path.display()))?;
    Ok(listener)
}

async fn run(args: Args) -> Result<(), String> {
    let kek = keystore::read_kek(&args.kek_file)?;
    let keystore = FileKeystore::open(&args.dir, &kek)?;
    drop(kek);
    let listener = bind(&args.socket)?;
    tracing::info!(
        socket = %args.socket.display(),
        dir = %args.dir.display(),
        "kcm-keystore-example listening"
    );
    let service = Service {
        keystore: Arc::new(keystore),
        import: !args.no_import,
        reference: !args.no_reference,
    };
    let served = tonic::transport::Server::builder()
        .add_service(KeystorePluginServer::new(service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown_signal())
        .await;
    let _ = std::fs::remove_file(&args.socket);
    served.map_err(|e| format!("gRPC server failed: {e}"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
