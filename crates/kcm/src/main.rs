//! `kcm`: the key chain manager — server (`kcm serve`) and command-line client.
//!
//! `main` parses, runs, and maps errors to an exit code; nothing else happens here.
//! The server is the `kcm-server` library; `cli` turns each command's flags into a
//! call on it or on a client.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process (server, CLI client, XKS
    // client): aws-lc-rs. Fails only if one is already installed, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
