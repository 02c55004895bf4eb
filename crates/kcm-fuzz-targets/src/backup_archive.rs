//! The backup archive reader (`kcm-core` `backup`: [`ArchiveReader::open`] and
//! [`ArchiveReader::read_snapshot`], whose body is read by `kcm-aead-stream`'s
//! `decrypt_exact`).
//!
//! Two kinds of input:
//!
//! * bytes that start with the archive magic (`KCMBAK1\n`) are an archive, read with
//!   a keystore that holds the root key of the archive in
//!   `crates/kcm-core/src/backup/testdata` (the test keystore of kcm-core's backup
//!   tests, master key `0x11…`), so that archive and its byte edits are read as far
//!   as they authenticate;
//! * anything else is a snapshot's plaintext: it is sealed into a valid archive (the
//!   test archive's header, with this payload's length and 64-byte chunks) and read
//!   back, so the fuzzer reaches the snapshot decoding and the header-against-content
//!   checks that sit behind the authentication.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use kcm_aead_stream::{ChunkSize, NoncePrefix, Stream, StreamKey};
use kcm_core::backup::{ArchiveHeader, ArchiveReader, MAGIC};
use kcm_core::crypto;
use kcm_core::keystore::{Capabilities, KeystoreError, KeystoreProvider, KeystoreResult};
use kcm_core::secret::SecretBytes;

/// The archive kcm-core's format tests pin (`snapshot(1)` in 64-byte chunks).
pub const TEST_ARCHIVE: &[u8] =
    include_bytes!("../../kcm-core/src/backup/testdata/v1-chunk64.kcmbak");
/// The master key of the keystore that wrapped [`TEST_ARCHIVE`]'s archive key.
pub const MASTER_KEY: [u8; 32] = [0x11; 32];
/// [`TEST_ARCHIVE`]'s archive key.
pub const ARCHIVE_KEY: [u8; 32] = [0x22; 32];
/// Archives are files of any size; their header is at most 1 MiB, and 1 MiB of
/// snapshot is thousands of rows.
pub const MAX_LEN: usize = 1 << 20;

/// The keystore of kcm-core's backup tests: root keys sealed under a master key.
struct TestKeystore {
    master: SecretBytes,
}

impl TestKeystore {
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
            generate: false,
            import: false,
            reference: false,
        }
    }

    async fn health(&self) -> KeystoreResult<()> {
        Ok(())
    }

    async fn create_root_key(&self, _label: &str) -> KeystoreResult<Vec<u8>> {
        Err(KeystoreError::Unsupported("read only".into()))
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
}

type Keystores = HashMap<String, Arc<dyn KeystoreProvider>>;

fn keystores() -> &'static Keystores {
    static KEYSTORES: OnceLock<Keystores> = OnceLock::new();
    KEYSTORES.get_or_init(|| {
        let keystore = TestKeystore {
            master: SecretBytes::copy_from(&MASTER_KEY),
        };
        HashMap::from([(
            "primary".to_owned(),
            Arc::new(keystore) as Arc<dyn KeystoreProvider>,
        )])
    })
}

/// Reads `archive` to the end, as `kcm restore` does before it writes anything.
fn read(archive: &[u8]) {
    let reader = match ArchiveReader::open(archive) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let header = reader.header().clone();
    match crate::runtime().block_on(reader.read_snapshot(keystores())) {
        Ok((read_header, snapshot)) => {
            assert_eq!(read_header, header);
            let rows: u64 = snapshot.row_counts().iter().map(|(_, n)| n).sum();
            assert_eq!(rows, header.total_rows());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// `payload` sealed into an archive with [`TEST_ARCHIVE`]'s header and key.
pub fn seal_payload(payload: &[u8]) -> Vec<u8> {
    let mut header: ArchiveHeader = ArchiveReader::open(TEST_ARCHIVE)
        .expect("the test archive opens")
        .header()
        .clone();
    header.payload_len = payload.len() as u64;
    let json = serde_json::to_vec(&header).expect("a header encodes");
    let mut raw = MAGIC.to_vec();
    raw.extend_from_slice(&(json.len() as u32).to_be_bytes());
    raw.extend_from_slice(&json);
    let mut out = raw.clone();
    out.extend_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &raw).as_ref());
    let prefix: [u8; 7] = hex::decode(&header.nonce_prefix)
        .expect("hex")
        .try_into()
        .expect("7 bytes");
    Stream::new(
        StreamKey::new(&ARCHIVE_KEY).expect("a 32-byte key"),
        NoncePrefix::from_bytes(prefix),
        ChunkSize::new(header.chunk_size).expect("the test archive's chunk size"),
        &raw,
    )
    .encrypt(&mut &payload[..], &mut out, |_| {})
    .expect("sealing into memory");
    out
}

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    if data.starts_with(MAGIC) {
        read(data);
    } else {
        read(&seal_payload(data));
    }
}
