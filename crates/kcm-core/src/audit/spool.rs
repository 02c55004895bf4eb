//! The audit spool: a node's audit records kept durably in local files while the
//! store cannot take them, and handed to the store, in order, once it can.
//!
//! A record is acknowledged only once it is durable somewhere: in the store, or
//! here (written and `fsync`ed). The spool is a directory of segment files, one
//! JSON record a line, named by a growing number; the writer appends to the newest
//! segment, the forwarder takes the oldest closed one, appends its records to the
//! store in one transaction, and deletes it. Records are linked into their chains
//! when they reach the store, so a chain never holds a gap or a fork; a record's
//! `time` is when it was made, so spooled records sit in their chain after records
//! that are newer than they are.
//!
//! A segment is deleted only after the store committed its records: if the node
//! stops between the two, the segment is forwarded again at the next start and its
//! records appear twice in their chain (same request ids). A line cut short by a
//! crash while it was written was never acknowledged, and is skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::model::AuditRecord;

/// Records in one segment before the writer starts the next: what the forwarder
/// appends in one store transaction.
const SEGMENT_RECORDS: usize = 2048;

/// The spool directory of a node, and the segment being written.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Segments on disk, oldest first (the last one may be `open`).
    segments: Vec<u64>,
    /// The newest segment, open for appending, and the records it holds.
    open: Option<(u64, File, usize)>,
    /// The number the next segment gets.
    next: u64,
}

/// One segment taken by the forwarder: its records, and its number to remove it by.
pub(crate) struct Segment {
    number: u64,
    /// The records, unlinked, in the order they were spooled.
    pub(crate) records: Vec<AuditRecord>,
}

impl Spool {
    /// The spool in `dir` (created, owner-only, if missing), with the segments a
    /// previous run left there.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let mut segments: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                name.to_str()?.strip_suffix(".jsonl")?.parse().ok()
            })
            .collect();
        segments.sort_unstable();
        let next = segments.last().map_or(1, |n| n + 1);
        Ok(Self {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                segments,
                open: None,
                next,
            }),
        })
    }

    /// Whether records are waiting to be forwarded.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().segments.is_empty()
    }

    /// Records waiting, in segments (for the log).
    pub(crate) fn segments(&self) -> usize {
        self.lock().segments.len()
    }

    /// Appends `records` to the newest segment and makes them durable.
    pub(crate) fn append(&self, records: &[AuditRecord]) -> std::io::Result<()> {
        let mut lines = Vec::with_capacity(records.len() * 256);
        for record in records {
            serde_json::to_writer(&mut lines, record)?;
            lines.push(b'\n');
        }
        let mut state = self.lock();
        if state
            .open
            .as_ref()
            .is_some_and(|(_, _, held)| *held >= SEGMENT_RECORDS)
        {
            state.open = None;
        }
        if state.open.is_none() {
            let number = state.next;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .mode_private()
                .open(self.path(number))?;
            // The new name must be durable before anything in it is acknowledged.
            sync_dir(&self.dir)?;
            state.next += 1;
            state.segments.push(number);
            state.open = Some((number, file, 0));
        }
        let (_, file, held) = state.open.as_mut().expect("opened above");
        file.write_all(&lines)?;
        file.sync_data()?;
        *held += records.len();
        Ok(())
    }

    /// The oldest segment, closed for appending (if it is the open one, the next
    /// append starts a new one). `None` when the spool is empty.
    pub(crate) fn oldest(&self) -> std::io::Result<Option<Segment>> {
        let number = {
            let mut state = self.lock();
            let Some(&number) = state.segments.first() else {
                return Ok(None);
            };
            if state.open.as_ref().is_some_and(|(n, _, _)| *n == number) {
                state.open = None;
            }
            number
        };
        let file = File::open(self.path(number))?;
        let mut records = Vec::new();
        for line in BufReader::new(file).split(b'\n') {
            let line = line?;
            match serde_json::from_slice::<AuditRecord>(&line) {
                Ok(record) => records.push(record),
                // Only the last line can be cut short (a crash while it was written,
                // before it was acknowledged); anything else is not kcm's writing.
                Err(e) if e.is_eof() => break,
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "audit spool segment {} has a line that is not a record: {e}",
                            self.path(number).display()
                        ),
                    ))
                }
            }
        }
        Ok(Some(Segment { number, records }))
    }

    /// Deletes a segment whose records the store committed.
    pub(crate) fn remove(&self, segment: &Segment) -> std::io::Result<()> {
        fs::remove_file(self.path(segment.number))?;
        sync_dir(&self.dir)?;
        self.lock().segments.retain(|n| *n != segment.number);
        Ok(())
    }

    fn path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{number:020}.jsonl"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Files only the owner may read: the spool's and the heads file.
pub(super) trait PrivateMode {
    /// Mode 0600 on Unix.
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for OpenOptions {
    #[cfg(unix)]
    fn mode_private(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
    #[cfg(not(unix))]
    fn mode_private(&mut self) -> &mut Self {
        self
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes the names in `dir` durable (after a create or a rename).
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_record;

    fn spool() -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("audit-spool")).unwrap();
        (dir, spool)
    }

    #[test]
    fn records_come_back_in_order_and_go_once_removed() {
        let (_dir, spool) = spool();
        assert!(spool.is_empty());
        spool.append(&[test_record(1), test_record(2)]).unwrap();
        spool.append(&[test_record(3)]).unwrap();
        let segment = spool.oldest().unwrap().unwrap();
        let ids: Vec<_> = segment.records.iter().map(|r| r.seq).collect();
        assert_eq!(ids, [1, 2, 3]);
        // Taking the open segment closes it: what comes next goes to a new one.
        spool.append(&[test_record(4)]).unwrap();
        spool.remove(&segment).unwrap();
        let next = spool.oldest().unwrap().unwrap();
        assert_eq!(next.records.len(), 1);
        assert_eq!(next.records[0].seq, 4);
        spool.remove(&next).unwrap();
        assert!(spool.is_empty());
        assert!(spool.oldest().unwrap().is_none());
    }

    #[test]
    fn a_restart_finds_what_was_spooled_and_skips_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        {
            let spool = Spool::open(&path).unwrap();
            spool.append(&[test_record(1), test_record(2)]).unwrap();
        }
        // A crash in the middle of writing the next line.
        let segment = fs::read_dir(&path).unwrap().next().unwrap().unwrap().path();
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(b"{\"seq\":3,\"ti").unwrap();
        let spool = Spool::open(&path).unwrap();
        assert_eq!(spool.segments(), 1);
        let taken = spool.oldest().unwrap().unwrap();
        assert_eq!(taken.records.len(), 2);
        // New records go after the old segment, never into it.
        spool.append(&[test_record(5)]).unwrap();
        assert_eq!(spool.segments(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn the_spool_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, spool) = spool();
        spool.append(&[test_record(1)]).unwrap();
        let spool_dir = dir.path().join("audit-spool");
        let mode = fs::metadata(&spool_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        for entry in fs::read_dir(&spool_dir).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_segment_holds_a_bounded_number_of_records() {
        let (_dir, spool) = spool();
        let batch: Vec<_> = (0..SEGMENT_RECORDS as u64).map(test_record).collect();
        spool.append(&batch).unwrap();
        spool.append(&[test_record(0)]).unwrap();
        assert_eq!(spool.segments(), 2);
    }
    /// Golden fixtures: a spool segment as this code wrote it, kept in
    /// `tests/golden/spool/<set>/` and read by every later build (a node upgraded
    /// while records waited in its spool forwards them after the upgrade). Made
    /// once by `generate_golden_spool`; never regenerated to make a test pass (see
    /// `tests/golden/README.md`).
    mod golden {
        use std::path::{Path, PathBuf};

        use super::*;
        use crate::model::{AuditKey, AuditOutcome, KeyId, Role, SystemId, TenantId};

        fn golden_dir() -> PathBuf {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/spool")
        }

        /// The records of every set, as the writer spools them: not yet linked
        /// (no `seq`, no hashes), every field of a record used by one of them.
        fn records() -> Vec<AuditRecord> {
            let tenant = TenantId(uuid::Uuid::from_u128(0x006b_636d_0001));
            let key = KeyId(uuid::Uuid::from_u128(0x006b_636d_0002));
            let system = SystemId(uuid::Uuid::from_u128(0x006b_636d_0003));
            let base = AuditRecord {
                seq: 0,
                time: 1_796_600_000_000,
                tenant: Some(tenant),
                principal: "KCMGOLDENSPOOLTEST01".into(),
                role: Some(Role::KeyUser),
                front_door: "aws".into(),
                operation: "Encrypt".into(),
                keys: vec![AuditKey {
                    id: key,
                    version: Some(2),
                    compromised: false,
                }],
                system: Some(system),
                outcome: AuditOutcome::Success,
                error: None,
                request_id: "golden-spool-1".into(),
                source: Some("192.0.2.9".into()),
                client_request_id: Some("golden-client-1".into()),
                detail: None,
                prev_hash: String::new(),
                hash: String::new(),
            };
            vec![
                base.clone(),
                AuditRecord {
                    time: base.time + 1,
                    operation: "Decrypt".into(),
                    keys: vec![AuditKey {
                        id: key,
                        version: Some(1),
                        compromised: true,
                    }],
                    outcome: AuditOutcome::Failed,
                    error: Some("KMSInvalidStateException".into()),
                    request_id: "golden-spool-2".into(),
                    client_request_id: None,
                    ..base.clone()
                },
                AuditRecord {
                    time: base.time + 2,
                    tenant: None,
                    principal: "KCMUNKNOWNACCESSKEY1".into(),
                    role: None,
                    front_door: "rest".into(),
                    operation: "ListTenants".into(),
                    keys: vec![],
                    system: None,
                    outcome: AuditOutcome::Denied,
                    error: Some("unknown_access_key".into()),
                    request_id: "golden-spool-3".into(),
                    source: None,
                    client_request_id: None,
                    ..base
                },
            ]
        }

        #[test]
        fn golden_spool_segments_are_forwarded_as_written() {
            let mut sets: Vec<PathBuf> = fs::read_dir(golden_dir())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_dir())
                .collect();
            sets.sort();
            assert!(!sets.is_empty(), "no golden spool set");
            for set in sets {
                let temp = tempfile::tempdir().unwrap();
                let dir = temp.path().join("audit-spool");
                fs::create_dir(&dir).unwrap();
                for entry in fs::read_dir(set.join("audit-spool")).unwrap() {
                    let entry = entry.unwrap();
                    fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
                }
                let spool = Spool::open(&dir).unwrap();
                assert_eq!(spool.segments(), 1, "{}", set.display());
                let segment = spool.oldest().unwrap().unwrap();
                assert_eq!(segment.records, records(), "{}", set.display());
                spool.remove(&segment).unwrap();
                assert!(spool.is_empty());
            }
        }

        /// Makes a new set in `tests/golden/spool/$KCM_GOLDEN_SET` (which must not
        /// exist): `KCM_GOLDEN_SET=set-2 cargo test -p kcm-core --lib -- --ignored
        /// generate_golden_spool`.
        #[test]
        #[ignore = "makes a new golden set; run by hand, see tests/golden/README.md"]
        fn generate_golden_spool() {
            let name = std::env::var("KCM_GOLDEN_SET").expect("KCM_GOLDEN_SET names the new set");
            let out = golden_dir().join(name);
            assert!(!out.exists(), "{} exists: make a new set", out.display());
            let spool = Spool::open(&out.join("audit-spool")).unwrap();
            let records = records();
            spool.append(&records[..2]).unwrap();
            spool.append(&records[2..]).unwrap();
            let commit = std::process::Command::new("git")
                .args(["rev-parse", "HEAD"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let manifest = serde_json::json!({
                "about": "A node's audit spool as kcm wrote it (crate::audit::spool): one segment of JSON-lines records, not yet linked. The expected records are spool.rs's golden::records(). All values are TEST values.",
                "kcm_commit": commit,
                "format": "audit spool segment: <number, 20 digits>.jsonl, one AuditRecord as JSON a line",
                "records": records.len(),
            });
            let mut text = serde_json::to_string_pretty(&manifest).unwrap();
            text.push('\n');
            fs::write(out.join("manifest.json"), text).unwrap();
        }
    }
}
