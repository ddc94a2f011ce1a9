//! Where the ensemble is, where lock nodes live, how long sessions last, and credentials.
//! The `zk://` URL form of these settings is read in `url.rs`.

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
/// - `session_timeout`: `2s`, `1500ms` (a unit is required, see
///   [`distlock_core::settings`]); default 10 s (the server clamps it to its own bounds).
/// - `connect_timeout`: how long to wait for a session to be established; default the
///   session timeout.
/// - `root`: the node under the chroot holding one parent node per lock; default `/distlock`.
/// - `acl=creator`: create lock nodes (and the root and parents) with a creator-only ACL;
///   needs credentials. `acl=open` (default) leaves them open to anyone.
/// - `user:password@`: digest authentication, percent-decoded. The user information ends
///   at the last `@`, so a password may hold `?`, `/` or `@` unescaped.
///
/// Schemes ([`SCHEMES`](crate::SCHEMES)) are case-insensitive.
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
