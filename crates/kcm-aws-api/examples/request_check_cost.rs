//! What reading an Encrypt request costs with the shape check (read as JSON, checked
//! against the operation's shape, moved into the operation's type) against reading
//! it straight into that type, as the door did before the check.
//!
//! `cargo run --release -p kcm-aws-api --example request_check_cost`
//!
//! Prints ns per request for 32 B and 4096 B plaintexts, each way, alternated over
//! five rounds; BENCHMARKS.md records the result.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use base64::Engine;
use kcm_aws_api::shape::{self, Request};
use kcm_core::authz::Op;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Encrypt's request as the operation reads it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Encrypt {
    key_id: String,
    #[serde(deserialize_with = "blob")]
    plaintext: Zeroizing<Vec<u8>>,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
    encryption_algorithm: Option<String>,
}

fn blob<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
    let text = Zeroizing::new(String::deserialize(d)?);
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(serde::de::Error::custom)
}

fn body(plaintext_len: usize) -> Vec<u8> {
    let plaintext = base64::engine::general_purpose::STANDARD.encode(vec![7u8; plaintext_len]);
    serde_json::to_vec(&serde_json::json!({
        "KeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "Plaintext": plaintext,
        "EncryptionContext": {"tenant": "t-42", "purpose": "bench"},
    }))
    .unwrap()
}

fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let shape = shape::of(Op::Encrypt);
    let n = 200_000;
    for len in [32, 4096] {
        let body = body(len);
        let (mut direct, mut checked) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            direct.push(time(n, || {
                let req: Encrypt = serde_json::from_slice(black_box(&body)).unwrap();
                black_box(req);
            }));
            checked.push(time(n, || {
                let req: Encrypt = Request::check(black_box(&body), shape)
                    .unwrap()
                    .parse()
                    .unwrap();
                black_box(req);
            }));
        }
        direct.sort_by(f64::total_cmp);
        checked.sort_by(f64::total_cmp);
        println!(
            "plaintext {len:>4} B: direct {:?} ns, checked {:?} ns; medians {:.0} / {:.0} ns (+{:.0} ns)",
            direct.iter().map(|t| t.round()).collect::<Vec<_>>(),
            checked.iter().map(|t| t.round()).collect::<Vec<_>>(),
            direct[2],
            checked[2],
            checked[2] - direct[2],
        );
    }
}
