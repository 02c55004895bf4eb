//! Placing files so that a crash or an error never leaves half of one behind: a
//! guard that removes what was not finished, a directory sync that makes a rename
//! durable, and random names for files that are made beside their final place.
//!
//! The restore, the bootstrap credentials file and the client's `kcm backup`
//! download all place files this way, so it is public. [`PendingFile`] goes further
//! for the output of `kcm decrypt`: a file without a name until it is complete, so
//! that not even `kill -9` leaves part of it behind. Files that hold a secret are
//! read only when they are private to their owner ([`ensure_owner_only`]).

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A path that is removed (file or directory tree) when dropped, unless kept: an
/// early return or an error anywhere between creating it and finishing it cleans
/// it up without each exit path saying so.
pub struct Cleanup {
    path: Option<PathBuf>,
}

impl Cleanup {
    /// Removes `path` when the guard is dropped.
    pub fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    /// Leaves the path in place: it was finished.
    pub fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Syncs a directory, so that the renames and creations in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// The directory `path` is in (`.` for a bare name), where its temporary sibling
/// is made so that the final rename stays on one file system.
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Twelve random hex digits, for a temporary name no other run picks.
pub fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    kcm_core::crypto::fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file being written that appears under its name only when complete.
///
/// Where the file system allows it (Linux, `O_TMPFILE`), the file has no name at all
/// while it is written: whatever stops the writer — an error, Ctrl-C, `kill -9`, a
/// crash — leaves nothing behind, because the kernel frees a file without a name
/// once its last descriptor closes. [`persist`](Self::persist) gives it its name
/// (`linkat`). Elsewhere it is written under a hidden name beside the target
/// (`.NAME.kcm-partial-RANDOM`), removed on drop; only `kill -9` or a crash can leave
/// that one behind ([`temporary_path`](Self::temporary_path) says whether there is
/// one, for a signal handler that removes it).
pub struct PendingFile {
    file: File,
    target: PathBuf,
    /// The hidden name it is written under, when it could not be made without one.
    named: Option<PathBuf>,
}

impl std::fmt::Debug for PendingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingFile")
            .field("target", &self.target)
            .field("named", &self.named)
            .finish()
    }
}

impl PendingFile {
    /// Starts the file that will be `target`, mode 0600, in `target`'s directory (so
    /// that naming it never copies).
    pub fn create(target: &Path) -> Result<Self> {
        if target.file_name().is_none() {
            anyhow::bail!("{} has no file name", target.display());
        }
        match open_unnamed(&parent_of(target))? {
            Some(file) => Ok(Self {
                file,
                target: target.to_path_buf(),
                named: None,
            }),
            None => Self::create_named(target),
        }
    }

    /// Starts the file under a hidden name beside `target`.
    fn create_named(target: &Path) -> Result<Self> {
        let name = target
            .file_name()
            .with_context(|| format!("{} has no file name", target.display()))?;
        let tmp = parent_of(target).join(format!(
            ".{}.kcm-partial-{}",
            name.to_string_lossy(),
            random_suffix()
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self {
            file,
            target: target.to_path_buf(),
            named: Some(tmp),
        })
    }

    /// The open file, to write to (or clone for a writer on another thread).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The hidden name the file has while it is written, if it has one.
    pub fn temporary_path(&self) -> Option<&Path> {
        self.named.as_deref()
    }

    /// Syncs the file and gives it its name, replacing a file of that name, then
    /// syncs the directory. Everything written through any clone of
    /// [`file`](Self::file) must be flushed first.
    ///
    /// An unnamed file is linked to the name directly when the name is free; when a
    /// file of that name exists, it is linked to a hidden name and renamed over it
    /// (a link cannot replace), so for that moment the complete file has a hidden
    /// name.
    pub fn persist(mut self) -> Result<()> {
        let shown = self.target.display().to_string();
        self.file
            .sync_all()
            .with_context(|| format!("cannot write {shown}"))?;
        match self.named.take() {
            Some(tmp) => {
                if let Err(e) = std::fs::rename(&tmp, &self.target) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e).with_context(|| format!("cannot write {shown}"));
                }
            }
            None => match link_unnamed(&self.file, &self.target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let name = self.target.file_name().unwrap_or_default();
                    let tmp = parent_of(&self.target).join(format!(
                        ".{}.kcm-{}",
                        name.to_string_lossy(),
                        random_suffix()
                    ));
                    link_unnamed(&self.file, &tmp)
                        .with_context(|| format!("cannot write {shown}"))?;
                    if let Err(e) = std::fs::rename(&tmp, &self.target) {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e).with_context(|| format!("cannot write {shown}"));
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("cannot write {shown}")),
            },
        }
        sync_dir(&parent_of(&self.target))
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.named.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A new file without a name in `dir`, or `None` where the system or the file system
/// cannot make one (then the caller names it).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_unnamed(dir: &Path) -> Result<Option<File>> {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    use rustix::io::Errno;
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    match openat(CWD, dir, flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // No O_TMPFILE in this kernel (EISDIR, EINVAL) or this file system (EOPNOTSUPP).
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("cannot create a file in {}", dir.display())),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn open_unnamed(_dir: &Path) -> Result<Option<File>> {
    Ok(None)
}

/// Gives the unnamed `file` the name `path` (in the directory it was made in).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn link_unnamed(file: &File, path: &Path) -> std::io::Result<()> {
    use rustix::fs::{linkat, AtFlags, CWD};
    use std::os::fd::AsRawFd;
    // Through /proc, as linkat(2) describes for O_TMPFILE; AT_EMPTY_PATH, the other
    // way, needs CAP_DAC_READ_SEARCH.
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW) {
        Err(rustix::io::Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
            linkat(file, "", CWD, path, AtFlags::EMPTY_PATH).map_err(Into::into)
        }
        other => other.map_err(Into::into),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn link_unnamed(_file: &File, _path: &Path) -> std::io::Result<()> {
    unreachable!("no unnamed files are made here")
}

/// Fails unless `path` (a file holding `what`, e.g. "PIN") can be read by its owner
/// only: a secret that group or others can read is already disclosed.
pub fn ensure_owner_only(path: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read the {what} file {shown}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "the {what} file {shown} is accessible by group or others; fix with: chmod 600 {shown}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_removes_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        drop(Cleanup::new(a.clone()));
        assert!(!a.exists());
        let b = dir.path().join("b");
        std::fs::write(&b, "x").unwrap();
        Cleanup::new(b.clone()).keep();
        assert!(b.exists());
    }

    /// The names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_pending_file_has_no_name_until_it_is_complete() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let pending = PendingFile::create(&target).unwrap();
        assert!(
            pending.temporary_path().is_none(),
            "O_TMPFILE works in a temporary directory on Linux"
        );
        pending.file().write_all(b"secret plaintext").unwrap();
        assert_eq!(names(dir.path()), Vec::<String>::new());
        drop(pending);
        assert_eq!(names(dir.path()), Vec::<String>::new());

        let pending = PendingFile::create(&target).unwrap();
        pending.file().write_all(b"first").unwrap();
        pending.persist().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");

        // An existing file is replaced, and nothing else stays.
        let pending = PendingFile::create(&target).unwrap();
        pending.file().write_all(b"second").unwrap();
        pending.persist().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        assert_eq!(names(dir.path()), vec!["out".to_string()]);
    }

    #[test]
    fn without_unnamed_files_a_hidden_name_is_removed_unless_persisted() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let pending = PendingFile::create_named(&target).unwrap();
        let tmp = pending.temporary_path().unwrap().to_path_buf();
        assert!(tmp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".out.kcm-partial-"));
        pending.file().write_all(b"part").unwrap();
        assert!(tmp.exists());
        drop(pending);
        assert_eq!(names(dir.path()), Vec::<String>::new());
        let pending = PendingFile::create_named(&target).unwrap();
        pending.file().write_all(b"whole").unwrap();
        pending.persist().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert_eq!(names(dir.path()), vec!["out".to_string()]);
    }

    #[test]
    fn secret_files_must_be_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, b"s").unwrap();
        for (mode, private) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let checked = ensure_owner_only(&file, "PIN");
            assert_eq!(checked.is_ok(), private, "mode {mode:o}");
            if let Err(e) = checked {
                assert!(e.to_string().contains("chmod 600"), "{e}");
            }
        }
        assert!(ensure_owner_only(&dir.path().join("missing"), "PIN").is_err());
    }
}
