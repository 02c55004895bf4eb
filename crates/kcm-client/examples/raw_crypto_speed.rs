//! The raw speed of the cryptography behind kcm's Sign, GenerateMac and Encrypt,
//! measured with aws-lc-rs directly (no kcm code): the ceiling kcm can reach on
//! this machine. Each operation runs on `--threads` threads (default: one per
//! core) for `--seconds`, on `--message-bytes`-byte messages (default 32), with
//! one key shared by all threads, as kcm shares a key between requests.
//!
//! ```text
//! cargo run --release -p kcm-client --example raw_crypto_speed -- [--seconds 3]
//!     [--threads N] [--message-bytes 32] [--json] [OPERATION ...]
//! ```
//!
//! OPERATION is any of the names printed (default: all of them).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::rand::{self, SystemRandom};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, PqdsaKeyPair, RsaKeyPair};
use aws_lc_rs::{hkdf, hmac, rsa};

/// One operation: its name, what it is, and a function that runs it once.
type Operation = (&'static str, &'static str, Box<dyn Fn(&[u8]) + Sync>);

fn operations() -> Vec<Operation> {
    let rng = SystemRandom::new();
    let ecdsa =
        EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).expect("P-256 key");
    let ed25519 = Ed25519KeyPair::generate().expect("Ed25519 key");
    let rsa = std::sync::Arc::new(RsaKeyPair::generate(rsa::KeySize::Rsa2048).expect("RSA key"));
    let rsa_pss = std::sync::Arc::clone(&rsa);
    let ml_dsa = PqdsaKeyPair::generate(&signature::ML_DSA_65_SIGNING).expect("ML-DSA key");
    let hmac_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("HMAC key");
    let mut version_key = [0u8; 32];
    rand::fill(&mut version_key).expect("random");
    vec![
        (
            "ecdsa-p256-sha256",
            "Sign ECC_NIST_P256 (ECDSA_SHA_256, ASN.1 DER)",
            Box::new(move |m: &[u8]| {
                black_box(ecdsa.sign(&SystemRandom::new(), m).expect("sign"));
            }),
        ),
        (
            "ed25519",
            "Sign ECC_NIST_EDWARDS25519 (ED25519_SHA_512)",
            Box::new(move |m: &[u8]| {
                black_box(ed25519.sign(m));
            }),
        ),
        (
            "rsa2048-pkcs1-sha256",
            "Sign RSA_2048 (RSASSA_PKCS1_V1_5_SHA_256)",
            Box::new(move |m: &[u8]| {
                let mut out = [0u8; 256];
                rsa.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), m, &mut out)
                    .expect("sign");
                black_box(out);
            }),
        ),
        (
            "rsa2048-pss-sha256",
            "Sign RSA_2048 (RSASSA_PSS_SHA_256)",
            Box::new(move |m: &[u8]| {
                let mut out = [0u8; 256];
                rsa_pss
                    .sign(&signature::RSA_PSS_SHA256, &SystemRandom::new(), m, &mut out)
                    .expect("sign");
                black_box(out);
            }),
        ),
        (
            "ml-dsa-65",
            "Sign ML_DSA_65 (ML_DSA_SHAKE_256)",
            Box::new(move |m: &[u8]| {
                let mut out = [0u8; 3309];
                black_box(ml_dsa.sign(m, &mut out).expect("sign"));
            }),
        ),
        (
            "hmac-sha256",
            "GenerateMac HMAC_256 (HMAC_SHA_256)",
            Box::new(move |m: &[u8]| {
                black_box(hmac::sign(&hmac_key, m));
            }),
        ),
        (
            "hkdf-aes-256-gcm",
            "Encrypt SYMMETRIC_DEFAULT's crypto: random salt and nonce, HKDF-SHA256, AES-256-GCM seal",
            Box::new(move |m: &[u8]| {
                let mut salt_nonce = [0u8; 44];
                rand::fill(&mut salt_nonce).expect("random");
                let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt_nonce[..32]).extract(&version_key);
                let mut derived = [0u8; 32];
                prk.expand(&[b"raw speed"], hkdf::HKDF_SHA256)
                    .and_then(|okm| okm.fill(&mut derived))
                    .expect("HKDF");
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &derived).expect("key"));
                let nonce = Nonce::try_assume_unique_for_key(&salt_nonce[32..]).expect("nonce");
                let mut buf = m.to_vec();
                key.seal_in_place_append_tag(nonce, Aad::empty(), &mut buf)
                    .expect("seal");
                black_box(buf);
            }),
        ),
    ]
}

/// Runs `op` on `threads` threads for `duration`; returns operations per second.
fn measure(op: &(dyn Fn(&[u8]) + Sync), threads: usize, duration: Duration, message: &[u8]) -> f64 {
    // Each thread checks the clock every BATCH operations, and counts its own time.
    const BATCH: u64 = 8;
    let start = Barrier::new(threads);
    let per_thread: Vec<(u64, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let begin = Instant::now();
                    let end = begin + duration;
                    let mut count = 0;
                    loop {
                        for _ in 0..BATCH {
                            op(black_box(message));
                        }
                        count += BATCH;
                        let now = Instant::now();
                        if now >= end {
                            return (count, now - begin);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    per_thread
        .iter()
        .map(|(count, took)| *count as f64 / took.as_secs_f64())
        .sum()
}

fn usage() -> ! {
    eprintln!(
        "usage: raw_crypto_speed [--seconds S (3)] [--threads N (cores)] [--message-bytes B (32)] [--json] [OPERATION ...]"
    );
    std::process::exit(2)
}

fn value<T: std::str::FromStr>(arg: Option<String>) -> T {
    arg.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage())
}

fn main() {
    let mut seconds = 3.0_f64;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut message_bytes = 32_usize;
    let mut json = false;
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = value(args.next()),
            "--threads" => threads = value(args.next()),
            "--message-bytes" => message_bytes = value(args.next()),
            "--json" => json = true,
            "-h" | "--help" => usage(),
            name if !name.starts_with('-') => only.push(name.to_owned()),
            _ => usage(),
        }
    }
    let threads = threads.max(1);
    let duration = Duration::from_secs_f64(seconds.max(0.1));
    let mut message = vec![0u8; message_bytes];
    rand::fill(&mut message).expect("random");
    let ops = operations();
    if let Some(unknown) = only
        .iter()
        .find(|n| !ops.iter().any(|(name, ..)| name == n))
    {
        eprintln!(
            "unknown operation {unknown}; known: {}",
            ops.iter().map(|o| o.0).collect::<Vec<_>>().join(", ")
        );
        std::process::exit(2);
    }
    if !json {
        println!(
            "aws-lc-rs raw speed: {threads} threads, {seconds} s per operation, {message_bytes}-byte messages"
        );
        println!(
            "{:<22}{:>12}{:>16}  what",
            "operation", "ops/s", "µs/op/thread"
        );
    }
    let mut results = Vec::new();
    for (name, what, op) in &ops {
        if !only.is_empty() && !only.iter().any(|n| n == name) {
            continue;
        }
        let rate = measure(op.as_ref(), threads, duration, &message);
        let us_per_op = threads as f64 * 1e6 / rate;
        if !json {
            println!("{name:<22}{rate:>12.0}{us_per_op:>16.2}  {what}");
        }
        results.push(serde_json::json!({
            "operation": name, "what": what, "ops_per_sec": rate, "us_per_op_per_thread": us_per_op,
        }));
    }
    if json {
        let report = serde_json::json!({
            "threads": threads, "seconds": seconds, "message_bytes": message_bytes, "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    }
}
