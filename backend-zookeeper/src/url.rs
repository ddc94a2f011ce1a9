//! The `zk://` URL form of [`ZkConfig`].

use distlock_core::settings::{parse_duration, UrlParts};
use distlock_core::{LockError, Result};

use crate::config::{Credentials, ZkConfig};

/// The URL schemes of this backend (compared case-insensitively).
pub const SCHEMES: &[&str] = &["zk", "zookeeper"];

impl ZkConfig {
    /// Parses a `zk://` (or `zookeeper://`) URL; see the type's docs. Errors are of kind
    /// [`Config`](distlock_core::ErrorKind::Config) and never echo the password.
    pub fn from_url(url: &str) -> Result<Self> {
        let parts = UrlParts::parse(url)?;
        if !SCHEMES.contains(&parts.scheme()) {
            return Err(LockError::config("a ZooKeeper URL starts with zk://"));
        }
        let hosts = parts.hosts();
        if hosts.is_empty() || hosts.split(',').any(str::is_empty) {
            return Err(LockError::config(
                "a ZooKeeper URL needs host:port[,host:port…] after zk://",
            ));
        }
        let mut config = ZkConfig::new(hosts);
        if parts.has_userinfo() {
            let (Some(user), Some(password)) = (parts.user()?, parts.password()?) else {
                return Err(LockError::config(
                    "credentials in a ZooKeeper URL are user:password@",
                ));
            };
            config.credentials = Some(Credentials::new(user, password));
        }
        let path = parts.path().trim_end_matches('/');
        if !path.is_empty() {
            config =
                config.with_chroot(distlock_core::settings::percent_decode("chroot", path)?)?;
        }
        for (key, value) in parts.query_pairs()? {
            match key.as_str() {
                "session_timeout" => config.session_timeout = parse_duration(&key, &value)?,
                "connect_timeout" => {
                    config.connect_timeout = Some(parse_duration(&key, &value)?);
                }
                "root" => config = config.with_root(value)?,
                "acl" => match value.as_str() {
                    "creator" => config.creator_only = true,
                    "open" => config.creator_only = false,
                    _ => {
                        return Err(LockError::config(format!(
                            "acl must be `creator` or `open`, not {value:?}"
                        )))
                    }
                },
                _ => {
                    return Err(LockError::config(format!(
                        "unknown ZooKeeper URL parameter {key:?}: expected session_timeout, \
                         connect_timeout, root or acl"
                    )))
                }
            }
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_SESSION_TIMEOUT;
    use distlock_core::ErrorKind;
    use std::time::Duration;

    #[test]
    fn full_url_parses() {
        let c = ZkConfig::from_url(
            "zk://al%40ice:s3cr%3At@h1:2181,h2:2182/app/x?session_timeout=1500ms&root=/locks&acl=creator&connect_timeout=3s",
        )
        .unwrap();
        assert_eq!(c.hosts(), "h1:2181,h2:2182");
        assert_eq!(c.base_path(), "/app/x/locks");
        assert_eq!(c.session_timeout(), Duration::from_millis(1500));
        assert_eq!(c.connect_timeout(), Duration::from_secs(3));
        assert!(c.creator_only());
        let creds = c.credentials().unwrap();
        assert_eq!(creds.user(), "al@ice");
        assert_eq!(creds.auth_bytes(), b"al@ice:s3cr:t".to_vec());
    }

    #[test]
    fn defaults() {
        let c = ZkConfig::from_url("zk://127.0.0.1:2181").unwrap();
        assert_eq!(c.base_path(), "/distlock");
        assert_eq!(c.session_timeout(), DEFAULT_SESSION_TIMEOUT);
        assert!(!c.creator_only());
        assert!(c.credentials().is_none());
        let c = ZkConfig::from_url("ZooKeeper://127.0.0.1:2181/?session_timeout=2s").unwrap();
        assert_eq!(c.base_path(), "/distlock");
        assert_eq!(c.session_timeout(), Duration::from_secs(2));
        let e = ZkConfig::from_url("zk://127.0.0.1:2181/?session_timeout=2000").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("unit"), "{e}");
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        for url in [
            "redis://h:1",
            "zk://",
            "zk://h:1,,h:2",
            "zk://u:hunter2@h:1?session_timeout=soon",
            "zk://u:hunter2@h:1?bogus=1",
            "zk://u:hunter2@h:1/a/../b",
            "zk://h:1?acl=creator",
            "zk://u:hunter2@h:1?acl=weird",
            "zk://u:hunter2@h:1/%zz",
            "zk://u:hunter2@h:1/zookeeper",
            "zk://u:hunter2@h:1?root=/zookeeper/x",
            "zk://u:hunter2@127.0.0.1:1?session_timeout=99999999999999999999s",
            "zk://u:hunter2@127.0.0.1:1?session_timeout=-1s",
            "zk://u:hun/ter2@host:1?x=1",
            "zk://u:hun%ter2@host:1",
        ] {
            let e = ZkConfig::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("ter2"),
                "{url}: {e:?}"
            );
        }
    }

    /// Issue 10: `zk://u:Sup3r?S3cret@host:1` quoted `S3cret@…` as a parameter name.
    #[test]
    fn a_password_with_url_delimiters_stays_whole_and_secret() {
        for (url, password) in [
            ("zk://u:Sup3r?S3cret@host:1", "Sup3r?S3cret"),
            (
                "zk://u:Sup3r?session_timeout=S3cret@host:1",
                "Sup3r?session_timeout=S3cret",
            ),
            ("zk://u:Sup3r/S3cret@host:1/app", "Sup3r/S3cret"),
            ("zk://u:Sup3r@S3cret@host:1", "Sup3r@S3cret"),
        ] {
            let c = ZkConfig::from_url(url).unwrap();
            assert_eq!(c.hosts(), "host:1", "{url}");
            let creds = c.credentials().unwrap();
            assert_eq!(creds.auth_bytes(), format!("u:{password}").into_bytes());
            assert!(!format!("{c:?}").contains("S3cret"));
        }
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = ZkConfig::from_url("zk://bob:hunter2@h:1").unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("bob"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
