//! Choosing a backend by URL.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use distlock_core::settings::scheme_of;
use distlock_core::{memory::MemoryStore, DistributedLock, LockError, Result};

/// The scheme of the in-process store.
const MEMORY_SCHEMES: &[&str] = &["memory"];

/// Connects to the backend the URL names:
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `file:///var/lock/myapp` | lock files in that directory | always |
/// | `memory://` or `memory://name` | an in-process store, shared by every `connect` of the same URL in this process (tests) | always |
/// | `redis://[user:password@]host:port/db`, `rediss://…` | Redis, one server | `redis` |
/// | `redis+cluster://h1:p,h2:p/` | Redis Cluster | `redis` |
/// | `redis+redlock://h1:p,h2:p,h3:p/db` | Redlock over independent servers | `redis` |
/// | `zk://host1:port,host2:port/chroot?session_timeout=…` | ZooKeeper | `zookeeper` |
/// | `mysql://user:password@host:port/db?mode=get_lock\|row_lock` | MySQL/MariaDB | `mysql` |
///
/// Schemes are case-insensitive (`REDIS://` works); [`schemes`] lists those of this build.
/// Durations in URLs carry a unit (`500ms`, `30s`, `2m`): see [`settings`](crate::settings).
/// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) for an unknown scheme or
/// a backend left out at build time, and never contain the URL's password.
///
/// # Cancel safety
/// Cancel safe: a dropped connect leaves no lock behind (it holds none yet).
pub async fn connect(url: &str) -> Result<Box<dyn DistributedLock>> {
    let scheme = scheme_of(url).unwrap_or_default();
    let scheme = scheme.as_str();
    if distlock_file::SCHEMES.contains(&scheme) {
        return Ok(Box::new(distlock_file::FileLock::from_url(url)?));
    }
    if MEMORY_SCHEMES.contains(&scheme) {
        return Ok(Box::new(memory_store(url).client()));
    }
    if redis::is_mine(scheme) {
        return redis::connect(url).await;
    }
    if zookeeper::is_mine(scheme) {
        return zookeeper::connect(url).await;
    }
    if mysql::is_mine(scheme) {
        return mysql::connect(url).await;
    }
    Err(LockError::config(format!(
        "unknown lock URL scheme {scheme:?}; this build knows {}",
        schemes().join(", ")
    )))
}

/// The URL schemes this build of distlock connects to (each backend's list; the backends
/// left out by cargo features are missing).
pub fn schemes() -> Vec<&'static str> {
    let mut all = Vec::new();
    all.extend_from_slice(distlock_file::SCHEMES);
    all.extend_from_slice(MEMORY_SCHEMES);
    all.extend_from_slice(redis::SCHEMES);
    all.extend_from_slice(zookeeper::SCHEMES);
    all.extend_from_slice(mysql::SCHEMES);
    all
}

/// The process-wide store a `memory://` URL names: like a server, every client of the same
/// URL contends with the others (a private store per connect would exclude nothing).
fn memory_store(url: &str) -> MemoryStore {
    static STORES: OnceLock<Mutex<HashMap<String, MemoryStore>>> = OnceLock::new();
    let key = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .trim_end_matches('/')
        .to_string();
    STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone()
}

// One module per optional backend: its schemes and connect when the feature is on; when it
// is off, a `Config` error naming the feature for the schemes of its family (a backend left
// out cannot be asked for its list).

mod redis {
    use distlock_core::{DistributedLock, Result};

    #[cfg(feature = "redis")]
    pub(super) const SCHEMES: &[&str] = distlock_redis::SCHEMES;
    #[cfg(not(feature = "redis"))]
    pub(super) const SCHEMES: &[&str] = &[];

    pub(super) fn is_mine(scheme: &str) -> bool {
        SCHEMES.contains(&scheme) || scheme.starts_with("redis")
    }

    #[cfg(feature = "redis")]
    pub(super) async fn connect(url: &str) -> Result<Box<dyn DistributedLock>> {
        distlock_redis::connect(url).await
    }

    #[cfg(not(feature = "redis"))]
    pub(super) async fn connect(_url: &str) -> Result<Box<dyn DistributedLock>> {
        Err(super::disabled("redis"))
    }
}

mod zookeeper {
    use distlock_core::{DistributedLock, Result};

    #[cfg(feature = "zookeeper")]
    pub(super) const SCHEMES: &[&str] = distlock_zookeeper::SCHEMES;
    #[cfg(not(feature = "zookeeper"))]
    pub(super) const SCHEMES: &[&str] = &[];

    pub(super) fn is_mine(scheme: &str) -> bool {
        SCHEMES.contains(&scheme) || scheme.starts_with("zk") || scheme.starts_with("zookeeper")
    }

    #[cfg(feature = "zookeeper")]
    pub(super) async fn connect(url: &str) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(distlock_zookeeper::ZkLock::from_url(url).await?))
    }

    #[cfg(not(feature = "zookeeper"))]
    pub(super) async fn connect(_url: &str) -> Result<Box<dyn DistributedLock>> {
        Err(super::disabled("zookeeper"))
    }
}

mod mysql {
    use distlock_core::{DistributedLock, Result};

    #[cfg(feature = "mysql")]
    pub(super) const SCHEMES: &[&str] = distlock_mysql::SCHEMES;
    #[cfg(not(feature = "mysql"))]
    pub(super) const SCHEMES: &[&str] = &[];

    pub(super) fn is_mine(scheme: &str) -> bool {
        SCHEMES.contains(&scheme) || scheme.starts_with("mysql") || scheme.starts_with("mariadb")
    }

    #[cfg(feature = "mysql")]
    pub(super) async fn connect(url: &str) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(distlock_mysql::MySqlLock::connect(url).await?))
    }

    #[cfg(not(feature = "mysql"))]
    pub(super) async fn connect(_url: &str) -> Result<Box<dyn DistributedLock>> {
        Err(super::disabled("mysql"))
    }
}

#[allow(dead_code)] // used only by the arms of features left out
fn disabled(feature: &str) -> LockError {
    LockError::config(format!(
        "distlock was built without the `{feature}` feature"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;

    #[tokio::test]
    async fn unknown_scheme_is_a_config_error_without_secrets() {
        let err = connect("postgres://admin:hunter2@db/x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn clients_of_one_memory_url_exclude_each_other() {
        use distlock_core::LockExt;
        let (a, b) = (
            connect("memory://shared").await.unwrap(),
            connect("memory://shared/").await.unwrap(),
        );
        let other = connect("memory://elsewhere").await.unwrap();
        let g = a.try_acquire("job").await.unwrap().unwrap();
        assert!(
            b.try_acquire("job").await.unwrap().is_none(),
            "two clients of memory://shared both hold the lock"
        );
        let h = other.try_acquire("job").await.unwrap().unwrap();
        g.release().await.unwrap();
        b.try_acquire("job").await.unwrap().unwrap();
        h.release().await.unwrap();
    }

    #[test]
    fn every_scheme_of_this_build_is_listed_once() {
        let all = schemes();
        assert!(all.contains(&"file") && all.contains(&"memory"));
        assert_eq!(all.contains(&"redis"), cfg!(feature = "redis"));
        assert_eq!(all.contains(&"zk"), cfg!(feature = "zookeeper"));
        assert_eq!(all.contains(&"mysql"), cfg!(feature = "mysql"));
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "{all:?}");
    }

    #[tokio::test]
    async fn a_left_out_backend_is_a_config_error_naming_its_feature() {
        for (url, feature) in [
            ("REDIS://u:hunter2@127.0.0.1:1/", "redis"),
            ("redis+sentinel://u:hunter2@127.0.0.1:1/", "redis"),
            ("zk://u:hunter2@127.0.0.1:1", "zookeeper"),
            ("MariaDB://u:hunter2@127.0.0.1:1/x", "mysql"),
        ] {
            match connect(url).await {
                Ok(_) => panic!("{url} connected to nothing"),
                Err(e) => {
                    let shown = format!("{e} {e:?}");
                    assert!(!shown.contains("hunter2"), "{shown}");
                    let built = match feature {
                        "redis" => cfg!(feature = "redis"),
                        "zookeeper" => cfg!(feature = "zookeeper"),
                        _ => cfg!(feature = "mysql"),
                    };
                    if !built {
                        assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
                        assert!(shown.contains(feature), "{url}: {e}");
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn memory_and_file_urls_connect() {
        assert!(connect("memory://").await.is_ok());
        assert!(connect("Memory://").await.is_ok());
        let dir = std::env::temp_dir().join(format!("distlock-connect-{}", std::process::id()));
        let locks = connect(&format!("file://{}", dir.display())).await.unwrap();
        assert!(locks.capabilities().cross_process);
        assert_eq!(
            connect("file://relative").await.unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}
