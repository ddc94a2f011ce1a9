//! The operator's side of a backend: who holds what, breaking a stuck hold, and checking
//! the deployment. A separate capability: a client offers it through
//! [`DistributedLock::inspect`](crate::DistributedLock::inspect), whose default is `None`,
//! so backends that cannot (or do not yet) inspect keep compiling.

use std::fmt::{self, Debug};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::name::LockName;
pub use crate::token::HolderMeta;

/// One held lock, as the store reports it. Fields the store cannot tell are `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The lock name, or the store's key for it where the name cannot be recovered
    /// (MySQL stores a hash of long names).
    pub name: String,
    /// The hold's owner token, where the store keeps it.
    pub owner_token: Option<String>,
    /// The fencing token of the hold (or the latest handed out for the name).
    pub fencing_token: Option<u64>,
    /// How long it has been held.
    pub age: Option<Duration>,
    /// How long until the store frees it unless renewed.
    pub time_left: Option<Duration>,
    /// Host, process and label of the holder.
    pub meta: HolderMeta,
    /// The store's own handle on the holder: a ZooKeeper session id, a MySQL connection
    /// id, a process id holding a lock file.
    pub session: Option<String>,
}

impl Holder {
    /// A holder of `name` about which nothing else is known yet.
    pub fn new(name: impl Into<String>) -> Self {
        Holder {
            name: name.into(),
            owner_token: None,
            fencing_token: None,
            age: None,
            time_left: None,
            meta: HolderMeta::default(),
            session: None,
        }
    }

    /// Sets the owner token and the metadata it carries.
    pub fn with_owner_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.meta = HolderMeta::from_owner_token(&token);
        self.owner_token = Some(token);
        self
    }
}

/// How bad a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Fine.
    Pass,
    /// Works, but degraded or risky.
    Warn,
    /// Locks are not safe as deployed.
    Fail,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Pass => "PASS",
            Severity::Warn => "WARN",
            Severity::Fail => "FAIL",
        })
    }
}

/// One check of [`Inspect::doctor`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// What was checked, e.g. `maxmemory-policy`.
    pub check: String,
    /// The verdict.
    pub severity: Severity,
    /// What was found.
    pub detail: String,
    /// How to fix it (for warnings and failures).
    pub fix: Option<String>,
}

impl Finding {
    /// A passed check.
    pub fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Severity::Pass, detail, None::<String>)
    }

    /// A warning, with its fix.
    pub fn warn(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(check, Severity::Warn, detail, Some(fix))
    }

    /// A failure, with its fix.
    pub fn fail(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(check, Severity::Fail, detail, Some(fix))
    }

    fn new(
        check: impl Into<String>,
        severity: Severity,
        detail: impl Into<String>,
        fix: Option<impl Into<String>>,
    ) -> Self {
        Finding {
            check: check.into(),
            severity,
            detail: detail.into(),
            fix: fix.map(Into::into),
        }
    }
}

/// Listing and breaking holds, and checking the store's settings.
#[async_trait]
pub trait Inspect: Send + Sync + Debug {
    /// Every lock held right now whose name starts with `prefix` (all for `""`), in no
    /// particular order. A snapshot: holds may come and go while it is taken.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    async fn holders(&self, prefix: &str) -> Result<Vec<Holder>>;

    /// Forcibly frees `name`, whoever holds it: the broken holder's lost signal fires
    /// within its backstop, its `release` returns [`NotHeld`](crate::ErrorKind::NotHeld),
    /// and the next acquire gets a larger fencing token. Returns the holder it broke,
    /// `None` when the lock was free. Backends whose holds cannot be broken in a way the
    /// holder notices return [`Unsupported`](crate::ErrorKind::Unsupported) rather than
    /// break exclusion. Implementations call [`crate::observe::forced_release`].
    ///
    /// # Cancel safety
    /// Cancel safe: dropped midway, the hold is either broken or untouched.
    async fn break_lock(&self, name: &LockName) -> Result<Option<Holder>>;

    /// Reads the store's settings and reports what could make locks unsafe or slow.
    /// The default reports nothing.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    async fn doctor(&self) -> Result<Vec<Finding>> {
        Ok(Vec::new())
    }
}

/// The "clock skew" finding for a server clock read between `before` and `after` (this
/// host's clock) as `server` since the Unix epoch: WARN above a second (plus the round
/// trip), since leases, tokens or probes of some stores follow the server's wall clock.
pub fn clock_skew(
    before: std::time::SystemTime,
    server: Duration,
    after: std::time::SystemTime,
) -> Finding {
    const CHECK: &str = "clock skew";
    let since_epoch =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mid = (since_epoch(before) + since_epoch(after)) / 2;
    let skew = server.abs_diff(mid);
    let rtt = after.duration_since(before).unwrap_or_default();
    let detail = format!(
        "the server's clock differs from this host's by {skew:?} (± {:?})",
        rtt / 2
    );
    if skew > Duration::from_secs(1) + rtt {
        Finding::warn(CHECK, detail, "run NTP (slewing) on both hosts")
    } else {
        Finding::pass(CHECK, detail)
    }
}
