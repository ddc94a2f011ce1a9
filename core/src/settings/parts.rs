//! Cutting a lock URL into its parts, the same way for every backend.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::settings::percent_decode;
use crate::{LockError, Result};

/// The lower-cased scheme of `url` (`REDIS://h` → `redis`), if it has a well-formed one.
/// Schemes are case-insensitive (RFC 3986), so backends compare this with their list.
pub fn scheme_of(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    well_formed.then(|| scheme.to_ascii_lowercase())
}

/// A lock URL `scheme://[user[:password]@]hosts[/path][?query]`, cut into its raw parts.
///
/// The user information ends at the **last** `@`, found before anything else is looked at:
/// a password holding `?`, `/`, `#`, `:` or `@` unescaped stays whole and secret, and no
/// part of it is read as a host, path or parameter (an `@` in a parameter value must be
/// written `%40`). Errors never quote the user information.
///
/// ```
/// use distlock_core::settings::UrlParts;
///
/// let url = UrlParts::parse("ZK://app:Sup3r?S3cret@h1:2181,h2:2181/prod?root=/locks")?;
/// assert_eq!(url.scheme(), "zk");
/// assert_eq!(url.user()?.as_deref(), Some("app"));
/// assert_eq!(url.password()?.as_deref(), Some("Sup3r?S3cret"));
/// assert_eq!(url.hosts(), "h1:2181,h2:2181");
/// assert_eq!(url.path(), "/prod");
/// assert_eq!(url.query_pairs()?, [("root".to_string(), "/locks".to_string())]);
/// # Ok::<(), distlock_core::LockError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    scheme: String,
    userinfo: Option<&'a str>,
    hosts: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    /// Cuts `url` into parts. Errors are of kind [`Config`](crate::ErrorKind::Config).
    pub fn parse(url: &'a str) -> Result<Self> {
        let scheme = scheme_of(url).ok_or_else(|| {
            LockError::config(
                "a lock URL starts with scheme:// (redis://, zk://, mysql://, file://, …)",
            )
        })?;
        let rest = &url[scheme.len() + 3..];
        let (userinfo, after) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        if after.contains('#') {
            return Err(LockError::config(
                "a lock URL has no #fragment (write '#' in a value as %23)",
            ));
        }
        let (before_query, query) = match after.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (after, None),
        };
        let (hosts, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };
        Ok(UrlParts {
            scheme,
            userinfo,
            hosts,
            path,
            query,
        })
    }

    /// The scheme, lower-cased.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The percent-decoded user name, if the URL has user information.
    pub fn user(&self) -> Result<Option<String>> {
        self.userinfo
            .map(|u| percent_decode("user name", u.split_once(':').map_or(u, |(user, _)| user)))
            .transpose()
    }

    /// The percent-decoded password, if the user information has a `:`.
    pub fn password(&self) -> Result<Option<String>> {
        self.userinfo
            .and_then(|u| u.split_once(':'))
            .map(|(_, password)| percent_decode("password", password))
            .transpose()
    }

    /// The user information re-escaped for a strict URL parser (`user:password@`, every
    /// byte outside `[A-Za-z0-9]` percent-encoded), or empty without one: what this type
    /// read as the user and password reaches a driver unchanged, even when the password
    /// holds `?`, `/` or `@`. Never print it.
    pub fn escaped_userinfo(&self) -> Result<String> {
        let escape = |part: &str| utf8_percent_encode(part, NON_ALPHANUMERIC).to_string();
        Ok(match (self.user()?, self.password()?) {
            (Some(user), Some(password)) => format!("{}:{}@", escape(&user), escape(&password)),
            (Some(user), None) => format!("{}@", escape(&user)),
            _ => String::new(),
        })
    }

    /// Whether the URL has user information (`…@`).
    pub fn has_userinfo(&self) -> bool {
        self.userinfo.is_some()
    }

    /// The raw user information, for handing to a driver only. Never print it.
    pub fn raw_userinfo(&self) -> Option<&'a str> {
        self.userinfo
    }

    /// The raw `host:port[,host:port…]` list (may be empty).
    pub fn hosts(&self) -> &'a str {
        self.hosts
    }

    /// The raw path, starting with `/` (or empty).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The raw query, without its `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The query's `key=value` pairs, both percent-decoded (`+` is kept as is). A key
    /// without `=` has an empty value.
    pub fn query_pairs(&self) -> Result<Vec<(String, String)>> {
        self.query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Ok((
                    percent_decode("parameter name", key)?,
                    percent_decode("parameter value", value)?,
                ))
            })
            .collect()
    }
}

impl std::fmt::Debug for UrlParts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlParts")
            .field("scheme", &self.scheme)
            .field("userinfo", &self.userinfo.map(|_| "<redacted>"))
            .field("hosts", &self.hosts)
            .field("path", &self.path)
            .field("query", &self.query)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_case_insensitive_and_well_formed() {
        assert_eq!(scheme_of("REDIS://h").as_deref(), Some("redis"));
        assert_eq!(
            scheme_of("Redis+Cluster://h").as_deref(),
            Some("redis+cluster")
        );
        assert_eq!(scheme_of("file:///tmp").as_deref(), Some("file"));
        assert_eq!(scheme_of("h:1"), None);
        assert_eq!(scheme_of("://h"), None);
        assert_eq!(scheme_of("1x://h"), None);
        assert_eq!(scheme_of("a b://h"), None);
    }

    #[test]
    fn the_last_at_ends_the_user_information() {
        let u = UrlParts::parse("zk://u:p@ss/w?rd#x@h:1/c?session_timeout=2s").unwrap();
        assert_eq!(u.password().unwrap().as_deref(), Some("p@ss/w?rd#x"));
        assert_eq!(u.escaped_userinfo().unwrap(), "u:p%40ss%2Fw%3Frd%23x@");
        assert_eq!(u.hosts(), "h:1");
        assert_eq!(u.path(), "/c");
        assert_eq!(u.query(), Some("session_timeout=2s"));
        let u = UrlParts::parse("redis://h:1").unwrap();
        assert!(!u.has_userinfo());
        assert_eq!(u.user().unwrap(), None);
        assert_eq!((u.hosts(), u.path(), u.query()), ("h:1", "", None));
        let u = UrlParts::parse("mysql://root@h/db").unwrap();
        assert_eq!(u.user().unwrap().as_deref(), Some("root"));
        assert_eq!(u.password().unwrap(), None);
    }

    #[test]
    fn query_pairs_are_decoded_and_errors_quote_no_secret() {
        let u = UrlParts::parse("x://h/?a=1&b&c=%2Fd&&").unwrap();
        assert_eq!(
            u.query_pairs().unwrap(),
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), String::new()),
                ("c".to_string(), "/d".to_string())
            ]
        );
        let e = UrlParts::parse("x://u:s3cret#1@h/#frag").unwrap_err();
        assert!(!format!("{e:?}").contains("s3cret"));
        let u = UrlParts::parse("x://u:s3cret%zz@h/").unwrap();
        assert!(!format!("{:?} {:?}", u.password(), u).contains("s3cret"));
    }
}
