//! Settings: servers, key prefix, default lease, timeouts. The URL forms are read in
//! `server_url.rs` (one server) and `url.rs` (a lock URL naming a mode and its servers).

use std::fmt;
use std::time::Duration;

use distlock_core::settings::RedactedUrl;
use distlock_core::{LockError, Result, DEFAULT_LEASE_TTL};

use crate::server_url::ServerUrl;

/// The key prefix used unless configured otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "distlock:";

/// Settings shared by [`RedisLock`](crate::RedisLock) and [`Redlock`](crate::Redlock).
/// Build with [`RedisConfig::builder`].
#[derive(Clone)]
pub struct RedisConfig {
    pub(crate) servers: Vec<ServerUrl>,
    pub(crate) key_prefix: String,
    pub(crate) default_ttl: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("servers", &self.servers)
            .field("key_prefix", &self.key_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("response_timeout", &self.response_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// A builder for the server(s) at `urls`: one URL for a single node, any node(s) of a
    /// cluster, or every independent server of a Redlock.
    pub fn builder<I, S>(urls: I) -> RedisConfigBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisConfigBuilder {
            urls: urls.into_iter().map(|s| s.as_ref().to_string()).collect(),
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            default_ttl: DEFAULT_LEASE_TTL,
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// The servers, redacted when printed.
    pub fn servers(&self) -> &[ServerUrl] {
        &self.servers
    }

    /// The namespace every key and channel starts with.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The lease used when an acquire does not set one.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// The passwords of every server, to scrub from error texts.
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter_map(ServerUrl::password)
            .collect()
    }
}

/// Builds a [`RedisConfig`].
#[derive(Clone)]
pub struct RedisConfigBuilder {
    urls: Vec<String>,
    key_prefix: String,
    default_ttl: Duration,
    response_timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for RedisConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self
            .urls
            .iter()
            .map(|u| RedactedUrl::new(u).to_string())
            .collect();
        f.debug_struct("RedisConfigBuilder")
            .field("urls", &urls)
            .field("key_prefix", &self.key_prefix)
            .field("default_ttl", &self.default_ttl)
            .finish_non_exhaustive()
    }
}

impl RedisConfigBuilder {
    /// The namespace for keys and channels (default [`DEFAULT_KEY_PREFIX`]). Must not contain
    /// `{` or `}`, which would break the hash tag that keeps one lock's keys on one slot.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The lease of acquires that do not set one (default 30 s). At least 10 ms.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// How long one command may wait for its reply (default 2 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long one connection attempt may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Validates and builds. Errors are of kind [`Config`](distlock_core::ErrorKind::Config).
    pub fn build(self) -> Result<RedisConfig> {
        if self.urls.is_empty() {
            return Err(LockError::config("no Redis server URL given"));
        }
        let servers = self
            .urls
            .iter()
            .map(|u| ServerUrl::parse(u))
            .collect::<Result<Vec<_>>>()?;
        if self.key_prefix.contains(['{', '}']) {
            return Err(LockError::config(format!(
                "the key prefix {:?} must not contain '{{' or '}}' (they would break the hash tag)",
                self.key_prefix
            )));
        }
        if self.default_ttl < Duration::from_millis(10) {
            return Err(LockError::config("the default TTL must be at least 10 ms"));
        }
        Ok(RedisConfig {
            servers,
            key_prefix: self.key_prefix,
            default_ttl: self.default_ttl,
            response_timeout: self.response_timeout,
            connect_timeout: self.connect_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;

    #[test]
    fn debug_never_shows_the_password() {
        let b = RedisConfig::builder(["redis://admin:s3cret@h:1/0"]);
        assert!(!format!("{b:?}").contains("s3cret"));
        let c = b.key_prefix("app:").build().unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        assert!(shown.contains("app:"));
    }

    #[test]
    fn rejects_braces_in_the_prefix_and_tiny_ttls() {
        let e = RedisConfig::builder(["redis://h:1"])
            .key_prefix("a{b")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = RedisConfig::builder(["redis://h:1"])
            .default_ttl(Duration::from_millis(1))
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = RedisConfig::builder(Vec::<String>::new())
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
