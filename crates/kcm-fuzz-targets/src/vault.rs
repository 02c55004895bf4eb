//! The Vault-compatible API door (`kcm-vault`: [`route`], the body reader
//! [`Request`] and every field Transit and KV read, [`kcm_ciphertext`]), as a
//! client's request reaches them.
//!
//! The input is a request: its first line `METHOD PATH[?QUERY]`, the rest the body
//! (read also as a Kubernetes TokenReview answer, which the login reads).
//! The request is routed; the body is read as Transit reads it — a JSON object with
//! strings, base64, numbers, flags, a context and batch items, and ciphertexts in
//! Vault's form. What is accepted keeps its bounds: a key name is 1 to 128
//! characters an alias takes, a batch 1 to 1000 items, and a ciphertext's `v<N>` is
//! the version kcm's ciphertext inside names.

use kcm_core::crypto::CiphertextHeader;
use kcm_vault::kubernetes::service_account_of;
use kcm_vault::kv::{data_of, parse_duration_ms, settings_of, versions_of};
use kcm_vault::request::{Batch, Request};
use kcm_vault::route::{route, Mounts, Route};
use kcm_vault::transit::signing::{key_type_named, signature_bytes, Signing};
use kcm_vault::transit::{check_name, kcm_ciphertext};

/// The door's body limit, and a request line.
pub const MAX_LEN: usize = kcm_vault::MAX_BODY + 512;

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let (line, body) = crate::first_line(data);
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let Some((method, target)) = line.split_once(' ') else {
        return;
    };
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mounts = Mounts {
        transit: "transit".into(),
        kv: "secret".into(),
    };
    let Ok(route) = route(&method, path, query, &mounts) else {
        return;
    };
    if let Route::KvRead { path, .. } | Route::KvWrite(path) = &route {
        assert!(!path.is_empty());
    }
    if let Route::Encrypt(name) | Route::Decrypt(name) | Route::ReadKey(name) = &route {
        if check_name(name).is_ok() {
            assert!(!name.is_empty() && name.len() <= 128);
        }
    }
    // What a Kubernetes API server answers a TokenReview with is read too.
    if let Ok(review) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Ok(account) = service_account_of(&review) {
            assert!(!account.namespace.is_empty() && !account.name.contains(':'));
        }
    }
    let Ok(request) = Request::parse(body) else {
        return;
    };
    read(&request);
    if let Ok(Batch::Many(items)) = request.into_items() {
        assert!((1..=1000).contains(&items.len()));
        for item in &items {
            read(item);
        }
    }
}

/// Every field Transit reads from one item.
fn read(request: &Request) {
    for field in ["plaintext", "input", "context"] {
        let _ = request.base64(field);
    }
    for field in ["bits", "bytes", "key_version", "min_decryption_version"] {
        let _ = request.number(field);
    }
    for field in ["deletion_allowed", "exportable"] {
        let _ = request.flag(field);
    }
    let _ = request.context();
    for field in ["signature", "hmac", "role", "jwt"] {
        if let Ok(Some(text)) = request.text(field) {
            let _ = signature_bytes(text);
        }
    }
    if let Ok(Some(kind)) = request.text("type") {
        let _ = key_type_named(kind);
    }
    for spec in [
        kcm_core::keyspec::KeySpec::EccNistP384,
        kcm_core::keyspec::KeySpec::Rsa2048,
    ] {
        let _ = Signing::of(spec, request, None);
    }
    let _ = data_of(request);
    let _ = versions_of(request);
    let _ = settings_of(request);
    if let Ok(Some(options)) = request.object("options") {
        let _ = options.number("cas");
    }
    if let Ok(Some(text)) = request.text("delete_version_after") {
        if let Ok(ms) = parse_duration_ms(text) {
            assert!(ms >= 0 || text.starts_with('-'));
        }
    }
    if let Ok(Some(text)) = request.text("ciphertext") {
        if let Ok(blob) = kcm_ciphertext(text) {
            let version = CiphertextHeader::parse(&blob).map(|h| h.key_version);
            let shown = text
                .strip_prefix("vault:v")
                .and_then(|r| r.split_once(':'))
                .and_then(|(v, _)| v.parse::<u32>().ok());
            assert_eq!(version, shown, "the version shown is not the ciphertext's");
        }
    }
}
