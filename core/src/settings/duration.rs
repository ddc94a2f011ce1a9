//! Durations in URLs: always with a unit (see the module docs for why).

use std::time::Duration;

use crate::{LockError, Result};

/// The longest duration a URL may give: longer ones are mistakes, and arithmetic on them
/// (a timeout plus a grace, twice an interval) could overflow.
pub const MAX_URL_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Reads the duration parameter `key` = `value`: `500ms`, `30s`, `2m`, `1h 30m`
/// ([`humantime`] syntax). A bare number, a negative, or a value above
/// [`MAX_URL_DURATION`] (a year) is a [`Config`](crate::ErrorKind::Config) error naming `key`.
///
/// ```
/// use std::time::Duration;
/// use distlock_core::settings::parse_duration;
///
/// assert_eq!(parse_duration("ttl", "1500ms")?, Duration::from_millis(1500));
/// assert_eq!(parse_duration("ttl", "2m")?, Duration::from_secs(120));
/// assert!(parse_duration("ttl", "2000").is_err()); // which unit? refused
/// # Ok::<(), distlock_core::LockError>(())
/// ```
pub fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(LockError::config(format!(
            "{key}={value} has no unit: write it as {value}ms or {value}s (durations in URLs \
             always carry a unit)"
        )));
    }
    let duration = humantime::parse_duration(value).map_err(|e| {
        LockError::config(format!(
            "{key} must be a duration such as 500ms, 30s or 2m, not {value:?} ({e})"
        ))
    })?;
    if duration > MAX_URL_DURATION {
        return Err(LockError::config(format!(
            "{key}={value} is longer than a year"
        )));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn units_are_read() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1m 30s", Duration::from_secs(90)),
            (" 2s ", Duration::from_secs(2)),
            ("0s", Duration::ZERO),
            ("1.5s", Duration::from_millis(1500)),
        ] {
            assert_eq!(parse_duration("k", text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bare_numbers_negatives_garbage_and_overflow_are_config_errors() {
        for text in [
            "2000",
            "3",
            "1.5",
            "",
            "-1s",
            "soon",
            "NaNs",
            "infs",
            "99999999999999999999s",
            "18446744073709551616s",
            "18446744073709551615s",
            "367days",
            "5 parsecs",
        ] {
            let e = parse_duration("session_timeout", text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{text}");
            assert!(e.to_string().contains("session_timeout"), "{e}");
        }
        let e = parse_duration("probe_interval", "3").unwrap_err();
        assert!(e.to_string().contains("3s"), "{e}");
    }
}
