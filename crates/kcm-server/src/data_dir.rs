//! The data directory's two rules: it is private to the server's user, and one
//! server at a time uses it.
//!
//! It holds the node's secrets (the default master key file, the bootstrap
//! `credentials`, the embedded store), so a directory that group or others can
//! enter is refused rather than trusted, and a new one is made mode 0700.
//!
//! A second `kcm serve` on the same directory would be a second writer of the same
//! SQLite store and scheduler, and would share the keystore's files and the
//! `credentials` file with the first; it is refused by an exclusive `flock` on
//! [`LOCK_FILE`] held for as long as the server runs. The lock is on the directory,
//! not on the store: nodes of a cluster share a PostgreSQL store, never a data
//! directory (each has its own), so they take their own locks and are not in each
//! other's way.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use rustix::fs::{flock, FlockOperation};

/// The lock file in the data directory; it holds the pid of the server that locked
/// it last. It is left in place when the server stops (removing it would race with
/// the next server taking it); only the `flock` on it counts.
pub const LOCK_FILE: &str = "kcm.lock";

/// Fails unless `dir`, which exists, is a directory that only its owner can enter:
/// the fix is named in the error.
pub fn ensure_private(dir: &Path) -> Result<()> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the data directory {shown}"))?;
    if !meta.is_dir() {
        bail!("the data directory {shown} exists and is not a directory");
    }
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "the data directory {shown} is accessible by group or others (mode {:03o}), and it \
             holds the server's secrets; fix with: chmod 700 {shown}",
            meta.permissions().mode() & 0o777
        );
    }
    Ok(())
}

/// Creates `dir` (and missing parents) mode 0700 when it does not exist; otherwise
/// checks it with [`ensure_private`].
pub fn create_private(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display())),
        _ => ensure_private(dir),
    }
}

/// The data directory, opened for one server: private, and locked against a second
/// server until this value is dropped (or the process ends, however it ends).
#[derive(Debug)]
pub struct DataDirLock {
    /// The open lock file: closing it releases the lock.
    _file: File,
}

impl DataDirLock {
    /// Creates or checks `dir` ([`create_private`]) and takes its lock, or fails
    /// naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        create_private(dir)?;
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!("another kcm (pid {pid})"),
                    Err(_) => "another kcm".to_string(),
                };
                bail!(
                    "the data directory {} is in use by {holder}: one server at a time uses a \
                     data directory (it holds {LOCK_FILE}). Stop that server first, or give this \
                     one its own --data-dir (nodes of a cluster share the database, never a data \
                     directory)",
                    dir.display()
                );
            }
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_new_directory_is_private_and_an_open_one_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/data");
        create_private(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        for (mode, private) in [(0o700, true), (0o500, true), (0o750, false), (0o701, false)] {
            chmod(&dir, mode);
            let checked = create_private(&dir);
            assert_eq!(checked.is_ok(), private, "mode {mode:o}");
            if let Err(e) = checked {
                let e = e.to_string();
                assert!(e.contains(&format!("chmod 700 {}", dir.display())), "{e}");
            }
        }
        chmod(&dir, 0o700);
        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(ensure_private(&file)
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
    }

    #[test]
    fn one_lock_at_a_time_naming_the_holder() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let first = DataDirLock::acquire(&dir).unwrap();
        let pid = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        let e = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "in use by another kcm (pid {})",
                std::process::id()
            )),
            "{e}"
        );
        drop(first);
        DataDirLock::acquire(&dir).unwrap();
    }
}
