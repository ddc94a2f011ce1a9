//! The lock URL and its password from the environment, so that no secret needs to be on a
//! command line (where `ps` shows it to every user of the machine).
//!
//! | variable | holds |
//! |---|---|
//! | `DISTLOCK_URL` | the lock URL, as [`connect`](crate::connect) takes it |
//! | `DISTLOCK_PASSWORD` | the store's password; replaces the URL's password |
//! | `DISTLOCK_PASSWORD_FILE` | a file holding the password (one trailing newline is dropped) |
//!
//! Setting both password variables is an error, as in the Docker images' `_FILE`
//! convention; an empty variable counts as unset. `file://` and `memory://` URLs have no
//! password: the password variables are ignored for them.

use std::ffi::OsString;
use std::path::PathBuf;

use distlock_core::{DistributedLock, LockError, Result};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The variable that holds the lock URL.
pub const URL_VAR: &str = "DISTLOCK_URL";
/// The variable that holds the store's password.
pub const PASSWORD_VAR: &str = "DISTLOCK_PASSWORD";
/// The variable that names a file holding the store's password.
pub const PASSWORD_FILE_VAR: &str = "DISTLOCK_PASSWORD_FILE";

/// Everything but RFC 3986's unreserved characters is percent-encoded in a password, so
/// that `@`, `:`, `/`, `?`, `#` and `%` in it cannot change how the URL is read.
const PASSWORD_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Connects to the backend `DISTLOCK_URL` names, with the password from
/// `DISTLOCK_PASSWORD` or `DISTLOCK_PASSWORD_FILE` when one is set (see the
/// [module docs](self)).
///
/// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) when `DISTLOCK_URL` is
/// unset, empty or not UTF-8, when both password variables are set, or when the password
/// file cannot be read; otherwise they are [`connect`](crate::connect)'s. No error contains
/// the password.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock::Result<()> {
/// use distlock::LockExt;
/// // DISTLOCK_URL=redis://app@cache:6379/0 DISTLOCK_PASSWORD_FILE=/run/secrets/redis
/// let locks = distlock::connect_from_env().await?;
/// let guard = locks.acquire("nightly-report").await?;
/// guard.release().await?;
/// # Ok(()) }
/// ```
///
/// # Cancel safety
/// Cancel safe: a dropped connect leaves no lock behind (it holds none yet).
pub async fn connect_from_env() -> Result<Box<dyn DistributedLock>> {
    let url = url_from(&|name| std::env::var_os(name))?;
    crate::connect(&url_with_password_from_env(&url)?).await
}

/// `url` with its password replaced by the one in `DISTLOCK_PASSWORD` or
/// `DISTLOCK_PASSWORD_FILE`, percent-encoded; `url` unchanged when neither is set or when
/// its scheme takes no password (`file`, `memory`). For programs that take the URL from
/// their own command line (as the `distlock` command does with `--url`) but keep the
/// password out of it.
///
/// ```
/// // With neither password variable set, the URL comes back as it was.
/// # if std::env::var_os("DISTLOCK_PASSWORD").is_none() && std::env::var_os("DISTLOCK_PASSWORD_FILE").is_none() {
/// let url = distlock::url_with_password_from_env("redis://app@127.0.0.1:6379/0")?;
/// assert_eq!(url, "redis://app@127.0.0.1:6379/0");
/// # }
/// # Ok::<(), distlock::LockError>(())
/// ```
///
/// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) and never contain the
/// password.
pub fn url_with_password_from_env(url: &str) -> Result<String> {
    match password_from(&|name| std::env::var_os(name))? {
        Some(password) => url_with_password(url, &password),
        None => Ok(url.to_string()),
    }
}

/// `url` with `password` (percent-encoded) in place of its own, keeping the user name:
/// `redis://app:old@h:6379/0` → `redis://app:NEW@h:6379/0`. Works on multi-host URLs
/// (`redis+redlock://a:1,b:2/`, `zk://a:2181,b:2181/`). `file` and `memory` URLs come back
/// unchanged.
///
/// ```
/// let url = distlock::url_with_password("mysql://app@db:3306/shop", "p@ss:w/rd?#%")?;
/// assert_eq!(url, "mysql://app:p%40ss%3Aw%2Frd%3F%23%25@db:3306/shop");
/// # Ok::<(), distlock::LockError>(())
/// ```
///
/// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) for a string without
/// `scheme://`, and never contain the password.
pub fn url_with_password(url: &str, password: &str) -> Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(LockError::config(
            "a lock URL must start with scheme:// (file, memory, redis, zk, mysql)",
        ));
    };
    if ["file", "memory"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return Ok(url.to_string());
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (user, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (
            userinfo.split_once(':').map_or(userinfo, |(user, _)| user),
            hosts,
        ),
        None => ("", authority),
    };
    let password = utf8_percent_encode(password, PASSWORD_ENCODE);
    Ok(format!("{scheme}://{user}:{password}@{hosts}{tail}"))
}

/// `DISTLOCK_URL` through `lookup`.
fn url_from(lookup: &dyn Fn(&str) -> Option<OsString>) -> Result<String> {
    match lookup(URL_VAR) {
        None => Err(LockError::config(format!(
            "{URL_VAR} is not set; set it to a lock URL such as redis://host:6379/0, \
             zk://host:2181 or file:///var/lock/myapp"
        ))),
        Some(v) if v.is_empty() => Err(LockError::config(format!("{URL_VAR} is empty"))),
        Some(v) => v
            .into_string()
            .map_err(|_| LockError::config(format!("{URL_VAR} is not valid UTF-8"))),
    }
}

/// The password the environment gives through `lookup`, if any (see the module docs).
fn password_from(lookup: &dyn Fn(&str) -> Option<OsString>) -> Result<Option<String>> {
    let set = |name| lookup(name).filter(|v| !v.is_empty());
    match (set(PASSWORD_VAR), set(PASSWORD_FILE_VAR)) {
        (Some(_), Some(_)) => Err(LockError::config(format!(
            "both {PASSWORD_VAR} and {PASSWORD_FILE_VAR} are set; set only one"
        ))),
        (Some(password), None) => password
            .into_string()
            .map(Some)
            .map_err(|_| LockError::config(format!("{PASSWORD_VAR} is not valid UTF-8"))),
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                LockError::config(format!(
                    "cannot read the password file {} ({PASSWORD_FILE_VAR})",
                    path.display()
                ))
                .with_source(e)
            })?;
            let password = text
                .strip_suffix('\n')
                .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            Ok(Some(password.to_string()))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;

    const NASTY: &str = "p@ss:w/rd?#%";

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    /// Decodes the password back the way the backends' URL parsers do.
    fn password_of(url: &str) -> String {
        let parsed = url::Url::parse(url).unwrap();
        percent_encoding::percent_decode_str(parsed.password().unwrap())
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    #[test]
    fn a_password_with_special_characters_survives_the_round_trip() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "redis://app@127.0.0.1:6379/0",
            "redis://app:old%40pw@127.0.0.1:6379/0",
            "mysql://root:x@127.0.0.1:3306/db?mode=row_lock",
            "zk://user@127.0.0.1:2181/chroot?session_timeout=2s",
        ] {
            let with = url_with_password(url, NASTY).unwrap();
            assert_eq!(password_of(&with), NASTY, "{url} -> {with}");
            let parsed = url::Url::parse(&with).unwrap();
            let original = url::Url::parse(url).unwrap();
            assert_eq!(parsed.host_str(), original.host_str(), "{with}");
            assert_eq!(parsed.port(), original.port(), "{with}");
            assert_eq!(parsed.path(), original.path(), "{with}");
            assert_eq!(parsed.query(), original.query(), "{with}");
            assert_eq!(parsed.username(), original.username(), "{with}");
        }
    }

    #[test]
    fn multi_host_urls_keep_their_hosts() {
        assert_eq!(
            url_with_password("redis+redlock://:old@a:1,b:2,c:3/0", "s3cret").unwrap(),
            "redis+redlock://:s3cret@a:1,b:2,c:3/0"
        );
        assert_eq!(
            url_with_password("zk://a:2181,b:2181", "pw").unwrap(),
            "zk://:pw@a:2181,b:2181"
        );
    }

    #[test]
    fn file_and_memory_urls_take_no_password() {
        for url in ["file:///tmp/locks", "FILE:///tmp/locks", "memory://x"] {
            assert_eq!(url_with_password(url, "pw").unwrap(), url);
        }
        assert_eq!(
            url_with_password("no-scheme", NASTY).unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn the_password_comes_from_the_variable_or_the_file() {
        assert_eq!(password_from(&env(&[])).unwrap(), None);
        assert_eq!(password_from(&env(&[(PASSWORD_VAR, "")])).unwrap(), None);
        assert_eq!(
            password_from(&env(&[(PASSWORD_VAR, NASTY)])).unwrap(),
            Some(NASTY.to_string())
        );
        let dir = std::env::temp_dir().join(format!("distlock-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, format!("{NASTY}\r\n")).unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(
            password_from(&env(&[(PASSWORD_FILE_VAR, path)])).unwrap(),
            Some(NASTY.to_string())
        );
        let both = password_from(&env(&[(PASSWORD_VAR, NASTY), (PASSWORD_FILE_VAR, path)]));
        let err = both.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!format!("{err} {err:?}").contains(NASTY), "{err:?}");
        let missing = dir.join("missing");
        let err =
            password_from(&env(&[(PASSWORD_FILE_VAR, missing.to_str().unwrap())])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("missing"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unset_or_empty_url_is_a_clear_config_error() {
        for vars in [&[][..], &[(URL_VAR, "")][..]] {
            let err = url_from(&env(vars)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(URL_VAR), "{err}");
        }
        assert_eq!(
            url_from(&env(&[(URL_VAR, "file:///x")])).unwrap(),
            "file:///x"
        );
    }
}
