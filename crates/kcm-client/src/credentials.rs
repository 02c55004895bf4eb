//! Loading an access key from the environment or an AWS shared-credentials file.
//!
//! Order, when no profile is named explicitly:
//! 1. `KCM_ACCESS_KEY_ID` + `KCM_SECRET_ACCESS_KEY`;
//! 2. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`;
//! 3. the profile `KCM_PROFILE`, else `AWS_PROFILE`, else `default`, from the
//!    credentials file.
//!
//! With an explicit profile only the file is read. The file is the one given, else
//! `KCM_CREDENTIALS_FILE`, else `AWS_SHARED_CREDENTIALS_FILE`, else
//! `./kcm-data/credentials` (where `kcm serve` writes its bootstrap key).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kcm_sigv4::Credentials;

/// The credentials file used when nothing else is configured.
pub const DEFAULT_CREDENTIALS_FILE: &str = "kcm-data/credentials";

/// Why no credentials could be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The credentials file cannot be read.
    #[error("cannot read the credentials file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The credentials file has no such profile.
    #[error("the credentials file {path} has no profile [{profile}]")]
    NoProfile {
        /// The file.
        path: PathBuf,
        /// The profile looked for.
        profile: String,
    },
    /// The profile lacks a key.
    #[error("profile [{profile}] in {path} has no '{key}'")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The profile.
        profile: String,
        /// The missing key (`aws_access_key_id` or `aws_secret_access_key`).
        key: &'static str,
    },
}

/// Loads credentials (see the module documentation for the order).
///
/// `profile` names a profile explicitly; `file` overrides the credentials file.
pub fn load_credentials(
    profile: Option<&str>,
    file: Option<&Path>,
) -> Result<Credentials, CredentialsError> {
    load_with_env(profile, file, |name| std::env::var(name).ok())
}

/// [`load_credentials`] with an injectable environment (for tests).
pub(crate) fn load_with_env(
    profile: Option<&str>,
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, CredentialsError> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    if profile.is_none() {
        for (id, secret) in [
            ("KCM_ACCESS_KEY_ID", "KCM_SECRET_ACCESS_KEY"),
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ] {
            if let (Some(id), Some(secret)) = (non_empty(id), non_empty(secret)) {
                return Ok(Credentials::new(id, secret));
            }
        }
    }
    let profile = profile
        .map(str::to_owned)
        .or_else(|| non_empty("KCM_PROFILE"))
        .or_else(|| non_empty("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_owned());
    let path = file
        .map(Path::to_path_buf)
        .or_else(|| non_empty("KCM_CREDENTIALS_FILE").map(PathBuf::from))
        .or_else(|| non_empty("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CREDENTIALS_FILE));
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|source| {
        CredentialsError::Read {
            path: path.clone(),
            source,
        }
    })?);
    let mut sections = parse_ini(&text);
    let section = sections
        .remove(&profile)
        .ok_or_else(|| CredentialsError::NoProfile {
            path: path.clone(),
            profile: profile.clone(),
        })?;
    let get = |key: &'static str| {
        section
            .get(key)
            .cloned()
            .ok_or_else(|| CredentialsError::MissingKey {
                path: path.clone(),
                profile: profile.clone(),
                key,
            })
    };
    Ok(Credentials::new(
        get("aws_access_key_id")?,
        get("aws_secret_access_key")?,
    ))
}

/// Parses INI text into sections of `key = value` pairs.
///
/// `[name]` and `[profile name]` both open section `name`; `#` and `;` start
/// comment lines; keys are lowercased; pairs before any section are ignored.
pub fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let name = name.strip_prefix("profile ").unwrap_or(name).trim();
            sections.entry(name.to_owned()).or_default();
            current = Some(name.to_owned());
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# written by kcm serve
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key=secret/with=equals

; another
[profile admin]
AWS_ACCESS_KEY_ID = AKIDADMIN
aws_secret_access_key = s2
[broken]
aws_access_key_id = X
";

    fn file() -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), FILE).unwrap();
        f
    }

    #[test]
    fn ini_is_parsed() {
        let s = parse_ini(FILE);
        assert_eq!(s["default"]["aws_access_key_id"], "AKIDDEFAULT");
        assert_eq!(s["default"]["aws_secret_access_key"], "secret/with=equals");
        assert_eq!(s["admin"]["aws_access_key_id"], "AKIDADMIN");
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn profiles_are_read_from_the_file() {
        let f = file();
        let no_env = |_: &str| None;
        let c = load_with_env(None, Some(f.path()), no_env).unwrap();
        assert_eq!(c.access_key_id(), "AKIDDEFAULT");
        assert_eq!(c.expose_secret(), "secret/with=equals");
        let c = load_with_env(Some("admin"), Some(f.path()), no_env).unwrap();
        assert_eq!(c.access_key_id(), "AKIDADMIN");
        assert!(matches!(
            load_with_env(Some("nope"), Some(f.path()), no_env),
            Err(CredentialsError::NoProfile { .. })
        ));
        let err = load_with_env(Some("broken"), Some(f.path()), no_env).unwrap_err();
        assert!(err.to_string().contains("aws_secret_access_key"));
    }

    #[test]
    fn the_environment_wins_unless_a_profile_is_named() {
        let f = file();
        let env = |n: &str| match n {
            "KCM_ACCESS_KEY_ID" => Some("KCMID".to_owned()),
            "KCM_SECRET_ACCESS_KEY" => Some("kcmsecret".to_owned()),
            "AWS_ACCESS_KEY_ID" => Some("AWSID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("awssecret".to_owned()),
            _ => None,
        };
        assert_eq!(
            load_with_env(None, Some(f.path()), env)
                .unwrap()
                .access_key_id(),
            "KCMID"
        );
        let aws_only = |n: &str| if n.starts_with("AWS_") { env(n) } else { None };
        assert_eq!(
            load_with_env(None, Some(f.path()), aws_only)
                .unwrap()
                .access_key_id(),
            "AWSID"
        );
        assert_eq!(
            load_with_env(Some("admin"), Some(f.path()), env)
                .unwrap()
                .access_key_id(),
            "AKIDADMIN"
        );
    }

    #[test]
    fn the_file_comes_from_the_environment() {
        let f = file();
        let path = f.path().to_str().unwrap().to_owned();
        let env = move |n: &str| match n {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(path.clone()),
            "AWS_PROFILE" => Some("admin".to_owned()),
            _ => None,
        };
        assert_eq!(
            load_with_env(None, None, env).unwrap().access_key_id(),
            "AKIDADMIN"
        );
        let missing = |n: &str| match n {
            "KCM_CREDENTIALS_FILE" => Some("/nonexistent/credentials".to_owned()),
            _ => None,
        };
        let err = load_with_env(None, None, missing).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/credentials"));
    }
}
