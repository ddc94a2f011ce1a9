//! The `mysql://` URL form of [`MySqlConfig`].

use distlock_core::settings::{parse_bool, parse_duration, UrlParts};
use distlock_core::{LockError, Result};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::ConnectOptions;
use url::Url;

use crate::config::{default_probe_timeout, Mode, MySqlConfig, DEFAULT_PROBE_INTERVAL};

/// The URL schemes of this backend (compared case-insensitively).
pub const SCHEMES: &[&str] = &["mysql", "mariadb"];

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
    /// Parses `mysql://user:password@host:port/database?mode=get_lock&probe_interval=3s`
    /// (`mariadb://` is accepted too; schemes are case-insensitive).
    ///
    /// The host and the database are required: distlock never falls back to
    /// `root@localhost:3306` and never creates a database (create it, and grant the account
    /// the privileges listed in the crate docs). The user information ends at the last
    /// `@`, so a password may hold `?`, `/` or `@` unescaped.
    ///
    /// Parameters of distlock: `mode` (`get_lock`, the default, or `row_lock`),
    /// `probe_interval` (a duration with its unit, `500ms` or `3s`, see
    /// [`distlock_core::settings`]; keep it well below the server's `wait_timeout`),
    /// `probe_timeout` and `wait_step` (see the fields), `fencing` (`on`, the default, or
    /// `off`: guards carry no fencing token and an acquire saves the counter's durable
    /// write; see [`MySqlConfig::fencing`]).
    /// Parameters passed to sqlx: `ssl-mode` (`disabled`, `preferred` — the default —,
    /// `required`, `verify_ca`, `verify_identity`), `ssl-ca`, `ssl-cert`, `ssl-key`,
    /// `charset`, `collation`, `socket`, `timezone`, `statement-cache-capacity`. TLS needs one
    /// of this crate's features `tls-rustls` or `tls-native-tls`; without one, `preferred`
    /// connects in plain text and the stricter modes fail.
    ///
    /// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) and never contain
    /// the password.
    pub fn from_url(url: &str) -> Result<Self> {
        let parts = UrlParts::parse(url)?;
        if !SCHEMES.contains(&parts.scheme()) {
            return Err(LockError::config(format!(
                "unsupported URL scheme {:?}: expected mysql://",
                parts.scheme()
            )));
        }
        if parts.hosts().is_empty() || parts.hosts().starts_with(':') {
            return Err(LockError::config(
                "a MySQL URL names its server: mysql://user:password@host:port/database",
            ));
        }
        if parts.path().trim_matches('/').is_empty() {
            return Err(LockError::config(
                "a MySQL URL names its database (mysql://user:password@host:port/database); \
                 distlock never creates one",
            ));
        }
        let mut mode = Mode::GetLock;
        let mut probe_interval = DEFAULT_PROBE_INTERVAL;
        let mut probe_timeout = None;
        let mut wait_step = None;
        let mut fencing = true;
        let mut passed = Vec::new();
        for (key, value) in parts.query_pairs()? {
            match key.as_str() {
                "mode" => mode = Mode::parse(&value)?,
                "probe_interval" | "probe-interval" => {
                    probe_interval = parse_duration("probe_interval", &value)?
                }
                "probe_timeout" | "probe-timeout" => {
                    probe_timeout = Some(parse_duration("probe_timeout", &value)?)
                }
                "wait_step" | "wait-step" => wait_step = Some(parse_duration("wait_step", &value)?),
                "fencing" => fencing = parse_bool("fencing", &value)?,
                k if SQLX_PARAMS.contains(&k) => passed.push((key, value)),
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
        // Rebuilt for sqlx with the user information re-escaped, so that what the last-'@'
        // rule read as the password reaches the server unchanged.
        let userinfo = parts.escaped_userinfo()?;
        let mut parsed = Url::parse(&format!(
            "mysql://{userinfo}{}{}",
            parts.hosts(),
            parts.path()
        ))
        .map_err(|e| LockError::config(format!("not a valid MySQL URL: {e}")))?;
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
        config.fencing = fencing;
        if let Some(step) = wait_step {
            config = config.with_wait_step(step);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;
    use std::time::Duration;

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
    }

    /// Issue 10: a bare `mysql://` connected as root to localhost:3306 and created a
    /// database.
    #[test]
    fn the_server_and_the_database_must_be_named() {
        for url in [
            "mysql://",
            "mysql:///",
            "mysql://root@127.0.0.1:3307/",
            "mysql://root@127.0.0.1:3307",
            "mysql://root@:3307/x",
            "mysql:///x",
        ] {
            let e = MySqlConfig::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
        }
        let e = MySqlConfig::from_url("mysql://root@127.0.0.1:3307/").unwrap_err();
        assert!(e.to_string().contains("database"), "{e}");
    }

    #[test]
    fn mariadb_and_upper_case_schemes_are_mysql() {
        let c = MySqlConfig::from_url("mariadb://app:pw@db:3308/locks?mode=row_lock").unwrap();
        assert_eq!(c.mode, Mode::RowLock);
        assert_eq!(c.options.get_port(), 3308);
        assert_eq!(c.options.get_database(), Some("locks"));
        assert_eq!(c.redacted_url(), "mysql://app@db:3308/locks");
        let c = MySqlConfig::from_url("MySQL://app:pw@db:3308/locks").unwrap();
        assert_eq!(c.options.get_database(), Some("locks"));
    }

    #[test]
    fn durations_need_a_unit() {
        let e = MySqlConfig::from_url("mysql://db/x?probe_interval=3").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("unit"), "{e}");
        let c = MySqlConfig::from_url("mysql://db/x?probe_interval=3s").unwrap();
        assert_eq!(c.probe_interval, Duration::from_secs(3));
    }

    #[test]
    fn fencing_can_be_turned_off_per_client() {
        let base = "mysql://app:pw@db:3306/locks";
        assert!(MySqlConfig::from_url(base).unwrap().fencing);
        let off = MySqlConfig::from_url(&format!("{base}?fencing=off")).unwrap();
        assert!(!off.fencing);
        let e = MySqlConfig::from_url(&format!("{base}?fencing=maybe")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn a_zero_probe_timeout_is_refused() {
        let e = MySqlConfig::from_url("mysql://db/x?probe_timeout=0ms").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn a_password_with_url_delimiters_reaches_sqlx_whole() {
        let c = MySqlConfig::from_url("mysql://app:Sup3r?S3c/r@t@db:3306/x?mode=row_lock").unwrap();
        assert_eq!(c.options.get_host(), "db");
        assert_eq!(c.options.get_username(), "app");
        assert_eq!(c.mode, Mode::RowLock);
        assert!(!format!("{c:?}").contains("S3c"));
    }

    #[test]
    fn the_password_never_shows() {
        let c = MySqlConfig::from_url("mysql://app:hunter2pw@db:3306/x?probe_interval=2s").unwrap();
        assert!(!format!("{c:?}").contains("hunter2pw"));
        assert!(!c.redacted_url().contains("hunter2pw"));
        for bad in [
            "mysql://app:hunter2pw@db:3306/x?mode=nope",
            "mysql://app:hunter2pw@db:3306/x?probe_interval=soon",
            "mysql://app:hunter2pw@db:3306/x?pasword=oops",
            "mysql://app:hunter2pw@db:3306/x?ssl-mode=bogus",
            "mysql://app:hunter2pw@db:3306/",
            "mysql://app:hunter2pw@db:99999/x",
            "postgres://app:hunter2pw@db:3306/x",
        ] {
            let e = MySqlConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!format!("{e} {e:?}").contains("hunter2pw"), "{e:?}");
        }
    }
}
