//! The command line: `kcm serve` (flags over the settings, then
//! [`kcm_server::launch`]), `kcm restore` (likewise, then [`kcm_server::restore`])
//! and the client commands.

mod audit;
mod backup;
mod bench;
mod client;
mod envelope;
mod kms_plugin;
mod manage;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use kcm_server::{Listen, Settings};

/// kcm — the key chain manager: a self-hosted key management service.
///
/// Run `kcm serve` to start the server; every other command is a client of a
/// running server (by default http://127.0.0.1:8990, with the credentials in
/// ./kcm-data/credentials).
#[derive(Parser, Debug)]
#[command(name = "kcm", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    client: ClientOptions,
    #[command(subcommand)]
    command: Command,
}

/// Options every client command takes (accepted before or after the command).
#[derive(Args, Debug, Clone)]
pub struct ClientOptions {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "KCM_ENDPOINT",
        default_value = "http://127.0.0.1:8990"
    )]
    pub endpoint: String,
    /// Profile in the credentials file.
    #[arg(long, global = true, env = "KCM_PROFILE", default_value = "default")]
    pub profile: String,
    /// Credentials file (AWS shared-credentials format). Default: $KCM_CREDENTIALS_FILE,
    /// $AWS_SHARED_CREDENTIALS_FILE, or ./kcm-data/credentials.
    #[arg(long, global = true)]
    pub credentials_file: Option<PathBuf>,
    /// Region used to sign requests.
    #[arg(long, global = true, env = "KCM_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = output::Format::Text)]
    pub output: output::Format,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Service keys (the "KMS keys" of the AWS API).
    Key(manage::KeyArgs),
    /// Aliases of service keys.
    Alias(manage::AliasArgs),
    /// Tenants (system-admin).
    Tenant(manage::TenantArgs),
    /// Access keys of your tenant.
    #[command(name = "access-key")]
    AccessKey(manage::AccessKeyArgs),
    /// Systems of your tenant.
    System(manage::SystemArgs),
    /// Root keys of your tenant, and the kill switch.
    RootKey(manage::RootKeyArgs),
    /// Your tenant's keychain.
    Keychain(manage::KeychainArgs),
    /// The tamper-evident audit log: export it, verify it.
    Audit(audit::AuditArgs),
    /// Encrypt a file or stdin with a fresh data key (envelope encryption, streamed).
    Encrypt(envelope::EncryptArgs),
    /// Decrypt a file or stdin made by `kcm encrypt`.
    Decrypt(envelope::DecryptArgs),
    /// Download an encrypted backup archive of the whole store from a running server
    /// (system-admin: `kcm --profile system-admin backup -o FILE`).
    Backup(backup::BackupArgs),
    /// Restore a backup archive into a new data directory, or into an empty
    /// PostgreSQL database when KCM_DATABASE_URL is set (offline; needs the master
    /// key or passphrase of the server that made it).
    Restore(backup::RestoreArgs),
    /// Run the Kubernetes KMS v2 plugin: a gRPC server on a Unix socket that the
    /// API server calls to encrypt its secrets' seeds under a kcm key.
    ///
    /// The plugin listens on --socket (mode 0600) for the Kubernetes API server's
    /// KMS v2 calls (Status, Encrypt, Decrypt) and encrypts the API server's seeds
    /// under one kcm key, calling the kcm server at --endpoint with the access key
    /// in --credentials-file (mode 0600 required). Give the plugin an access key
    /// scoped to the cluster's system and to Encrypt, Decrypt and DescribeKey. Every
    /// ciphertext is bound to --cluster. Over HTTPS it trusts the system's CA
    /// certificates, or those in the file SSL_CERT_FILE names. See README,
    /// "Kubernetes".
    #[command(name = "kms-plugin")]
    KmsPlugin(kms_plugin::KmsPluginArgs),
    /// Load generator: drive Encrypt, Decrypt, GenerateDataKey, Sign or GenerateMac and
    /// report throughput and latency percentiles.
    Bench(bench::BenchArgs),
    /// Serve a minimal HTTP server that answers every POST with a fixed 200 body
    /// (the baseline `kcm bench` compares kcm with).
    #[command(hide = true)]
    BenchBaseline(bench::BaselineArgs),
}

/// Arguments of `kcm serve`.
#[derive(Args, Debug)]
struct ServeArgs {
    /// Data directory (embedded store, software keystore, credentials file): made
    /// mode 0700 if new, refused if group or others can enter it, and locked against
    /// a second server while this one runs.
    #[arg(long, env = "KCM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (host:port). Without TLS only a loopback address, unless
    /// allow_plain_http = true (KCM_ALLOW_PLAIN_HTTP).
    #[arg(long, env = "KCM_LISTEN")]
    listen: Option<String>,
    /// TOML configuration file (see README for every key).
    #[arg(long, env = "KCM_CONFIG")]
    config: Option<PathBuf>,
    /// File holding the software keystore's passphrase (readable by its owner only;
    /// one line); also KCM_MASTER_PASSPHRASE_FILE, keystore.passphrase_file, or the
    /// systemd credential kcm-master-passphrase. Better than KCM_MASTER_PASSPHRASE,
    /// which stays readable in /proc/PID/environ while kcm runs.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Runs a management command: the clients are built from the common options first
/// (a command without credentials fails before it sends anything).
fn with_clients(
    opts: &ClientOptions,
    command: impl AsyncFnOnce(&client::Clients, output::Format) -> Result<()>,
) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let clients = client::Clients::new(opts)?;
        command(&clients, opts.output).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let mut settings = Settings::load(args.config.as_deref())?;
            if let Some(d) = args.data_dir {
                settings.data_dir = d;
            }
            if let Some(l) = args.listen {
                settings.listen = l;
            }
            if let Some(f) = args.passphrase_file {
                settings.keystore.passphrase_file = Some(f);
            }
            settings.validate()?;
            kcm_server::init_logging(&settings.log, &settings.log_format)?;
            let shutdown = kcm_server::shutdown_signal();
            runtime()?.block_on(kcm_server::launch(settings, Listen::Configured, shutdown))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(c) => with_clients(&cli.client, async |s, f| c.run(s, f).await),
        Command::Alias(c) => with_clients(&cli.client, async |s, f| c.run(s, f).await),
        Command::Tenant(c) => with_clients(&cli.client, async |s, f| c.run(s, f).await),
        Command::AccessKey(c) => with_clients(&cli.client, async |s, f| c.run(s, f).await),
        Command::System(c) => with_clients(&cli.client, async |s, f| c.run(s, f).await),
        Command::RootKey(c) => with_clients(&cli.client, async |s, f| c.run(s, f).await),
        Command::Keychain(c) => with_clients(&cli.client, async |s, f| c.run(s, f).await),
        Command::Audit(c) => runtime()?.block_on(c.run(&cli.client)),
        Command::Encrypt(a) => runtime()?.block_on(a.run(&cli.client)),
        Command::Decrypt(a) => runtime()?.block_on(a.run(&cli.client)),
        Command::Backup(a) => runtime()?.block_on(a.run(&cli.client)),
        Command::Restore(a) => runtime()?.block_on(a.run(cli.client.output)),
        Command::KmsPlugin(a) => runtime()?.block_on(a.run(&cli.client)),
        Command::Bench(a) => runtime()?.block_on(a.run(&cli.client)),
        Command::BenchBaseline(a) => runtime()?.block_on(a.run()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn client_options_go_before_or_after_the_command() {
        for args in [
            vec![
                "kcm",
                "--endpoint",
                "http://x:1",
                "--output",
                "json",
                "key",
                "list",
            ],
            vec![
                "kcm",
                "key",
                "list",
                "--endpoint",
                "http://x:1",
                "--output",
                "json",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.client.endpoint, "http://x:1");
            assert_eq!(cli.client.output, output::Format::Json);
        }
        let cli = Cli::try_parse_from(["kcm", "encrypt", "--key-id", "k", "-o", "f.kcm"]).unwrap();
        assert!(matches!(cli.command, Command::Encrypt(_)));
        let cli =
            Cli::try_parse_from(["kcm", "--profile", "system-admin", "backup", "-o", "b"]).unwrap();
        assert!(matches!(cli.command, Command::Backup(_)));
        assert_eq!(cli.client.profile, "system-admin");
        let cli =
            Cli::try_parse_from(["kcm", "restore", "--input", "b", "--data-dir", "d"]).unwrap();
        assert!(matches!(cli.command, Command::Restore(_)));
    }
}
