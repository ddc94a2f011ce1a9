//! Durations on the command line: `500ms`, `30s`, `2m`, `1h 30m` (humantime's syntax), or a
//! bare number of seconds (`1.5`), as `flock -w` and `timeout` read it.

use std::time::Duration;

/// Parses a duration; negative, NaN, infinite and out-of-range values are errors.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write e.g. 500ms, 30s or 2m".to_string());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| {
            format!("{text:?} is not a duration: seconds must be finite and not negative")
        });
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 500ms, 30s or 2m"))
}

/// Parses a duration that must not be zero (a lease, a grace period of a lease).
pub(crate) fn parse_positive(text: &str) -> Result<Duration, String> {
    match parse(text)? {
        d if d.is_zero() => Err("the duration must be greater than zero".to_string()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse("500ms"), Ok(ms(500)));
        assert_eq!(parse("30s"), Ok(ms(30_000)));
        assert_eq!(parse("2m"), Ok(ms(120_000)));
        assert_eq!(parse("1h 30m"), Ok(ms(5_400_000)));
        assert_eq!(parse("1.5"), Ok(ms(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn nonsense_is_rejected() {
        for bad in [
            "",
            " ",
            "-1",
            "-1s",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e30",
            "soon",
            "5 parsecs",
            "1..5",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_positive("0s").is_err());
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }
}
