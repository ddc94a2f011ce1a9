//! One URL for every mode, for the facade's `connect(url)`.

use std::time::Duration;

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

/// Parses a lock URL into its mode and a config builder:
///
/// * `redis://[user:password@]host:port/db` (`rediss://` for TLS): a single server;
/// * `redis+cluster://[user:password@]host1:port1,host2:port2/`: a cluster, any nodes as seeds;
/// * `redis+redlock://[user:password@]host1:port1,host2:port2,host3:port3/db`: Redlock;
/// * optional query parameters `prefix=<key prefix>` and `ttl_ms=<default lease>`.
///
/// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) and never quote the password.
pub fn parse_url(url: &str) -> Result<(Mode, RedisConfigBuilder)> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(LockError::config(
            "a Redis URL starts with redis:// or rediss://",
        ));
    };
    let (base, mode) = match scheme {
        "redis" | "rediss" => (scheme, Mode::Single),
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
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    // An '@' only after the '?' means the '?' was inside the user info (a password that was
    // not percent-encoded): its tail would be read as parameters and quoted in errors.
    if query.is_some_and(|q| q.contains('@')) && !rest.contains('@') {
        return Err(LockError::config(
            "this Redis URL has an '@' after its '?' (not shown: it may hold a password):              percent-encode '?' in a user name or password as %3F",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let urls: Vec<String> = hosts
        .split(',')
        .map(|host| format!("{base}://{userinfo}{host}{path}"))
        .collect();
    if mode == Mode::Single && urls.len() > 1 {
        return Err(LockError::config(
            "several hosts need redis+cluster:// or redis+redlock://",
        ));
    }
    let mut builder = RedisConfig::builder(urls);
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        builder = match key {
            "prefix" => builder.key_prefix(value),
            "ttl_ms" => {
                let ms: u64 = value.parse().map_err(|_| {
                    LockError::config(format!(
                        "ttl_ms must be a number of milliseconds, not {value:?}"
                    ))
                })?;
                builder.default_ttl(Duration::from_millis(ms))
            }
            other => {
                return Err(LockError::config(format!(
                    "unknown Redis URL parameter {other:?}: expected prefix or ttl_ms"
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

    #[test]
    fn every_form_parses() {
        let (mode, b) = parse_url("redis://u:s3cret@h:1/2?prefix=app:&ttl_ms=5000").unwrap();
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
    /// parameter that an error message then quotes.
    #[test]
    fn a_question_mark_in_the_password_leaks_no_part_of_it() {
        for bad in [
            "redis://:s3c?r3t@127.0.0.1:6379/",
            "redis://u:s3c?r3t=1@127.0.0.1:6379/",
            "redis://:s3c?prefix=r3t@127.0.0.1:6379/",
            "redis+cluster://u:s3c?r3t@a:1,b:2/",
            "redis+redlock://u:s3c?ttl_ms=r3t@a:1,b:2,c:3/",
        ] {
            let e = parse_url(bad).and_then(|(_, b)| b.build()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("s3c") && !shown.contains("r3t"),
                "{bad}: {shown}"
            );
        }
    }

    #[test]
    fn bad_forms_are_config_errors_without_the_password() {
        for bad in [
            "redis://u:s3cret@a:1,b:2/",
            "redis+sentinel://u:s3cret@a:1/",
            "redis://u:s3cret@a:1/?bogus=1",
            "redis://u:s3cret@a:1/?ttl_ms=soon",
            "u:s3cret@a:1",
        ] {
            let e = parse_url(bad).and_then(|(_, b)| b.build()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!format!("{e} {e:?}").contains("s3cret"), "{bad}: {e}");
        }
    }
}
