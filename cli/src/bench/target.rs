//! Which store a bench run measures, and the run's own corner of it: every key, node, row
//! and file the run creates is named after the run, so the clean-up can find them all.

use std::path::PathBuf;

use distlock::{LockError, Result};

/// The kind of store behind the URL, as the bench needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Memory,
    Redis,
    ZooKeeper,
    /// MySQL/MariaDB `GET_LOCK` mode.
    MySqlGetLock,
    /// MySQL/MariaDB row-lock mode.
    MySqlRowLock,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Memory => "memory",
            Kind::Redis => "redis",
            Kind::ZooKeeper => "zookeeper",
            Kind::MySqlGetLock => "mysql get_lock",
            Kind::MySqlRowLock => "mysql row_lock",
        }
    }
}

/// One bench run on one store.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) kind: Kind,
    /// The URL as given (with any password: never print it, see [`Target::shown`]).
    pub(crate) url: String,
    /// The URL distlock's clients connect to: the given one, moved into the run's
    /// namespace (Redis key prefix, ZooKeeper root, lock-file directory).
    pub(crate) lock_url: String,
    /// The run's id: a short random hex string in every name the run creates.
    pub(crate) run: String,
}

impl Target {
    /// Reads the URL; a scheme the bench does not know is a configuration error.
    pub(crate) fn new(url: &str) -> Result<Target> {
        let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        // Case-insensitive, read the way `connect` reads it.
        let scheme = distlock::settings::scheme_of(url).unwrap_or_default();
        let scheme = scheme.as_str();
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let kind = match scheme {
            "file" => Kind::File,
            "memory" => Kind::Memory,
            "redis" | "rediss" => Kind::Redis,
            "zk" | "zookeeper" => Kind::ZooKeeper,
            "mysql" | "mariadb" if query.split('&').any(|p| p == "mode=row_lock") => {
                Kind::MySqlRowLock
            }
            "mysql" | "mariadb" => Kind::MySqlGetLock,
            "redis+cluster" | "rediss+cluster" | "redis+redlock" | "rediss+redlock" => {
                return Err(LockError::config(
                    "the bench compares with a raw primitive on one server: use a redis:// URL",
                ))
            }
            _ => {
                return Err(LockError::config(format!(
                    "unknown lock URL scheme {scheme:?}; the bench runs on file, memory, redis, zk and mysql"
                )))
            }
        };
        let lock_url = match kind {
            Kind::File => {
                let dir = file_dir(url)?.join(format!("distlock-bench-{run}"));
                url::Url::from_directory_path(&dir)
                    .map_err(|()| LockError::config("a file:// URL needs an absolute path"))?
                    .to_string()
            }
            Kind::Redis => with_param(url, &format!("prefix=distlock-bench-{run}:")),
            Kind::ZooKeeper => with_param(url, &format!("root=/distlock-bench-{run}")),
            _ => url.to_string(),
        };
        Ok(Target {
            kind,
            url: url.to_string(),
            lock_url,
            run,
        })
    }

    /// The URL without its password, for the report.
    pub(crate) fn shown(&self) -> String {
        crate::demo::redact(&self.url)
    }

    /// The lock-file directory of the run (file:// only).
    pub(crate) fn dir(&self) -> Result<PathBuf> {
        file_dir(&self.lock_url)
    }

    /// The prefix of every Redis key of the run (distlock's, the raw loop's, the counter's).
    pub(crate) fn redis_prefix(&self) -> String {
        format!("distlock-bench-{}:", self.run)
    }

    /// The ZooKeeper nodes of the run: distlock's root, and the raw recipe's and counter's.
    pub(crate) fn zk_roots(&self) -> [String; 2] {
        [
            format!("/distlock-bench-{}", self.run),
            format!("/distlock-bench-{}-raw", self.run),
        ]
    }
}

/// The directory of a `file://` URL.
fn file_dir(url: &str) -> Result<PathBuf> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| LockError::config("a file:// URL needs an absolute path"))
}

/// `url` with one more query parameter; a parameter of the same key is replaced.
fn with_param(url: &str, param: &str) -> String {
    let key = param.split('=').next().unwrap_or(param);
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .collect();
    pairs.push(param);
    format!("{base}?{}", pairs.join("&"))
}

/// The URL without its query (distlock's own parameters mean nothing to raw clients).
#[cfg(any(feature = "redis", feature = "mysql", feature = "zookeeper"))]
pub(crate) fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_gets_its_own_namespace() {
        let t = Target::new("redis://127.0.0.1:1/0?prefix=app:&ttl_ms=900").unwrap();
        assert_eq!(t.kind, Kind::Redis);
        assert_eq!(
            t.lock_url,
            format!(
                "redis://127.0.0.1:1/0?ttl_ms=900&prefix=distlock-bench-{}:",
                t.run
            )
        );
        let t = Target::new("zk://127.0.0.1:1").unwrap();
        assert!(t
            .lock_url
            .ends_with(&format!("?root=/distlock-bench-{}", t.run)));
        let t = Target::new("file:///tmp/x").unwrap();
        assert_eq!(
            t.lock_url,
            format!("file:///tmp/x/distlock-bench-{}/", t.run)
        );
        let t = Target::new("mysql://u@h/db?mode=row_lock").unwrap();
        assert_eq!(t.kind, Kind::MySqlRowLock);
        assert!(Target::new("redis+cluster://h:1").is_err());
        assert!(Target::new("nope://").is_err());
    }
}
