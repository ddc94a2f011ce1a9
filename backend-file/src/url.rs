//! The `file://` URL form of a [`FileLock`].

use distlock_core::settings::{percent_decode, UrlParts};
use distlock_core::{LockError, Result};

use crate::FileLock;

/// The URL schemes of this backend (compared case-insensitively).
pub const SCHEMES: &[&str] = &["file"];

impl FileLock {
    /// Locks files in the directory a `file:///absolute/dir` URL names (creating it if
    /// needed; `file://localhost/dir` is accepted too). Percent-escapes are decoded.
    /// Errors are of kind [`Config`](distlock_core::ErrorKind::Config).
    pub fn from_url(url: &str) -> Result<Self> {
        let parts = UrlParts::parse(url)?;
        if !SCHEMES.contains(&parts.scheme()) {
            return Err(LockError::config("a lock-file URL starts with file://"));
        }
        if !matches!(parts.hosts(), "" | "localhost") || parts.has_userinfo() {
            return Err(LockError::config(
                "a file:// URL needs an absolute path on this host: file:///var/lock/myapp",
            ));
        }
        if parts.query().is_some() {
            return Err(LockError::config("a file:// URL takes no parameters"));
        }
        let dir = percent_decode("path", parts.path())?;
        if !dir.starts_with('/') {
            return Err(LockError::config(
                "a file:// URL needs an absolute path: file:///var/lock/myapp",
            ));
        }
        FileLock::new(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;

    #[test]
    fn absolute_paths_only() {
        let dir = std::env::temp_dir().join(format!("distlock-url-{}", std::process::id()));
        let url = format!("FILE://{}", dir.display());
        assert_eq!(FileLock::from_url(&url).unwrap().dir(), dir);
        for bad in [
            "file://relative",
            "file://host/x",
            "file://u:s3cret@/x",
            "file:///x?y=1",
            "redis:///x",
            "file:",
        ] {
            let e = FileLock::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!e.to_string().contains("s3cret"));
        }
    }
}
