//! Versioned secrets: what a key-value store in the style of Vault's KV version 2
//! keeps at one path — the versions of a value, their history, and the settings
//! that decide how many are kept and whether a write must name the version it
//! replaces (check-and-set).
//!
//! One entry is one managed object of kind [`ObjectKind::VersionedSecret`] whose
//! payload is this whole document, sealed under the system's key like every
//! object's payload: the values, the custom metadata and the version history are
//! never in the store in plaintext, and the kill switch cuts them off as it cuts
//! off any object. This module is the document and the rules that change it; the
//! service (`service::kv`) authorises, locks, unseals and seals.
//!
//! [`ObjectKind::VersionedSecret`]: crate::model::ObjectKind::VersionedSecret

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::UnixMillis;
use crate::secret::SecretBytes;

/// Largest value of one version, in bytes.
pub const MAX_KV_VALUE: usize = 32 * 1024;
/// Largest sealed document of one entry (all versions kept), in bytes.
pub const MAX_KV_ENTRY: usize = 1024 * 1024;
/// Versions kept when an entry's `max_versions` is 0 (Vault's default).
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// Most versions an entry may keep.
pub const MAX_MAX_VERSIONS: u32 = 100;
/// Longest path, mount included.
pub const MAX_KV_PATH: usize = 255;
/// Most custom metadata items.
const MAX_CUSTOM_METADATA: usize = 64;
/// Longest custom metadata key (Vault's limit).
const MAX_CUSTOM_KEY: usize = 128;
/// Longest custom metadata value (Vault's limit).
const MAX_CUSTOM_VALUE: usize = 512;

/// How an entry keeps its versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvSettings {
    /// Versions kept (the oldest are dropped beyond it); 0 means
    /// [`DEFAULT_MAX_VERSIONS`].
    pub max_versions: u32,
    /// Whether every write must name the version it replaces.
    pub cas_required: bool,
    /// How long after it is written a version counts as deleted (0: never), ms.
    pub delete_version_after_ms: i64,
}

impl KvSettings {
    /// The number of versions kept.
    pub fn kept(&self) -> u32 {
        if self.max_versions == 0 {
            DEFAULT_MAX_VERSIONS
        } else {
            self.max_versions
        }
    }
}

/// A change to an entry's settings and custom metadata; `None` keeps what is.
#[derive(Clone, Debug, Default)]
pub struct KvSettingsChange {
    /// New `max_versions`.
    pub max_versions: Option<u32>,
    /// New `cas_required`.
    pub cas_required: Option<bool>,
    /// New `delete_version_after`, ms.
    pub delete_version_after_ms: Option<i64>,
    /// New custom metadata (replaces all of it).
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

/// One version of a value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvVersion {
    /// When it was written.
    pub created: UnixMillis,
    /// When it was deleted (soft: undelete brings it back).
    pub deleted: Option<UnixMillis>,
    /// Whether its value was destroyed (for good).
    pub destroyed: bool,
    /// The value, until it is destroyed.
    #[serde(with = "sealed_value")]
    value: Option<SecretBytes>,
}

/// A version as callers see it: never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvVersionInfo {
    /// Its number (from 1).
    pub version: u64,
    /// When it was written.
    pub created: UnixMillis,
    /// When it was or will be deleted, if it is or will be.
    pub deletion_time: Option<UnixMillis>,
    /// Whether its value was destroyed.
    pub destroyed: bool,
}

/// What is done to chosen versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvVersionAction {
    /// Soft deletion: the value is kept and can be undeleted.
    Delete,
    /// Undoes a soft deletion.
    Undelete,
    /// Removes the value for good.
    Destroy,
}

/// Everything at one path: its versions, their history and its settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvEntry {
    /// How versions are kept.
    pub settings: KvSettings,
    /// The caller's own metadata.
    pub custom_metadata: BTreeMap<String, String>,
    /// The newest version's number (0: none written yet).
    pub current_version: u64,
    /// The oldest version kept.
    pub oldest_version: u64,
    /// When the entry was created.
    pub created: UnixMillis,
    /// When it last changed.
    pub updated: UnixMillis,
    /// The versions kept, by number.
    versions: BTreeMap<u64, KvVersion>,
}

/// An entry's description as callers see it: never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvMetadata {
    /// How versions are kept.
    pub settings: KvSettings,
    /// The caller's own metadata.
    pub custom_metadata: BTreeMap<String, String>,
    /// The newest version's number.
    pub current_version: u64,
    /// The oldest version kept.
    pub oldest_version: u64,
    /// When the entry was created.
    pub created: UnixMillis,
    /// When it last changed.
    pub updated: UnixMillis,
    /// The versions kept, oldest first.
    pub versions: Vec<KvVersionInfo>,
}

impl KvEntry {
    /// An entry with no versions yet.
    pub fn new(now: UnixMillis) -> Self {
        Self {
            settings: KvSettings::default(),
            custom_metadata: BTreeMap::new(),
            current_version: 0,
            oldest_version: 0,
            created: now,
            updated: now,
            versions: BTreeMap::new(),
        }
    }

    /// Writes a new version. `cas`, when given, must be the current version (0:
    /// only if no version exists yet); when the entry requires it, it must be
    /// given. Versions beyond `max_versions` are dropped, oldest first.
    pub fn write(
        &mut self,
        value: SecretBytes,
        cas: Option<u64>,
        now: UnixMillis,
    ) -> Result<KvVersionInfo> {
        check_value(&value)?;
        match cas {
            None if self.settings.cas_required => {
                return Err(Error::invalid(
                    "check-and-set parameter required for this call (this path has cas_required set)",
                ))
            }
            Some(expected) if expected != self.current_version => {
                return Err(Error::new(
                    ErrorKind::InvalidState,
                    format!(
                        "check-and-set parameter did not match the current version: cas is {expected}, the current version is {}",
                        self.current_version
                    ),
                ))
            }
            _ => {}
        }
        self.current_version += 1;
        self.versions.insert(
            self.current_version,
            KvVersion {
                created: now,
                deleted: None,
                destroyed: false,
                value: Some(value),
            },
        );
        self.prune();
        self.updated = now;
        Ok(self.info(self.current_version).expect("just written"))
    }

    /// The value of `version` (the current one when `None` or 0) and its
    /// description; not found when it was never written, was dropped, deleted or
    /// destroyed.
    pub fn read(&self, version: Option<u64>, now: UnixMillis) -> Result<(KvVersionInfo, &[u8])> {
        let number = version.filter(|v| *v != 0).unwrap_or(self.current_version);
        let info = self
            .info(number)
            .ok_or_else(|| Error::not_found(format!("version {number} does not exist")))?;
        let gone = if info.destroyed {
            Some("was destroyed")
        } else if info.deletion_time.is_some_and(|t| t <= now) {
            Some("was deleted")
        } else {
            None
        };
        if let Some(why) = gone {
            return Err(Error::not_found(format!("version {number} {why}")));
        }
        let value = self.versions[&number]
            .value
            .as_ref()
            .expect("a version that is not destroyed has its value");
        Ok((info, value.expose_secret()))
    }

    /// Deletes, undeletes or destroys `versions` (the current one for an empty
    /// list, deletion only). Versions that do not exist are skipped, as Vault
    /// skips them.
    pub fn change_versions(
        &mut self,
        action: KvVersionAction,
        versions: &[u64],
        now: UnixMillis,
    ) -> Result<()> {
        let chosen: Vec<u64> = if versions.is_empty() {
            if action != KvVersionAction::Delete {
                return Err(Error::invalid("no versions given"));
            }
            vec![self.current_version]
        } else {
            versions.to_vec()
        };
        for number in chosen {
            let Some(v) = self.versions.get_mut(&number) else {
                continue;
            };
            match action {
                KvVersionAction::Delete if !v.destroyed && v.deleted.is_none() => {
                    v.deleted = Some(now)
                }
                KvVersionAction::Undelete if !v.destroyed => v.deleted = None,
                KvVersionAction::Destroy => {
                    v.destroyed = true;
                    v.value = None;
                }
                _ => {}
            }
        }
        self.updated = now;
        Ok(())
    }

    /// Applies a change to the settings and custom metadata.
    pub fn configure(&mut self, change: KvSettingsChange, now: UnixMillis) -> Result<()> {
        if let Some(max) = change.max_versions {
            if max > MAX_MAX_VERSIONS {
                return Err(Error::invalid(format!(
                    "max_versions is at most {MAX_MAX_VERSIONS}, not {max}"
                )));
            }
            self.settings.max_versions = max;
        }
        if let Some(cas) = change.cas_required {
            self.settings.cas_required = cas;
        }
        if let Some(after) = change.delete_version_after_ms {
            if after < 0 {
                return Err(Error::invalid("delete_version_after must not be negative"));
            }
            self.settings.delete_version_after_ms = after;
        }
        if let Some(custom) = change.custom_metadata {
            check_custom_metadata(&custom)?;
            self.custom_metadata = custom;
        }
        self.prune();
        self.updated = now;
        Ok(())
    }

    /// The description of the entry and its versions.
    pub fn metadata(&self) -> KvMetadata {
        KvMetadata {
            settings: self.settings.clone(),
            custom_metadata: self.custom_metadata.clone(),
            current_version: self.current_version,
            oldest_version: self.oldest_version,
            created: self.created,
            updated: self.updated,
            versions: self.versions.keys().filter_map(|n| self.info(*n)).collect(),
        }
    }

    /// The document, to be sealed: one buffer sized up front, so no copy of a
    /// value is left behind by a growing buffer; zeroized when dropped.
    pub fn to_sealable(&self) -> Result<SecretBytes> {
        let values: usize = self
            .versions
            .values()
            .filter_map(|v| v.value.as_ref())
            .map(|v| v.len() * 4 / 3 + 4)
            .sum();
        let estimate = values + 256 * (self.versions.len() + 1) + 2 * MAX_CUSTOM_VALUE;
        let mut out = Vec::with_capacity(estimate);
        serde_json::to_writer(&mut out, self)
            .map_err(|e| Error::internal(format!("a KV entry does not serialise: {e}")))?;
        let out = SecretBytes::new(out);
        if out.len() > MAX_KV_ENTRY {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "the versions kept at this path would take {} bytes, more than the {MAX_KV_ENTRY} one path may hold: lower max_versions or destroy old versions",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// The document from its unsealed bytes.
    pub fn from_unsealed(bytes: &SecretBytes) -> Result<Self> {
        serde_json::from_slice(bytes.expose_secret())
            .map_err(|e| Error::internal(format!("a KV entry does not parse: {e}")))
    }

    fn info(&self, number: u64) -> Option<KvVersionInfo> {
        let v = self.versions.get(&number)?;
        let after = self.settings.delete_version_after_ms;
        let expires = (after > 0).then(|| v.created.saturating_add(after));
        Some(KvVersionInfo {
            version: number,
            created: v.created,
            deletion_time: match (v.deleted, expires) {
                (Some(d), Some(e)) => Some(d.min(e)),
                (d, e) => d.or(e),
            },
            destroyed: v.destroyed,
        })
    }

    /// Drops the oldest versions beyond the number kept.
    fn prune(&mut self) {
        let kept = self.settings.kept() as usize;
        while self.versions.len() > kept {
            self.versions.pop_first();
        }
        self.oldest_version = self
            .versions
            .keys()
            .next()
            .copied()
            .unwrap_or(self.current_version);
    }
}

fn check_value(value: &SecretBytes) -> Result<()> {
    if value.len() > MAX_KV_VALUE {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "a value holds at most {MAX_KV_VALUE} bytes, not {}",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn check_custom_metadata(custom: &BTreeMap<String, String>) -> Result<()> {
    if custom.len() > MAX_CUSTOM_METADATA {
        return Err(Error::invalid(format!(
            "custom_metadata holds at most {MAX_CUSTOM_METADATA} keys, not {}",
            custom.len()
        )));
    }
    for (k, v) in custom {
        if k.is_empty() || k.len() > MAX_CUSTOM_KEY || v.len() > MAX_CUSTOM_VALUE {
            return Err(Error::invalid(format!(
                "a custom_metadata key is 1 to {MAX_CUSTOM_KEY} bytes and its value at most {MAX_CUSTOM_VALUE}: {k:?} is not"
            )));
        }
        if k.chars().chain(v.chars()).any(char::is_control) {
            return Err(Error::invalid(format!(
                "custom_metadata {k:?} holds a control character"
            )));
        }
    }
    Ok(())
}

/// Checks a path below a mount: 1 to [`MAX_KV_PATH`] bytes in all, segments
/// separated by single slashes, no `.` or `..` segment, no control characters.
pub fn check_path(mount: &str, path: &str) -> Result<()> {
    let fine = !path.is_empty()
        && mount.len() + 1 + path.len() <= MAX_KV_PATH
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && !path.chars().any(char::is_control);
    if fine {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{path:?} is no secret path: segments separated by single slashes, no . or .., at most {MAX_KV_PATH} bytes with the mount"
        )))
    }
}

/// The names directly below `prefix` (empty, or ending in `/`) among `paths`:
/// a path's next segment, with a trailing `/` when more follows; sorted, once each.
pub fn names_below<'a>(prefix: &str, paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = paths
        .filter_map(|p| p.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
        .map(|rest| match rest.find('/') {
            Some(i) => rest[..=i].to_owned(),
            None => rest.to_owned(),
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// An entry's value in the sealed document: base64 text, decoded straight into
/// a zeroizing buffer.
mod sealed_value {
    use base64::Engine as _;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    use crate::secret::SecretBytes;

    pub fn serialize<S: Serializer>(value: &Option<SecretBytes>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(v) => {
                let text = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(v.expose_secret()),
                );
                s.serialize_some(text.as_str())
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretBytes>, D::Error> {
        let text: Option<&'de str> = Option::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map(SecretBytes::new)
                .map_err(D::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> SecretBytes {
        SecretBytes::copy_from(s.as_bytes())
    }

    #[test]
    fn check_and_set_names_the_version_it_replaces() {
        let mut e = KvEntry::new(1);
        assert_eq!(e.write(value("a"), Some(0), 2).unwrap().version, 1);
        let stale = e.write(value("b"), Some(0), 3).unwrap_err();
        assert_eq!(stale.kind(), ErrorKind::InvalidState);
        assert!(stale.message().contains("did not match"), "{stale}");
        assert_eq!(e.write(value("b"), Some(1), 3).unwrap().version, 2);
        e.configure(
            KvSettingsChange {
                cas_required: Some(true),
                ..Default::default()
            },
            4,
        )
        .unwrap();
        let missing = e.write(value("c"), None, 5).unwrap_err();
        assert!(missing.message().contains("required"), "{missing}");
        assert_eq!(e.read(None, 6).unwrap().1, b"b");
        assert_eq!(e.read(Some(1), 6).unwrap().1, b"a");
    }

    #[test]
    fn versions_beyond_the_limit_are_dropped_oldest_first() {
        let mut e = KvEntry::new(0);
        e.configure(
            KvSettingsChange {
                max_versions: Some(2),
                ..Default::default()
            },
            0,
        )
        .unwrap();
        for i in 1..=4 {
            e.write(value(&i.to_string()), None, i).unwrap();
        }
        let m = e.metadata();
        assert_eq!((m.current_version, m.oldest_version), (4, 3));
        assert_eq!(m.versions.len(), 2);
        assert_eq!(e.read(Some(2), 9).unwrap_err().kind(), ErrorKind::NotFound);
        assert!(e
            .configure(
                KvSettingsChange {
                    max_versions: Some(MAX_MAX_VERSIONS + 1),
                    ..Default::default()
                },
                9
            )
            .is_err());
    }

    #[test]
    fn deleted_versions_come_back_destroyed_ones_do_not() {
        let mut e = KvEntry::new(0);
        e.write(value("one"), None, 1).unwrap();
        e.write(value("two"), None, 2).unwrap();
        e.change_versions(KvVersionAction::Delete, &[], 3).unwrap();
        assert_eq!(e.read(None, 4).unwrap_err().kind(), ErrorKind::NotFound);
        e.change_versions(KvVersionAction::Undelete, &[2], 5)
            .unwrap();
        assert_eq!(e.read(None, 6).unwrap().1, b"two");
        e.change_versions(KvVersionAction::Destroy, &[1, 7], 7)
            .unwrap();
        e.change_versions(KvVersionAction::Undelete, &[1], 8)
            .unwrap();
        assert!(e
            .read(Some(1), 9)
            .unwrap_err()
            .message()
            .contains("destroyed"));
        let sealable = e.to_sealable().unwrap();
        let text = String::from_utf8_lossy(sealable.expose_secret()).into_owned();
        assert!(!text.contains(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            b"one"
        )));
        let back = KvEntry::from_unsealed(&sealable).unwrap();
        assert_eq!(back.read(None, 10).unwrap().1, b"two");
        assert_eq!(back.metadata(), e.metadata());
    }

    #[test]
    fn versions_expire_after_delete_version_after() {
        let mut e = KvEntry::new(0);
        e.configure(
            KvSettingsChange {
                delete_version_after_ms: Some(100),
                ..Default::default()
            },
            0,
        )
        .unwrap();
        e.write(value("v"), None, 1000).unwrap();
        assert!(e.read(None, 1099).is_ok());
        assert_eq!(e.read(None, 1100).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(e.metadata().versions[0].deletion_time, Some(1100));
    }

    #[test]
    fn bounds_hold() {
        let mut e = KvEntry::new(0);
        let big = SecretBytes::new(vec![b'x'; MAX_KV_VALUE + 1]);
        assert_eq!(
            e.write(big, None, 1).unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        let many: BTreeMap<String, String> = (0..65).map(|i| (i.to_string(), "v".into())).collect();
        assert!(e
            .configure(
                KvSettingsChange {
                    custom_metadata: Some(many),
                    ..Default::default()
                },
                1
            )
            .is_err());
        for bad in ["", "a//b", "a/../b", "./a", "a\nb", &"x".repeat(250)] {
            assert!(check_path("secret", bad).is_err(), "{bad:?}");
        }
        assert!(check_path("secret", "ceph-csi/volume-1").is_ok());
    }

    #[test]
    fn a_listing_shows_the_next_segment_once() {
        let paths = ["a", "b/c", "b/d/e", "bb", "c/"];
        assert_eq!(
            names_below("", paths.iter().copied()),
            ["a", "b/", "bb", "c/"]
        );
        assert_eq!(names_below("b/", paths.iter().copied()), ["c", "d/"]);
        assert!(names_below("z/", paths.iter().copied()).is_empty());
    }
}
