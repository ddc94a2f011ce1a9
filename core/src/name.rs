//! Lock names: validation and the injective encodings backends share.
//!
//! Any non-empty UTF-8 string is a valid name and distinct names are distinct locks. Stores
//! have limits (MySQL: 64 characters, case-insensitive; ZooKeeper: path segments; Redis
//! Cluster: hash tags), so backends encode names with the helpers here instead of
//! truncating or passing them raw.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{LockError, Result};

/// A validated lock name (non-empty UTF-8).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockName(String);

impl LockName {
    /// Validates `name`. The only invalid name is the empty one.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(LockError::invalid_name("a lock name must not be empty"));
        }
        Ok(LockName(name))
    }

    /// The name as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Percent-escapes every byte outside `[A-Za-z0-9_-]`, giving a string that is safe as
    /// one path segment, file name, key part or channel name, and is injective.
    pub fn escaped(&self) -> String {
        escape(&self.0)
    }

    /// A store-safe name of at most `max_len` ASCII characters: a readable, lower-cased
    /// prefix and a 128-bit SHA-256 digest of the exact name. The digest keeps names that
    /// differ only in case, or beyond the prefix, distinct on stores that fold case or
    /// limit length. `max_len` must be at least 33; smaller values are raised to 33.
    pub fn hashed(&self, max_len: usize) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut hex = String::with_capacity(32);
        for b in &digest[..16] {
            push_hex(&mut hex, *b, b"0123456789abcdef");
        }
        let room = max_len.max(hex.len() + 1) - hex.len() - 1;
        let mut out = String::with_capacity(room.min(self.0.len()) + 1 + hex.len());
        out.extend(
            self.0
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .take(room),
        );
        out.push('.');
        out.push_str(&hex);
        out
    }
}

/// Two hex digits of `b` from `digits` (lower or upper case), without the formatting
/// machinery: names are hashed or escaped on every acquire.
fn push_hex(out: &mut String, b: u8, digits: &[u8; 16]) {
    out.push(char::from(digits[usize::from(b >> 4)]));
    out.push(char::from(digits[usize::from(b & 0xf)]));
}

fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push('%');
            push_hex(&mut out, b, b"0123456789ABCDEF");
        }
    }
    out
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for LockName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for LockName {
    type Error = LockError;
    fn try_from(value: &str) -> Result<Self> {
        LockName::new(value)
    }
}

impl TryFrom<String> for LockName {
    type Error = LockError;
    fn try_from(value: String) -> Result<Self> {
        LockName::new(value)
    }
}

impl TryFrom<&String> for LockName {
    type Error = LockError;
    fn try_from(value: &String) -> Result<Self> {
        LockName::new(value.as_str())
    }
}

impl TryFrom<&LockName> for LockName {
    type Error = LockError;
    fn try_from(value: &LockName) -> Result<Self> {
        Ok(value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::collections::HashSet;

    fn n(s: &str) -> LockName {
        LockName::new(s).unwrap()
    }

    #[test]
    fn empty_name_is_rejected() {
        assert_eq!(
            LockName::new("").unwrap_err().kind(),
            ErrorKind::InvalidName
        );
    }

    #[test]
    fn escaping_is_injective_and_path_safe() {
        let names = [
            "a/b", "a%2Fb", "a_b", "..", ".", "A", "a", "ünï", "a b", "a\0b",
        ];
        let escaped: HashSet<String> = names.iter().map(|s| n(s).escaped()).collect();
        assert_eq!(escaped.len(), names.len());
        for e in &escaped {
            assert!(e
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-%".contains(&b)));
        }
    }

    /// Stored names must not change between versions: clients of two versions of
    /// distlock on one store would otherwise not exclude each other (values from Python's
    /// `hashlib.sha256`).
    #[test]
    fn hashed_and_escaped_names_are_stable() {
        assert_eq!(
            n("Order-42").hashed(64),
            "order-42.993cc64b1b2878ed5d3c9c61c1099c73"
        );
        assert_eq!(
            n("a}{b:c/ d").hashed(64),
            "a__b_c__d.14aac9533b897ae24013eb288681f373"
        );
        assert_eq!(n("a}{b:c/ d").escaped(), "a%7D%7Bb%3Ac%2F%20d");
    }

    #[test]
    fn hashed_fits_and_keeps_case_and_long_names_distinct() {
        let long_a = "x".repeat(500) + "a";
        let long_b = "x".repeat(500) + "b";
        let names = [
            "Order",
            "order",
            "ORDER",
            long_a.as_str(),
            long_b.as_str(),
            "日本",
        ];
        let hashed: HashSet<String> = names.iter().map(|s| n(s).hashed(64)).collect();
        assert_eq!(hashed.len(), names.len());
        for h in &hashed {
            assert!(h.len() <= 64, "{h}");
            assert!(h.is_ascii());
        }
        assert!(n("Order-42").hashed(64).starts_with("order-42."));
        assert_eq!(n("abc").hashed(10).len(), 33);
    }
}
