//! Placing files so that a crash or an error never leaves half of one behind: a
//! guard that removes what was not finished, a directory sync that makes a rename
//! durable, and random names for files that are made beside their final place.
//!
//! The restore, the bootstrap credentials file and the client's `kcm backup`
//! download all place files this way, so it is public.

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
}
