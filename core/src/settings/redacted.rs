//! A URL that can be shown: its password is gone before it is stored.

use std::fmt;

/// A lock URL with its password replaced by `***`, for messages, logs and `Debug`.
///
/// Only the redacted text is stored, so no formatting of this type can ever reveal the
/// password, whatever characters it holds: everything from `://` to the **last** `@` is
/// user information, of which only the user name (up to the first `:`) is kept. Values of
/// query parameters whose name mentions a password, secret or token are hidden too.
/// Text without `://` keeps only what follows its last `@`.
///
/// ```
/// use distlock_core::settings::RedactedUrl;
///
/// let shown = RedactedUrl::new("zk://u:Sup3r?S3cret@host:1/app").to_string();
/// assert_eq!(shown, "zk://u:***@host:1/app");
/// assert_eq!(RedactedUrl::new("mysql://root@db/x").as_str(), "mysql://root@db/x");
/// assert_eq!(RedactedUrl::new("redis://h:1/?password=hunter2").as_str(), "redis://h:1/?password=***");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// Redacts `url` (any text: it need not be a valid URL).
    pub fn new(url: &str) -> Self {
        let (head, rest) = match url.find("://") {
            Some(i) => (&url[..i + 3], &url[i + 3..]),
            None => ("", url),
        };
        let (userinfo, after) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let mut shown = String::with_capacity(url.len());
        shown.push_str(head);
        match userinfo {
            Some(info) if !head.is_empty() => match info.split_once(':') {
                Some((user, _)) => {
                    shown.push_str(user);
                    shown.push_str(":***@");
                }
                None => {
                    shown.push_str(info);
                    shown.push('@');
                }
            },
            Some(_) => shown.push_str("***@"),
            None => {}
        }
        shown.push_str(&redact_secret_params(after));
        RedactedUrl(shown)
    }

    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hides the values of `password=`, `secret=`, `token=`-like parameters.
fn redact_secret_params(after: &str) -> String {
    let Some((base, query)) = after.split_once('?') else {
        return after.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "auth", "key"]
        .iter()
        .any(|word| key.contains(word))
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_survives_whatever_it_holds() {
        for (url, want) in [
            ("zk://u:Sup3r?S3cret@host:1", "zk://u:***@host:1"),
            ("redis://:S3cret@h:1/0", "redis://:***@h:1/0"),
            ("redis://u:S3c@r/e#t@h:1/0", "redis://u:***@h:1/0"),
            (
                "mysql://app:S3c:ret@db:3306/x?mode=row_lock",
                "mysql://app:***@db:3306/x?mode=row_lock",
            ),
            ("u:S3cret@h:1", "***@h:1"),
            ("file:///tmp/x", "file:///tmp/x"),
            ("mysql://root@db/x", "mysql://root@db/x"),
            (
                "redis://h/?auth_token=S3cret&prefix=a",
                "redis://h/?auth_token=***&prefix=a",
            ),
        ] {
            let shown = RedactedUrl::new(url);
            assert_eq!(shown.as_str(), want, "{url}");
            assert!(!format!("{shown} {shown:?}").contains("S3c"), "{url}");
        }
    }
}
