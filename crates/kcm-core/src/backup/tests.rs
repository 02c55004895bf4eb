//! The archive format against a small in-memory keystore: round trip, and refusal
//! of every single-byte change, every truncation, appended bytes, reordered
//! chunks, header edits, and the wrong keystore.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::crypto;
use crate::keystore::{Capabilities, KeystoreResult};
use crate::lifecycle::Lifecycle;
use crate::model::{RootKeyId, RootKeyOrigin};
use crate::store::{TableDump, Value};
use kcm_aead_stream::TAG_LEN;

/// Root keys are random keys sealed under this keystore's own master key.
struct TestKeystore {
    master: SecretBytes,
}

impl TestKeystore {
    fn new() -> Self {
        Self {
            master: SecretBytes::random(KEY_LEN),
        }
    }

    fn root(&self, handle: &[u8]) -> KeystoreResult<SecretBytes> {
        crypto::open(&self.master, handle, b"test-root")
            .map_err(|_| KeystoreError::KeyUnusable("not a root key of this keystore".into()))
    }
}

#[async_trait]
impl KeystoreProvider for TestKeystore {
    fn kind(&self) -> &'static str {
        "test"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            generate: true,
            import: false,
            reference: false,
        }
    }

    async fn health(&self) -> KeystoreResult<()> {
        Ok(())
    }

    async fn create_root_key(&self, _label: &str) -> KeystoreResult<Vec<u8>> {
        let key = SecretBytes::random(KEY_LEN);
        Ok(crypto::seal(
            &self.master,
            key.expose_secret(),
            b"test-root",
        ))
    }

    async fn wrap(
        &self,
        handle: &[u8],
        plaintext: &SecretBytes,
        aad: &[u8],
    ) -> KeystoreResult<Vec<u8>> {
        Ok(crypto::seal(
            &self.root(handle)?,
            plaintext.expose_secret(),
            aad,
        ))
    }

    async fn unwrap(
        &self,
        handle: &[u8],
        wrapped: &[u8],
        aad: &[u8],
    ) -> KeystoreResult<SecretBytes> {
        crypto::open(&self.root(handle)?, wrapped, aad).map_err(|_| KeystoreError::UnwrapFailed)
    }

    async fn destroy(&self, _handle: &[u8]) -> KeystoreResult<()> {
        Ok(())
    }

    fn recovery_parameters(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({"salt": "not secret"}))
    }
}

fn snapshot(rows: usize) -> Snapshot {
    Snapshot {
        schema_version: 3,
        tables: vec![
            TableDump {
                name: "keys".into(),
                columns: vec!["id".into(), "wrapped".into(), "note".into()],
                rows: (0..rows)
                    .map(|i| {
                        vec![
                            Value::Integer(i as i64),
                            Value::Blob((0..=255u8).map(|b| b.wrapping_add(i as u8)).collect()),
                            if i % 3 == 0 {
                                Value::Null
                            } else {
                                Value::Text(format!("ünïcødé \"{i}\""))
                            },
                        ]
                    })
                    .collect(),
            },
            TableDump {
                name: "meta".into(),
                columns: vec!["key".into(), "value".into()],
                rows: vec![vec![Value::Text("k".into()), Value::Text("v".into())]],
            },
            TableDump {
                name: "empty".into(),
                columns: vec!["x".into()],
                rows: vec![],
            },
        ],
    }
}

struct Setup {
    keystores: HashMap<String, Arc<dyn KeystoreProvider>>,
    root: RootKeyRecord,
}

async fn setup() -> Setup {
    let keystore = TestKeystore::new();
    let handle = keystore.create_root_key("root").await.unwrap();
    let root = RootKeyRecord {
        id: RootKeyId::new_random(),
        tenant_id: None,
        keystore: "primary".into(),
        handle,
        origin: RootKeyOrigin::Generated,
        lifecycle: Lifecycle::active(),
        description: String::new(),
        created_at: 1,
    };
    let mut keystores: HashMap<String, Arc<dyn KeystoreProvider>> = HashMap::new();
    keystores.insert("primary".into(), Arc::new(keystore));
    Setup { keystores, root }
}

/// An archive of `snap` with small chunks, so a few KiB span many chunks.
async fn archive(s: &Setup, snap: &Snapshot, chunk_size: u32) -> Vec<u8> {
    let keystore = s.keystores["primary"].as_ref();
    let (header, key) = seal_archive_key(snap, &s.root, keystore, 1_700_000_000_000)
        .await
        .unwrap();
    let mut out = Vec::new();
    let written = write_chunked(&mut out, header, &key, snap, chunk_size).unwrap();
    assert_eq!(written, out.len() as u64);
    out
}

async fn read(s: &Setup, bytes: &[u8]) -> Result<(ArchiveHeader, Snapshot), BackupError> {
    ArchiveReader::open(bytes)?
        .read_snapshot(&s.keystores)
        .await
}

/// Offset of the first chunk: magic, length, header JSON, checksum.
fn body_start(bytes: &[u8]) -> usize {
    let len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    12 + len + CHECKSUM_LEN
}

#[tokio::test]
async fn round_trip_small_and_multi_chunk() {
    let s = setup().await;
    for (rows, chunk_size) in [
        (0, CHUNK_SIZE),
        (5, CHUNK_SIZE),
        (400, CHUNK_SIZE),
        (20, 64),
    ] {
        let snap = snapshot(rows);
        let bytes = archive(&s, &snap, chunk_size).await;
        assert!(bytes.starts_with(MAGIC));
        let (header, back) = read(&s, &bytes).await.unwrap();
        assert_eq!(back, snap, "rows {rows}");
        assert_eq!(header.format, FORMAT_VERSION);
        assert_eq!(header.schema_version, 3);
        assert_eq!(header.tables["keys"], rows as u64);
        assert_eq!(header.tables["meta"], 1);
        assert_eq!(header.tables["empty"], 0);
        assert_eq!(header.keystore, "primary");
        assert_eq!(header.keystore_kind, "test");
        assert_eq!(header.root_key_id, s.root.id.to_string());
        assert_eq!(header.root_key_handle, s.root.handle);
        assert_eq!(
            header.keystore_parameters,
            Some(serde_json::json!({"salt": "not secret"}))
        );
        assert_eq!(header.kcm_version, env!("CARGO_PKG_VERSION"));
    }
}

#[tokio::test]
async fn a_payload_that_fills_whole_chunks_ends_with_an_empty_chunk() {
    let s = setup().await;
    let snap = snapshot(3);
    let json_len = serde_json::to_vec(&snap).unwrap().len() as u32;
    for chunk_size in [json_len, json_len / 2 + json_len % 2] {
        let bytes = archive(&s, &snap, chunk_size).await;
        let (header, back) = read(&s, &bytes).await.unwrap();
        assert_eq!(back, snap);
        assert_eq!(header.payload_len, u64::from(json_len));
    }
}

#[tokio::test]
async fn the_archive_is_encrypted() {
    let s = setup().await;
    let snap = snapshot(10);
    let bytes = archive(&s, &snap, CHUNK_SIZE).await;
    let body = &bytes[body_start(&bytes)..];
    for needle in [&b"\"keys\""[..], b"ilnRdPIM", b"unicode", b"meta"] {
        assert!(!body.windows(needle.len()).any(|w| w == needle));
    }
    let blob = (0..=255u8).collect::<Vec<_>>();
    assert!(!bytes.windows(32).any(|w| w == &blob[..32]));
}

#[tokio::test]
async fn every_single_byte_change_is_refused() {
    let s = setup().await;
    let bytes = archive(&s, &snapshot(12), 128).await;
    let body = body_start(&bytes);
    assert!(
        bytes.len() - body > 6 * 128,
        "the test needs several chunks"
    );
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut changed = bytes.clone();
            changed[i] ^= flip;
            match read(&s, &changed).await {
                Ok(_) => panic!("a change of byte {i} (^{flip:#x}) was accepted"),
                Err(BackupError::Modified(msg)) if i >= body => {
                    assert!(msg.contains("failed authentication"), "byte {i}: {msg}")
                }
                Err(e) if i >= body => panic!("byte {i} in the body gave {e}"),
                Err(_) => {}
            }
        }
    }
}

#[tokio::test]
async fn every_truncation_is_refused_as_truncated() {
    let s = setup().await;
    let bytes = archive(&s, &snapshot(8), 100).await;
    for len in 0..bytes.len() {
        match read(&s, &bytes[..len]).await {
            Err(BackupError::Truncated(_)) => {}
            other => panic!("truncation to {len} bytes: expected Truncated, got {other:?}"),
        }
    }
    let e = read(&s, &bytes[..bytes.len() - 1]).await.unwrap_err();
    assert!(e.to_string().starts_with("the archive is truncated"), "{e}");
}

#[tokio::test]
async fn appended_bytes_are_refused() {
    let s = setup().await;
    let bytes = archive(&s, &snapshot(8), 100).await;
    let tail = bytes[bytes.len() - 116..].to_vec();
    for extra in [vec![0u8], vec![0xAA; 16], tail] {
        let mut longer = bytes.clone();
        longer.extend_from_slice(&extra);
        match read(&s, &longer).await {
            Err(BackupError::Modified(msg)) => assert!(msg.contains("after its final chunk")),
            other => panic!("{} appended bytes: got {other:?}", extra.len()),
        }
    }
}

#[tokio::test]
async fn reordered_and_dropped_chunks_are_refused() {
    let s = setup().await;
    let chunk = 100usize;
    let bytes = archive(&s, &snapshot(8), chunk as u32).await;
    let start = body_start(&bytes);
    let sealed = chunk + TAG_LEN;
    let (head, body) = bytes.split_at(start);
    let chunks: Vec<&[u8]> = body.chunks(sealed).collect();
    assert!(chunks.len() >= 4);
    // Swap chunks 1 and 2.
    let mut swapped = chunks.clone();
    swapped.swap(1, 2);
    let joined = [head, &swapped.concat()].concat();
    match read(&s, &joined).await {
        Err(BackupError::Modified(msg)) => assert!(msg.contains("chunk 1 "), "{msg}"),
        other => panic!("swapped chunks: {other:?}"),
    }
    // Drop chunk 1 (the archive is then short).
    let mut dropped = chunks.clone();
    dropped.remove(1);
    let joined = [head, &dropped.concat()].concat();
    assert!(read(&s, &joined).await.is_err());
    // Duplicate the final chunk in place of the one before it.
    let mut dup = chunks.clone();
    let n = dup.len();
    dup[n - 2] = chunks[n - 1];
    let joined = [head, &dup.concat()].concat();
    assert!(read(&s, &joined).await.is_err());
}

/// Edits the header JSON text and recomputes length and checksum, as an attacker
/// could: `edit` gets the parsed header and returns (old text, new text) to replace.
fn with_header(bytes: &[u8], edit: impl FnOnce(&ArchiveHeader) -> (String, String)) -> Vec<u8> {
    let len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let text = std::str::from_utf8(&bytes[12..12 + len]).unwrap();
    let header: ArchiveHeader = serde_json::from_str(text).unwrap();
    let (from, to) = edit(&header);
    assert_eq!(text.matches(&from).count(), 1, "{from} in {text}");
    let json = text.replace(&from, &to);
    let mut raw = MAGIC.to_vec();
    raw.extend_from_slice(&(json.len() as u32).to_be_bytes());
    raw.extend_from_slice(json.as_bytes());
    let sum = checksum(&raw);
    [&raw[..], sum.as_ref(), &bytes[12 + len + CHECKSUM_LEN..]].concat()
}

/// An edit of the header text: (old, new).
type HeaderEdit = fn(&ArchiveHeader) -> (String, String);

fn field(name: &str, value: impl std::fmt::Display) -> String {
    format!("\"{name}\":{value}")
}

#[tokio::test]
async fn header_edits_with_a_recomputed_checksum_are_refused() {
    let s = setup().await;
    let bytes = archive(&s, &snapshot(8), 100).await;
    // A no-op edit still reads (the helper itself is sound).
    let same = with_header(&bytes, |h| {
        let f = field("format", h.format);
        (f.clone(), f)
    });
    assert_eq!(same, bytes);
    // Row counts, kcm version, keystore parameters: associated data of every chunk.
    let edits: [HeaderEdit; 3] = [
        |_| (field("keys", 8), field("keys", 9)),
        |h| {
            let v = format!("\"{}\"", h.kcm_version);
            (field("kcm_version", &v), field("kcm_version", "\"9.9.9\""))
        },
        |_| ("\"not secret\"".into(), "\"edited\"".into()),
    ];
    for edit in edits {
        match read(&s, &with_header(&bytes, edit)).await {
            Err(BackupError::Modified(msg)) => assert!(msg.contains("chunk 0 "), "{msg}"),
            other => panic!("header edit accepted or misreported: {other:?}"),
        }
    }
    // Archive id, creation time: bound into the archive key's wrapping.
    let edits: [HeaderEdit; 2] = [
        |h| {
            let id = format!("\"{}\"", h.archive_id);
            (field("archive_id", id), field("archive_id", "\"x\""))
        },
        |h| (field("created_at", h.created_at), field("created_at", 5)),
    ];
    for edit in edits {
        assert!(matches!(
            read(&s, &with_header(&bytes, edit)).await,
            Err(BackupError::WrongKeystore(_))
        ));
    }
    // Another announced payload length (chunk 0 then fails: the header is its AAD).
    let longer = with_header(&bytes, |h| {
        (
            field("payload_len", h.payload_len),
            field("payload_len", h.payload_len + 1000),
        )
    });
    assert!(read(&s, &longer).await.is_err());
    let shorter = with_header(&bytes, |h| {
        (
            field("payload_len", h.payload_len),
            field("payload_len", h.payload_len - 1),
        )
    });
    assert!(read(&s, &shorter).await.is_err());
    // Another format version.
    let newer = with_header(&bytes, |_| (field("format", 1), field("format", 2)));
    assert!(matches!(
        read(&s, &newer).await,
        Err(BackupError::UnsupportedFormat(2))
    ));
}

/// Found by the `backup_archive` fuzz target: content that names a table twice
/// (or has rows of the wrong width) is authenticated but not a snapshot any store
/// wrote; the header's per-table counts cannot vouch for it.
#[tokio::test]
async fn content_with_a_table_twice_or_a_ragged_row_is_refused() {
    let s = setup().await;
    let mut twice = snapshot(2);
    twice.tables.push(twice.tables[1].clone());
    let err = read(&s, &archive(&s, &twice, 64).await).await.unwrap_err();
    assert!(
        err.to_string().contains("names table \"meta\" twice"),
        "{err}"
    );

    let mut ragged = snapshot(2);
    ragged.tables[0].rows[1].pop();
    let err = read(&s, &archive(&s, &ragged, 64).await).await.unwrap_err();
    assert!(
        err.to_string().contains("has 2 cells for 3 columns"),
        "{err}"
    );
}

#[tokio::test]
async fn the_wrong_keystore_is_refused_with_a_clear_error() {
    let s = setup().await;
    let bytes = archive(&s, &snapshot(4), CHUNK_SIZE).await;
    // Same keystore name, another master key.
    let other = setup().await;
    let e = read(&other, &bytes).await.unwrap_err();
    assert!(matches!(e, BackupError::WrongKeystore(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("the archive was made with a different keystore/master key"),
        "{e}"
    );
    // No keystore of that name at all.
    let mut renamed = setup().await;
    let ks = renamed.keystores.remove("primary").unwrap();
    renamed.keystores.insert("elsewhere".into(), ks);
    let e = read(&renamed, &bytes).await.unwrap_err();
    assert!(e.to_string().contains("\"primary\""), "{e}");
    assert!(e.to_string().contains("elsewhere"), "{e}");
}

#[tokio::test]
async fn other_files_are_not_archives() {
    let s = setup().await;
    for junk in [
        &b"KCMENV1\0 an envelope"[..],
        b"{\"json\": true}",
        b"\x00\x01",
    ] {
        assert!(matches!(
            read(&s, junk).await,
            Err(BackupError::NotAnArchive)
        ));
    }
    let e = read(&s, b"").await.unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[tokio::test]
async fn create_archive_uses_full_chunks() {
    let s = setup().await;
    let snap = snapshot(400);
    let bytes = create_archive(
        snap.clone(),
        &s.root,
        s.keystores["primary"].as_ref(),
        1_700_000_000_000,
    )
    .await
    .unwrap();
    let (header, back) = read(&s, &bytes).await.unwrap();
    assert_eq!(back, snap);
    assert_eq!(header.chunk_size, CHUNK_SIZE);
    assert!(header.payload_len > u64::from(CHUNK_SIZE));
    assert_eq!(header.created_at, 1_700_000_000_000);
}

/// An archive written by the code before the chunk stream moved to kcm-aead-stream:
/// `snapshot(1)` in 64-byte chunks under the archive key [`VECTOR_ARCHIVE_KEY`],
/// nonce prefix a0..a6, wrapped by a [`TestKeystore`] whose master key is
/// [`VECTOR_MASTER_KEY`]. Archives already on disk must keep opening, and this build
/// must write the same bytes from the same inputs.
const V1_CHUNK64: &[u8] = include_bytes!("testdata/v1-chunk64.kcmbak");
const VECTOR_MASTER_KEY: [u8; 32] = [0x11; 32];
const VECTOR_ARCHIVE_KEY: [u8; 32] = [0x22; 32];

fn vector_keystores() -> HashMap<String, Arc<dyn KeystoreProvider>> {
    let keystore = TestKeystore {
        master: SecretBytes::copy_from(&VECTOR_MASTER_KEY),
    };
    HashMap::from([(
        "primary".to_string(),
        Arc::new(keystore) as Arc<dyn KeystoreProvider>,
    )])
}

#[tokio::test]
async fn an_archive_written_by_an_earlier_build_still_opens() {
    let keystores = vector_keystores();
    let archive = ArchiveReader::open(V1_CHUNK64).unwrap();
    let header = archive.header().clone();
    assert_eq!(header.chunk_size, 64);
    assert_eq!(header.nonce_prefix, "a0a1a2a3a4a5a6");
    assert_eq!(
        archive
            .unwrap_key(&keystores)
            .await
            .unwrap()
            .expose_secret(),
        VECTOR_ARCHIVE_KEY
    );
    let (read_header, back) = archive.read_snapshot(&keystores).await.unwrap();
    assert_eq!(read_header, header);
    assert_eq!(back, snapshot(1));
    assert!(
        header.payload_len > 8 * 64,
        "the vector spans several chunks"
    );
}

#[test]
fn this_build_writes_the_bytes_an_earlier_build_wrote() {
    let header = ArchiveReader::open(V1_CHUNK64).unwrap().header().clone();
    let prefix = parse_nonce_prefix(&header.nonce_prefix).unwrap();
    let mut out = Vec::new();
    write_with_prefix(
        &mut out,
        header,
        &SecretBytes::copy_from(&VECTOR_ARCHIVE_KEY),
        &snapshot(1),
        64,
        prefix,
    )
    .unwrap();
    assert!(out == V1_CHUNK64, "the archive format changed");
}
