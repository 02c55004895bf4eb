//! Placing files so that a crash or an error never leaves half of one behind: a
//! guard that removes what was not finished, a directory sync that makes a rename
//! durable, and random names for files that are made beside their final place.
//!
//! The restore, the bootstrap credentials file and the client's `kcm backup`
//! download all place files this way, so it is public. Files that hold a secret are
//! read only when they are private to their owner ([`ensure_owner_only`]).

use std::fs::File;
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
