//! The XKS proxy API door (`kcm-xks-server`: [`route`] and the [`wire`] parsers) and
//! kcm's XKS ciphertext fields
//! (`kcm-core` [`xks::open`]), as AWS KMS's requests reach them once signed.
//!
//! The input is a request: its first line the URI path, the rest the body. The path
//! is routed; the body is parsed as the routed call's body. What parses keeps the
//! specification's bounds (IV of 12 or 16 bytes, a 16-byte tag, metadata of at most
//! 20 bytes, ARNs of at most 2048 characters), and a Decrypt's fields are opened
//! with a fixed key: only what that key sealed could open, so every input fails
//! cleanly.

use kcm_core::model::KeyId;
use kcm_core::secret::SecretBytes;
use kcm_core::xks;
use kcm_xks_server::route::{route, Route};
use kcm_xks_server::wire;

/// The door's body limit, and a path line.
pub const MAX_LEN: usize = kcm_xks_server::MAX_BODY + 512;

const PREFIX: &str = "/fuzz";

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let (path, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let route = match route(PREFIX, path) {
        Ok(route) => route,
        Err(e) => {
            assert_eq!(e.name(), "InvalidUriPathException");
            return;
        }
    };
    match route {
        Route::Health => {
            let _ = wire::health_metadata(body);
        }
        Route::Key { op, key_id } => {
            if let Ok(id) = &key_id {
                assert!(!id.is_empty() && id.len() <= 128);
            }
            match op {
                kcm_core::authz::Op::XksGetKeyMetadata => {
                    if let Ok(m) = wire::metadata_request(body) {
                        arns_bounded(&m);
                    }
                }
                kcm_core::authz::Op::XksEncrypt => {
                    if let Ok(r) = wire::encrypt_request(body) {
                        arns_bounded(&r.metadata);
                    }
                }
                kcm_core::authz::Op::XksDecrypt => {
                    if let Ok(r) = wire::decrypt_request(body) {
                        arns_bounded(&r.metadata);
                        decrypt(&r);
                    }
                }
                other => panic!("routed to {other}, which is no XKS key operation"),
            }
        }
    }
}

fn arns_bounded(m: &wire::RequestMetadata<'_>) {
    for arn in [&m.aws_principal_arn, &m.kms_key_arn].into_iter().flatten() {
        assert!(arn.chars().count() <= wire::MAX_ARN);
    }
}

/// Opens a parsed Decrypt with a fixed key: it must fail, without panicking.
fn decrypt(r: &wire::DecryptRequest<'_>) {
    let sealed = r.sealed();
    assert!(sealed.iv.len() == 12 || sealed.iv.len() == 16);
    assert_eq!(sealed.tag.len(), xks::TAG_LEN);
    assert!(sealed.metadata.len() <= xks::MAX_METADATA);
    let key = SecretBytes::new(vec![0x5a; 32]);
    let id = KeyId(uuid::Uuid::from_u128(0x5a));
    assert!(xks::open(&key, id, sealed, &r.aad).is_err());
}
