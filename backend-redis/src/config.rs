//! Configuration: server URLs, key prefix, default lease, timeouts. Credentials in URLs are
//! kept out of every `Debug`, error and log line.

use std::fmt;
use std::time::Duration;

use distlock_core::{LockError, Result, DEFAULT_LEASE_TTL};
use url::Url;

/// The key prefix used unless configured otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "distlock:";

/// One server address: a `redis://` or `rediss://` URL, parsed and validated.
///
/// Form: `redis://[user:password@]host:port/db` (`rediss://` for TLS). The password is never
/// shown: `Debug` and [`ServerUrl::redacted`] print `***` in its place.
#[derive(Clone)]
pub struct ServerUrl {
    url: Url,
}

impl ServerUrl {
    /// Parses and validates `url`. Errors are of kind
    /// [`Config`](distlock_core::ErrorKind::Config) and never quote the password.
    pub fn parse(url: &str) -> Result<Self> {
        let parsed = Url::parse(url).map_err(|e| {
            LockError::config(format!("not a Redis URL ({e}): {}", redact_unparsed(url)))
        })?;
        let redacted = redact(&parsed);
        match parsed.scheme() {
            "redis" | "rediss" => {}
            other => {
                return Err(LockError::config(format!(
                    "unsupported scheme {other:?} in {redacted}: expected redis:// or rediss://"
                )))
            }
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(LockError::config(format!("no host in {redacted}")));
        }
        let path = parsed.path().trim_start_matches('/');
        if !path.is_empty() && path.parse::<u32>().is_err() {
            return Err(LockError::config(format!(
                "the path of {redacted} must be a database number"
            )));
        }
        if parsed.scheme() == "rediss" && !cfg!(feature = "tls") {
            return Err(LockError::config(format!(
                "{redacted} asks for TLS, but distlock-redis was built without its `tls` feature"
            )));
        }
        Ok(ServerUrl { url: parsed })
    }

    /// The URL with the password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    /// Whether the URL asks for TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.url.scheme() == "rediss"
    }

    /// The database number (0 when absent).
    pub fn database(&self) -> u32 {
        self.url.path().trim_start_matches('/').parse().unwrap_or(0)
    }

    /// `host:port` (port 6379 when absent).
    pub fn host_port(&self) -> String {
        format!(
            "{}:{}",
            self.url.host_str().unwrap_or_default(),
            self.url.port().unwrap_or(6379)
        )
    }

    /// The full URL, credentials included, for handing to the Redis client only.
    pub(crate) fn secret(&self) -> &str {
        self.url.as_str()
    }

    /// The password, if any (to scrub it from server or client error texts).
    pub(crate) fn password(&self) -> Option<String> {
        self.url
            .password()
            .map(|p| percent_decode(p).unwrap_or_else(|| p.to_string()))
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// For text that did not even parse: anything before the last `@` may be credentials.
fn redact_unparsed(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://***@{}", &raw[..start], &raw[at + 1..])
        }
        (_, Some(at)) => format!("***@{}", &raw[at + 1..]),
        _ => raw.to_string(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

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
            .map(|u| match ServerUrl::parse(u) {
                Ok(u) => u.redacted(),
                Err(_) => redact_unparsed(u),
            })
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
    fn parses_the_documented_forms() {
        let u = ServerUrl::parse("redis://user:s3cret@example.com:6380/2").unwrap();
        assert_eq!(u.host_port(), "example.com:6380");
        assert_eq!(u.database(), 2);
        assert!(!u.is_tls());
        assert_eq!(u.password().as_deref(), Some("s3cret"));
        let u = ServerUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!(u.host_port(), "127.0.0.1:6379");
        assert_eq!(u.database(), 0);
        let u = ServerUrl::parse("redis://:p%40ss@h:1/").unwrap();
        assert_eq!(u.password().as_deref(), Some("p@ss"));
    }

    #[test]
    fn rejects_bad_urls_without_quoting_the_password() {
        for bad in [
            "http://u:s3cret@h:1/",
            "redis://u:s3cret@h:1/notanumber",
            "redis://u:s3cret@:1/",
            "not a url with s3cret@ in it",
            "redis://u:s3cret@h:99999999/",
        ] {
            let e = ServerUrl::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!format!("{e} {e:?}").contains("s3cret"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn tls_needs_the_feature() {
        let r = ServerUrl::parse("rediss://u:s3cret@h:1/0");
        if cfg!(feature = "tls") {
            assert!(r.unwrap().is_tls());
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("tls"));
            assert!(!format!("{e:?}").contains("s3cret"));
        }
    }

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
