//! The backend's settings. Their URL form is read in `url.rs`.

use std::fmt;
use std::time::Duration;

use distlock_core::{LockError, Result};
use sqlx::mysql::MySqlConnectOptions;

/// How locks are taken on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `GET_LOCK(name, timeout)`: a named session lock, waited for by the server. Needs no
    /// table for the lock itself (a counter table holds the fencing tokens).
    GetLock,
    /// `SELECT … FOR UPDATE` on the name's row of a locks table, inside a transaction that
    /// stays open while the lock is held.
    RowLock,
}

impl Mode {
    pub(crate) fn parse(value: &str) -> Result<Self> {
        match value {
            "get_lock" | "get-lock" | "getlock" => Ok(Mode::GetLock),
            "row_lock" | "row-lock" | "rowlock" => Ok(Mode::RowLock),
            other => Err(LockError::config(format!(
                "unknown mode {other:?}: expected get_lock or row_lock"
            ))),
        }
    }
}

/// The default interval between two probes of a held lock's connection.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(3);

/// The default longest single server-side wait ([`MySqlConfig::wait_step`]).
pub const DEFAULT_WAIT_STEP: Duration = Duration::from_secs(60);

/// Connection settings for [`MySqlLock`](crate::MySqlLock).
///
/// Build it from a URL with [`MySqlConfig::from_url`], or from sqlx's
/// [`MySqlConnectOptions`] with [`MySqlConfig::new`] (that is where TLS settings such as
/// [`MySqlConnectOptions::ssl_mode`] go when not given in the URL).
///
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct MySqlConfig {
    pub(crate) options: MySqlConnectOptions,
    /// The mode.
    pub mode: Mode,
    /// How often a held lock's connection is probed; a failed probe fires the lost signal.
    pub probe_interval: Duration,
    /// How long a connect, a probe, a release or any other statement that should be quick
    /// may take before the server counts as unreachable (a held lock is then reported lost).
    /// Lock waits are bounded by their own limit plus this.
    pub probe_timeout: Duration,
    /// The longest single server-side wait. Waiting forever repeats waits of this length
    /// (never a negative `GET_LOCK` timeout, which MySQL and MariaDB read differently);
    /// row-lock mode rounds it to whole seconds, at least one. Default 60 s.
    pub wait_step: Duration,
    /// Whether acquires draw fencing tokens (default `true`). Off, a guard has no token,
    /// [`capabilities`](distlock_core::DistributedLock::capabilities) say no fencing, and
    /// an acquire saves the counter's write (a round trip and a durable commit, that is an
    /// fsync with `innodb_flush_log_at_trx_commit=1`); in row-lock mode it also skips
    /// recording the holder in `distlock_locks`.
    pub fencing: bool,
    redacted: String,
}

impl MySqlConfig {
    /// Settings from sqlx connect options, in [`Mode::GetLock`] with the default probe
    /// interval. The options must name a database (that exists): the first acquire fails
    /// with a [`Config`](distlock_core::ErrorKind::Config) error otherwise. distlock never
    /// creates a database.
    pub fn new(options: MySqlConnectOptions) -> Self {
        let redacted = format!(
            "mysql://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        MySqlConfig {
            options,
            mode: Mode::GetLock,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            probe_timeout: default_probe_timeout(DEFAULT_PROBE_INTERVAL),
            wait_step: DEFAULT_WAIT_STEP,
            fencing: true,
            redacted,
        }
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the probe interval (and, unless set later, a probe timeout to match).
    pub fn with_probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval.max(Duration::from_millis(1));
        self.probe_timeout = default_probe_timeout(self.probe_interval);
        self
    }

    /// Turns fencing tokens on (the default) or off; see [`MySqlConfig::fencing`].
    pub fn with_fencing(mut self, on: bool) -> Self {
        self.fencing = on;
        self
    }

    /// Sets the longest single server-side wait.
    pub fn with_wait_step(mut self, step: Duration) -> Self {
        self.wait_step = step.max(Duration::from_millis(10));
        self
    }

    /// Sets how long a connect, probe, release or other quick statement may take.
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// The sqlx connect options (they contain the password: do not print them).
    pub fn connect_options(&self) -> &MySqlConnectOptions {
        &self.options
    }

    /// `host:port` of the server, for messages.
    pub(crate) fn address(&self) -> String {
        format!("{}:{}", self.options.get_host(), self.options.get_port())
    }

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }
}

pub(crate) fn default_probe_timeout(interval: Duration) -> Duration {
    interval.saturating_mul(2).max(Duration::from_secs(5))
}

impl fmt::Debug for MySqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConfig")
            .field("url", &self.redacted)
            .field("mode", &self.mode)
            .field("probe_interval", &self.probe_interval)
            .field("probe_timeout", &self.probe_timeout)
            .field("wait_step", &self.wait_step)
            .field("fencing", &self.fencing)
            .finish_non_exhaustive()
    }
}
