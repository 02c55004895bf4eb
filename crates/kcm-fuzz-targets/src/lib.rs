//! The bodies of kcm's fuzz targets: one function per parser of untrusted bytes.
//!
//! Each function takes any bytes and must return without panicking, without
//! allocating without bound, and without breaking the property its documentation
//! states (a round trip, a size limit, no server error for a malformed request).
//! Two callers run them: the cargo-fuzz targets in `fuzz/` (libFuzzer, coverage
//! guided; `scripts/fuzz`), and this crate's test `tests/corpus.rs`, which replays
//! every file committed under `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! on the stable toolchain, so `cargo test --workspace` keeps every input the
//! fuzzers found interesting, and every crash they found, passing.
//!
//! The seed inputs that are not copies of the project's fixtures are written by
//! `cargo run -p kcm-fuzz-targets --example seeds` (see `examples/seeds.rs`).

pub mod aead_stream;
pub mod audit_export;
pub mod aws_json;
pub mod backup_archive;
pub mod barbican;
pub mod byok;
pub mod ciphertext;
pub mod envelope;
pub mod k8s_kms;
pub mod key_policy;
pub mod kmip_ttlv;
pub mod sigv4;
pub mod vault;
pub mod xks;

use std::sync::OnceLock;

/// A fuzz target: its name (the directory of its corpus and the cargo-fuzz target)
/// and its body.
pub struct Target {
    /// The name, as in `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// The largest input worth trying: the limit of the door or format the parser
    /// serves (libFuzzer's `-max_len`).
    pub max_len: usize,
}

/// Every target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "sigv4",
        run: sigv4::run,
        max_len: sigv4::MAX_LEN,
    },
    Target {
        name: "aws_json",
        run: aws_json::run,
        max_len: aws_json::MAX_LEN,
    },
    Target {
        name: "ciphertext",
        run: ciphertext::run,
        max_len: ciphertext::MAX_LEN,
    },
    Target {
        name: "aead_stream",
        run: aead_stream::run,
        max_len: aead_stream::MAX_LEN,
    },
    Target {
        name: "backup_archive",
        run: backup_archive::run,
        max_len: backup_archive::MAX_LEN,
    },
    Target {
        name: "envelope",
        run: envelope::run,
        max_len: envelope::MAX_LEN,
    },
    Target {
        name: "audit_export",
        run: audit_export::run,
        max_len: audit_export::MAX_LEN,
    },
    Target {
        name: "key_policy",
        run: key_policy::run,
        max_len: key_policy::MAX_LEN,
    },
    Target {
        name: "byok",
        run: byok::run,
        max_len: byok::MAX_LEN,
    },
    Target {
        name: "barbican",
        run: barbican::run,
        max_len: barbican::MAX_LEN,
    },
    Target {
        name: "k8s_kms",
        run: k8s_kms::run,
        max_len: k8s_kms::MAX_LEN,
    },
    Target {
        name: "xks",
        run: xks::run,
        max_len: xks::MAX_LEN,
    },
    Target {
        name: "kmip_ttlv",
        run: kmip_ttlv::run,
        max_len: kmip_ttlv::MAX_LEN,
    },
    Target {
        name: "vault",
        run: vault::run,
        max_len: vault::MAX_LEN,
    },
];

/// The one runtime the async targets block on (single-threaded: a fuzzer runs one
/// input at a time).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Splits `data` at its first newline: (the line, the rest). Targets whose input
/// names what to do on a first line use it, so that seeds stay readable.
pub(crate) fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
