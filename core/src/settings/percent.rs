//! Percent-escapes (`%40` for `@`) in URL parts.

use crate::{LockError, Result};

/// Decodes the `%XX` escapes of `part`, a URL part called `what` in errors. A `%` not
/// followed by two hex digits, or bytes that are not UTF-8 once decoded, are a
/// [`Config`](crate::ErrorKind::Config) error. The error never quotes `part`, which may be a
/// password.
pub fn percent_decode(what: &str, part: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(LockError::config(format!(
            "the {what} has a '%' that is not followed by two hex digits (write '%' as %25)"
        )));
    }
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| LockError::config(format!("the {what} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_broken_escapes_without_quoting() {
        assert_eq!(percent_decode("p", "a%40b%3Ac%25").unwrap(), "a@b:c%");
        assert_eq!(percent_decode("p", "plain").unwrap(), "plain");
        assert_eq!(percent_decode("p", "%C3%A9").unwrap(), "é");
        for bad in ["s3cret%", "s3cret%z1", "s3cret%1", "s3cret%FF"] {
            let e = percent_decode("password", bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }
}
