//! One server address: a `redis://` or `rediss://` URL, parsed, validated and shown only
//! redacted.

use std::fmt;

use distlock_core::settings::{percent_decode, RedactedUrl, UrlParts};
use distlock_core::{LockError, Result};
use url::Url;

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
        let shown = RedactedUrl::new(url);
        // Cut at the last '@' first (see `distlock_core::settings::UrlParts`), so a password
        // holding '?', '/' or '@' stays whole, then handed to the strict parser re-escaped.
        let parts = UrlParts::parse(url).map_err(|e| {
            LockError::config(format!("not a Redis URL: {shown} ({})", e.message()))
        })?;
        let query = parts.query().map(|q| format!("?{q}")).unwrap_or_default();
        let normalized = format!(
            "{}://{}{}{}{query}",
            parts.scheme(),
            parts.escaped_userinfo()?,
            parts.hosts(),
            parts.path()
        );
        let parsed = Url::parse(&normalized)
            .map_err(|e| LockError::config(format!("not a Redis URL ({e}): {shown}")))?;
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
            .map(|p| percent_decode("password", p).unwrap_or_else(|_| p.to_string()))
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
    RedactedUrl::new(url.as_str()).to_string()
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
    fn a_password_with_url_delimiters_stays_whole() {
        let u = ServerUrl::parse("REDIS://u:s3c?r/e@t@h:1/2").unwrap();
        assert_eq!(u.password().as_deref(), Some("s3c?r/e@t"));
        assert_eq!(u.host_port(), "h:1");
        assert_eq!(u.database(), 2);
        assert!(!format!("{u:?} {u}").contains("s3c"));
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
}
