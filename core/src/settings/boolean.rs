//! Booleans in URLs.

use crate::{LockError, Result};

/// Reads the boolean parameter `key` = `value`: `true`/`false`, `yes`/`no`, `on`/`off`,
/// `1`/`0`, in any case. Anything else is a [`Config`](crate::ErrorKind::Config) error.
pub fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(LockError::config(format!(
            "{key} must be true or false, not {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_spellings() {
        for yes in ["true", "TRUE", "Yes", "on", "1"] {
            assert!(parse_bool("k", yes).unwrap(), "{yes}");
        }
        for no in ["false", "No", "OFF", "0"] {
            assert!(!parse_bool("k", no).unwrap(), "{no}");
        }
        for bad in ["", "2", "maybe", "truee"] {
            let e = parse_bool("renew", bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            assert!(e.to_string().contains("renew"));
        }
    }
}
