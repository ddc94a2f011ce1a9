//! The backend's configuration and its URL form.

use std::fmt;
use std::time::Duration;

use distlock_core::{LockError, Result};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::ConnectOptions;
use url::Url;

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
    fn parse(value: &str) -> Result<Self> {
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

/// The database used when the URL names none; it is created on first use.
pub const DEFAULT_DATABASE: &str = "distlock";

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
    /// Set when the URL named no database: these options (without one) create
    /// [`DEFAULT_DATABASE`] on first use.
    pub(crate) bootstrap: Option<MySqlConnectOptions>,
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
    redacted: String,
}

/// Query parameters handed to sqlx (see `MySqlConnectOptions`'s URL form).
const SQLX_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslca",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "charset",
    "collation",
    "statement-cache-capacity",
    "socket",
    "timezone",
    "time-zone",
];

impl MySqlConfig {
    /// Settings from sqlx connect options, in [`Mode::GetLock`] with the default probe
    /// interval. If the options name no database, [`DEFAULT_DATABASE`] is used and created.
    pub fn new(options: MySqlConnectOptions) -> Self {
        let (options, bootstrap) = if options.get_database().is_none() {
            (options.clone().database(DEFAULT_DATABASE), Some(options))
        } else {
            (options, None)
        };
        let redacted = format!(
            "mysql://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        MySqlConfig {
            options,
            bootstrap,
            mode: Mode::GetLock,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            probe_timeout: default_probe_timeout(DEFAULT_PROBE_INTERVAL),
            wait_step: DEFAULT_WAIT_STEP,
            redacted,
        }
    }

    /// Parses `mysql://user:password@host:port/database?mode=get_lock&probe_interval=3s`
    /// (`mariadb://` is accepted too).
    ///
    /// Parameters of distlock: `mode` (`get_lock`, the default, or `row_lock`),
    /// `probe_interval` (`500ms`, `3s`, or seconds as a number; keep it well below the
    /// server's `wait_timeout`), `probe_timeout` and `wait_step` (see the fields).
    /// Parameters passed to sqlx: `ssl-mode` (`disabled`, `preferred` — the default —,
    /// `required`, `verify_ca`, `verify_identity`), `ssl-ca`, `ssl-cert`, `ssl-key`,
    /// `charset`, `collation`, `socket`, `timezone`, `statement-cache-capacity`. TLS needs one
    /// of this crate's features `tls-rustls` or `tls-native-tls`; without one, `preferred`
    /// connects in plain text and the stricter modes fail.
    ///
    /// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) and never contain
    /// the password.
    pub fn from_url(url: &str) -> Result<Self> {
        let mut parsed = Url::parse(url)
            .map_err(|e| LockError::config(format!("not a valid MySQL URL: {e}")))?;
        match parsed.scheme() {
            "mysql" | "mariadb" => {}
            other => {
                return Err(LockError::config(format!(
                    "unsupported URL scheme {other:?}: expected mysql://"
                )))
            }
        }
        if parsed.scheme() != "mysql" && parsed.set_scheme("mysql").is_err() {
            return Err(LockError::config("cannot use this URL as mysql://"));
        }
        let mut mode = Mode::GetLock;
        let mut probe_interval = DEFAULT_PROBE_INTERVAL;
        let mut probe_timeout = None;
        let mut wait_step = None;
        let mut passed = Vec::new();
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "mode" => mode = Mode::parse(&value)?,
                "probe_interval" | "probe-interval" => {
                    probe_interval = parse_duration("probe_interval", &value)?
                }
                "probe_timeout" | "probe-timeout" => {
                    probe_timeout = Some(parse_duration("probe_timeout", &value)?)
                }
                "wait_step" | "wait-step" => wait_step = Some(parse_duration("wait_step", &value)?),
                k if SQLX_PARAMS.contains(&k) => passed.push((key.to_string(), value.to_string())),
                other => {
                    return Err(LockError::config(format!(
                        "unknown MySQL URL parameter {other:?}"
                    )))
                }
            }
        }
        if probe_interval.is_zero() {
            return Err(LockError::config("probe_interval must be above zero"));
        }
        // Zero would time out every connect and statement at once.
        if probe_timeout.is_some_and(|t| t.is_zero()) {
            return Err(LockError::config("probe_timeout must be above zero"));
        }
        parsed.set_query(None);
        if !passed.is_empty() {
            parsed.query_pairs_mut().extend_pairs(passed);
        }
        // sqlx's parse errors name the offending value, never the whole URL.
        let options = MySqlConnectOptions::from_url(&parsed)
            .map_err(|e| LockError::config(format!("invalid MySQL URL: {e}")))?;
        let mut config = MySqlConfig::new(options);
        config.mode = mode;
        config.probe_interval = probe_interval;
        config.probe_timeout = probe_timeout.unwrap_or(default_probe_timeout(probe_interval));
        if let Some(step) = wait_step {
            config = config.with_wait_step(step);
        }
        Ok(config)
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

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }
}

fn default_probe_timeout(interval: Duration) -> Duration {
    (interval * 2).max(Duration::from_secs(5))
}

fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    let bad = || {
        LockError::config(format!(
            "{key}: {value:?} is not a duration like 500ms or 3s"
        ))
    };
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else {
        (value, 1.0)
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
}

impl fmt::Debug for MySqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConfig")
            .field("url", &self.redacted)
            .field("mode", &self.mode)
            .field("probe_interval", &self.probe_interval)
            .field("probe_timeout", &self.probe_timeout)
            .field("wait_step", &self.wait_step)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mode_probe_and_passes_tls_to_sqlx() {
        let c = MySqlConfig::from_url(
            "mysql://app:s3cret@db.example:3307/locks?mode=row_lock&probe_interval=250ms&wait_step=2s&ssl-mode=required",
        )
        .unwrap();
        assert_eq!(c.mode, Mode::RowLock);
        assert_eq!(c.probe_interval, Duration::from_millis(250));
        assert_eq!(c.probe_timeout, Duration::from_secs(5));
        assert_eq!(c.wait_step, Duration::from_secs(2));
        assert_eq!(c.options.get_port(), 3307);
        assert_eq!(c.options.get_database(), Some("locks"));
        assert!(matches!(
            c.options.get_ssl_mode(),
            sqlx::mysql::MySqlSslMode::Required
        ));
        assert!(c.bootstrap.is_none());
    }

    #[test]
    fn no_database_means_the_default_one_created_on_first_use() {
        let c = MySqlConfig::from_url("mysql://root@127.0.0.1:3307/").unwrap();
        assert_eq!(c.options.get_database(), Some(DEFAULT_DATABASE));
        assert!(c.bootstrap.is_some());
        assert_eq!(c.mode, Mode::GetLock);
        assert_eq!(c.probe_interval, DEFAULT_PROBE_INTERVAL);
    }

    #[test]
    fn mariadb_scheme_is_mysql() {
        let c = MySqlConfig::from_url("mariadb://app:pw@db:3308/locks?mode=row_lock").unwrap();
        assert_eq!(c.mode, Mode::RowLock);
        assert_eq!(c.options.get_port(), 3308);
        assert_eq!(c.options.get_database(), Some("locks"));
        assert_eq!(c.redacted_url(), "mysql://app@db:3308/locks");
    }

    #[test]
    fn a_zero_probe_timeout_is_refused() {
        let e = MySqlConfig::from_url("mysql://db/x?probe_timeout=0ms").unwrap_err();
        assert_eq!(e.kind(), distlock_core::ErrorKind::Config);
    }

    #[test]
    fn the_password_never_shows() {
        let c = MySqlConfig::from_url("mysql://app:hunter2pw@db:3306/x?probe_interval=2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2pw"));
        assert!(!c.redacted_url().contains("hunter2pw"));
        for bad in [
            "mysql://app:hunter2pw@db:3306/x?mode=nope",
            "mysql://app:hunter2pw@db:3306/x?probe_interval=soon",
            "mysql://app:hunter2pw@db:3306/x?pasword=oops",
            "mysql://app:hunter2pw@db:3306/x?ssl-mode=bogus",
            "postgres://app:hunter2pw@db:3306/x",
        ] {
            let e = MySqlConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), distlock_core::ErrorKind::Config, "{bad}");
            assert!(!format!("{e} {e:?}").contains("hunter2pw"), "{e:?}");
        }
    }
}
