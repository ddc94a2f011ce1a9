//! Where the ensemble is, where lock nodes live, how long sessions last, and credentials.

use std::fmt;
use std::time::Duration;

use distlock_core::{LockError, Result};

/// The session timeout asked for when none is configured. The server clamps it to
/// 2×–20× its `tickTime` (0.4 s – 4 s with a 200 ms tick; 4 s – 40 s with the default 2 s).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The root node under which every lock gets its parent node, unless configured.
pub const DEFAULT_ROOT: &str = "/distlock";

/// Digest credentials (`user:password`). The password never appears in `Debug`, errors
/// or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Digest credentials for `user`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `user:password` bytes the `digest` scheme sends.
    pub(crate) fn auth_bytes(&self) -> Vec<u8> {
        format!("{}:{}", self.user, self.password).into_bytes()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How a [`ZkLock`](crate::ZkLock) connects and where it keeps its nodes.
///
/// Build it with [`ZkConfig::new`] and the `with_*` methods, or parse a URL with
/// [`ZkConfig::from_url`]:
///
/// `zk://[user:password@]host1:port,host2:port[/chroot][?session_timeout=2s&root=/locks&acl=creator]`
///
/// - `/chroot` (optional): every node distlock touches lives under this path.
/// - `session_timeout`: `2s`, `1500ms` or plain milliseconds; default 10 s (the server
///   clamps it to its own bounds).
/// - `connect_timeout`: how long to wait for a session to be established; default the
///   session timeout.
/// - `root`: the node under the chroot holding one parent node per lock; default `/distlock`.
/// - `acl=creator`: create lock nodes (and the root and parents) with a creator-only ACL;
///   needs credentials. `acl=open` (default) leaves them open to anyone.
/// - `user:password@`: digest authentication, percent-decoded.
///
/// ```
/// use std::time::Duration;
/// use distlock_zookeeper::ZkConfig;
///
/// let parsed = ZkConfig::from_url(
///     "zk://app:s3cret@10.0.0.1:2181,10.0.0.2:2181/prod?session_timeout=10s&acl=creator",
/// )?;
/// let built = ZkConfig::new("10.0.0.1:2181,10.0.0.2:2181")
///     .with_chroot("/prod")?
///     .with_session_timeout(Duration::from_secs(10))
///     .with_digest("app", "s3cret")
///     .with_creator_only_acl(true);
/// assert_eq!(parsed.base_path(), "/prod/distlock");
/// assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
/// assert!(!format!("{parsed:?}").contains("s3cret"));
/// # Ok::<(), distlock_core::LockError>(())
/// ```
#[derive(Clone)]
pub struct ZkConfig {
    pub(crate) hosts: String,
    pub(crate) chroot: String,
    pub(crate) root: String,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) creator_only: bool,
}

impl ZkConfig {
    /// A config for the comma-separated `host:port` list `hosts`, with defaults elsewhere.
    pub fn new(hosts: impl Into<String>) -> Self {
        ZkConfig {
            hosts: hosts.into(),
            chroot: String::new(),
            root: DEFAULT_ROOT.to_string(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: None,
            credentials: None,
            creator_only: false,
        }
    }

    /// Parses a `zk://` (or `zookeeper://`) URL; see the type's docs. Errors are of kind
    /// [`Config`](distlock_core::ErrorKind::Config) and never echo the password.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("zk://")
            .or_else(|| url.strip_prefix("zookeeper://"))
            .ok_or_else(|| LockError::config("a ZooKeeper URL starts with zk://"))?;
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i..]),
            None => (before_query, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if hosts.is_empty() || hosts.split(',').any(|h| h.is_empty()) {
            return Err(LockError::config(
                "a ZooKeeper URL needs host:port[,host:port…] after zk://",
            ));
        }
        let mut config = ZkConfig::new(hosts);
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').ok_or_else(|| {
                LockError::config("credentials in a ZooKeeper URL are user:password@")
            })?;
            config.credentials = Some(Credentials::new(
                percent_decode(user)?,
                percent_decode(password)?,
            ));
        }
        let path = path.trim_end_matches('/');
        if !path.is_empty() {
            config = config.with_chroot(percent_decode(path)?)?;
        }
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            match key {
                "session_timeout" => config.session_timeout = parse_duration(key, &value)?,
                "connect_timeout" => {
                    config.connect_timeout = Some(parse_duration(key, &value)?);
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
                        "unknown ZooKeeper URL parameter {key:?}"
                    )))
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Puts every node under `chroot` (an absolute path such as `/app`).
    pub fn with_chroot(mut self, chroot: impl Into<String>) -> Result<Self> {
        let chroot = chroot.into();
        let chroot = chroot.trim_end_matches('/');
        if !chroot.is_empty() {
            validate_path("chroot", chroot)?;
        }
        self.chroot = chroot.to_string();
        Ok(self)
    }

    /// The node under which each lock gets its parent node (default `/distlock`).
    pub fn with_root(mut self, root: impl Into<String>) -> Result<Self> {
        let root = root.into();
        let root = root.trim_end_matches('/');
        validate_path("root", root)?;
        self.root = root.to_string();
        Ok(self)
    }

    /// The session timeout to ask the server for. Holds live as long as the session; a
    /// crashed holder's lock frees within about this long.
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long establishing a session may take (default: the session timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Authenticates every session with the `digest` scheme.
    pub fn with_digest(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::new(user, password));
        self
    }

    /// Creates the root, the lock parents and the lock nodes with a creator-only ACL
    /// (`auth` scheme, all permissions), so that only clients authenticated as the same
    /// user can list, create or delete lock nodes. Needs [`ZkConfig::with_digest`].
    pub fn with_creator_only_acl(mut self, on: bool) -> Self {
        self.creator_only = on;
        self
    }

    /// The `host:port,…` list.
    pub fn hosts(&self) -> &str {
        &self.hosts
    }

    /// The chroot and root joined: the node holding one parent node per lock.
    pub fn base_path(&self) -> String {
        format!("{}{}", self.chroot, self.root)
    }

    /// The configured session timeout (before the server's clamping).
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// The credentials, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Whether nodes get a creator-only ACL.
    pub fn creator_only(&self) -> bool {
        self.creator_only
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .unwrap_or(self.session_timeout.max(Duration::from_secs(2)))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let base = self.base_path();
        if base == "/zookeeper" || base.starts_with("/zookeeper/") {
            return Err(LockError::config(
                "/zookeeper is reserved by the server; choose another root or chroot",
            ));
        }
        if self.hosts.is_empty() {
            return Err(LockError::config("no ZooKeeper hosts configured"));
        }
        if self.creator_only && self.credentials.is_none() {
            return Err(LockError::config(
                "a creator-only ACL needs credentials (digest user:password)",
            ));
        }
        if self.session_timeout.is_zero() {
            return Err(LockError::config("the session timeout must not be zero"));
        }
        Ok(())
    }
}

impl fmt::Debug for ZkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkConfig")
            .field("hosts", &self.hosts)
            .field("chroot", &self.chroot)
            .field("root", &self.root)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("credentials", &self.credentials)
            .field("creator_only", &self.creator_only)
            .finish()
    }
}

fn validate_path(what: &str, path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && path[1..]
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && !path.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(LockError::config(format!(
            "the {what} must be an absolute ZooKeeper path like /locks, not {path:?}"
        )))
    }
}

fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    let bad = || LockError::config(format!("{key} must look like 2s, 1500ms or 2000"));
    let (number, unit_ms) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (value, 1.0)
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(n * unit_ms / 1000.0))
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| LockError::config("bad percent-escape in a ZooKeeper URL"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| LockError::config("a ZooKeeper URL part is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;

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
        let c = ZkConfig::from_url("zk://127.0.0.1:2181/?session_timeout=2000").unwrap();
        assert_eq!(c.base_path(), "/distlock");
        assert_eq!(c.session_timeout(), Duration::from_secs(2));
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
        ] {
            let e = ZkConfig::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{url}: {e:?}");
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
