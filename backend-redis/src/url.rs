//! One URL for every mode, for the facade's `connect(url)`.

use distlock_core::settings::{parse_duration, UrlParts};
use distlock_core::{DistributedLock, LockError, Result};

use crate::config::{RedisConfig, RedisConfigBuilder};
use crate::lock::RedisLock;
use crate::redlock::Redlock;

/// Which kind of client a URL asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `redis://` / `rediss://`: one server.
    Single,
    /// `redis+cluster://` / `rediss+cluster://`: a Redis Cluster (hosts are seeds).
    Cluster,
    /// `redis+redlock://` / `rediss+redlock://`: a Redlock over independent servers.
    Redlock,
}

/// The URL schemes of this backend (compared case-insensitively).
pub const SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+redlock",
    "rediss+redlock",
];

/// Parses a lock URL into its mode and a config builder:
///
/// * `redis://[user:password@]host:port/db` (`rediss://` for TLS): a single server;
/// * `redis+cluster://[user:password@]host1:port1,host2:port2/`: a cluster, any nodes as seeds;
/// * `redis+redlock://[user:password@]host1:port1,host2:port2,host3:port3/db`: Redlock;
/// * optional query parameters `prefix=<key prefix>` and `ttl=<default lease>` (a duration
///   with its unit, `30s` or `1500ms`: see [`distlock_core::settings`]).
///
/// Schemes are case-insensitive. The user information ends at the last `@`, so a password
/// may hold `?`, `/` or `@` unescaped. Errors are of kind
/// [`Config`](distlock_core::ErrorKind::Config) and never quote the password.
pub fn parse_url(url: &str) -> Result<(Mode, RedisConfigBuilder)> {
    let parts = UrlParts::parse(url)
        .map_err(|_| LockError::config("a Redis URL starts with redis:// or rediss://"))?;
    let (base, mode) = match parts.scheme() {
        "redis" | "rediss" => (parts.scheme(), Mode::Single),
        "redis+cluster" => ("redis", Mode::Cluster),
        "rediss+cluster" => ("rediss", Mode::Cluster),
        "redis+redlock" => ("redis", Mode::Redlock),
        "rediss+redlock" => ("rediss", Mode::Redlock),
        other => {
            return Err(LockError::config(format!(
                "unknown Redis URL scheme {other:?}: expected redis, rediss, redis+cluster or redis+redlock"
            )))
        }
    };
    // Re-escaped, so that what the last-'@' rule read as the password reaches the server
    // unchanged through each server's own URL.
    let userinfo = parts.escaped_userinfo()?;
    let urls: Vec<String> = parts
        .hosts()
        .split(',')
        .map(|host| format!("{base}://{userinfo}{host}{}", parts.path()))
        .collect();
    if mode == Mode::Single && urls.len() > 1 {
        return Err(LockError::config(
            "several hosts need redis+cluster:// or redis+redlock://",
        ));
    }
    let mut builder = RedisConfig::builder(urls);
    for (key, value) in parts.query_pairs()? {
        builder = match key.as_str() {
            "prefix" => builder.key_prefix(value),
            "ttl" => builder.default_ttl(parse_duration(&key, &value)?),
            "ttl_ms" => {
                return Err(LockError::config(
                    "ttl_ms is gone: write the lease as ttl=30s or ttl=1500ms",
                ))
            }
            other => {
                return Err(LockError::config(format!(
                    "unknown Redis URL parameter {other:?}: expected prefix or ttl"
                )))
            }
        };
    }
    Ok((mode, builder))
}

/// Connects to whatever `url` names (see [`parse_url`]).
///
/// # Cancel safety
/// Cancel safe: nothing is held until it returns.
pub async fn connect(url: &str) -> Result<Box<dyn DistributedLock>> {
    let (mode, builder) = parse_url(url)?;
    let config = builder.build()?;
    Ok(match mode {
        Mode::Single => Box::new(RedisLock::connect_with(config).await?),
        Mode::Cluster => Box::new(RedisLock::connect_cluster(config).await?),
        Mode::Redlock => Box::new(Redlock::connect(config).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;
    use std::time::Duration;

    #[test]
    fn every_form_parses() {
        let (mode, b) = parse_url("REDIS://u:s3cret@h:1/2?prefix=app:&ttl=5s").unwrap();
        assert_eq!(mode, Mode::Single);
        let c = b.build().unwrap();
        assert_eq!(c.key_prefix(), "app:");
        assert_eq!(c.default_ttl(), Duration::from_millis(5000));
        assert_eq!(c.servers()[0].database(), 2);
        assert!(!format!("{c:?}").contains("s3cret"));

        let (mode, b) = parse_url("redis+cluster://:s3cret@a:1,b:2,c:3").unwrap();
        assert_eq!(mode, Mode::Cluster);
        let c = b.build().unwrap();
        let hosts: Vec<String> = c.servers().iter().map(|s| s.host_port()).collect();
        assert_eq!(hosts, ["a:1", "b:2", "c:3"]);
        assert!(c.servers().iter().all(|s| s.redacted().contains("***")));

        let (mode, b) = parse_url("redis+redlock://a:1,b:2,c:3/4").unwrap();
        assert_eq!(mode, Mode::Redlock);
        assert!(b
            .build()
            .unwrap()
            .servers()
            .iter()
            .all(|s| s.database() == 4));
    }

    /// A `?` (not percent-encoded) inside a password must not make the rest of it a query
    /// parameter that an error message then quotes: the password stays whole.
    #[test]
    fn a_question_mark_in_the_password_stays_in_the_password() {
        for (url, password) in [
            ("redis://:s3c?r3t@127.0.0.1:6379/", "s3c?r3t"),
            ("redis://u:s3c?r3t=1@127.0.0.1:6379/", "s3c?r3t=1"),
            ("redis://:s3c?prefix=r3t@127.0.0.1:6379/", "s3c?prefix=r3t"),
            ("redis+cluster://u:s3c?r3t@a:1,b:2/", "s3c?r3t"),
            (
                "redis+redlock://u:s3c/tt?l=r3t@a:1,b:2,c:3/",
                "s3c/tt?l=r3t",
            ),
        ] {
            let (_, b) = parse_url(url).unwrap();
            let c = b.build().unwrap();
            for server in c.servers() {
                assert_eq!(server.password().as_deref(), Some(password), "{url}");
                assert_eq!(server.database(), 0);
            }
            let shown = format!("{c:?}");
            assert!(
                !shown.contains("s3c") && !shown.contains("r3t"),
                "{url}: {shown}"
            );
        }
    }

    #[test]
    fn bad_forms_are_config_errors_without_the_password() {
        for bad in [
            "redis://u:s3cret@a:1,b:2/",
            "redis+sentinel://u:s3cret@a:1/",
            "redis://u:s3cret@a:1/?bogus=1",
            "redis://u:s3cret@a:1/?ttl=soon",
            "redis://u:s3cret@a:1/?ttl=5000",
            "redis://u:s3cret@a:1/?ttl_ms=5000",
            "u:s3cret@a:1",
        ] {
            let e = parse_url(bad).and_then(|(_, b)| b.build()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!format!("{e} {e:?}").contains("s3cret"), "{bad}: {e}");
        }
    }
}
