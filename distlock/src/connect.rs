//! Choosing a backend by URL.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use distlock_core::{memory::MemoryStore, DistributedLock, LockError, Result};
use url::Url;

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
/// Errors are of kind [`Config`](distlock_core::ErrorKind::Config) for an unknown scheme or
/// a backend left out at build time, and never contain the URL's password.
///
/// # Cancel safety
/// Cancel safe: a dropped connect leaves no lock behind (it holds none yet).
pub async fn connect(url: &str) -> Result<Box<dyn DistributedLock>> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
        "file" => {
            let parsed = Url::parse(url)
                .map_err(|e| LockError::config("invalid file:// URL").with_source(e))?;
            let dir = parsed
                .to_file_path()
                .map_err(|()| LockError::config("a file:// URL needs an absolute path"))?;
            Ok(Box::new(distlock_file::FileLock::new(dir)?))
        }
        "memory" => Ok(Box::new(memory_store(url).client())),
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" | "redis+redlock"
        | "rediss+redlock" => redis(url).await,
        "zk" | "zookeeper" => zookeeper(url).await,
        "mysql" | "mariadb" => mysql(url).await,
        _ => Err(LockError::config(format!(
            "unknown lock URL scheme {scheme:?}; expected file, memory, redis, rediss, zk or mysql"
        ))),
    }
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

#[cfg(feature = "redis")]
async fn redis(url: &str) -> Result<Box<dyn DistributedLock>> {
    distlock_redis::connect(url).await
}

#[cfg(not(feature = "redis"))]
async fn redis(_url: &str) -> Result<Box<dyn DistributedLock>> {
    disabled("redis")
}

#[cfg(feature = "zookeeper")]
async fn zookeeper(url: &str) -> Result<Box<dyn DistributedLock>> {
    Ok(Box::new(distlock_zookeeper::ZkLock::from_url(url).await?))
}

#[cfg(not(feature = "zookeeper"))]
async fn zookeeper(_url: &str) -> Result<Box<dyn DistributedLock>> {
    disabled("zookeeper")
}

#[cfg(feature = "mysql")]
async fn mysql(url: &str) -> Result<Box<dyn DistributedLock>> {
    Ok(Box::new(distlock_mysql::MySqlLock::connect(url).await?))
}

#[cfg(not(feature = "mysql"))]
async fn mysql(_url: &str) -> Result<Box<dyn DistributedLock>> {
    disabled("mysql")
}

#[allow(dead_code)]
fn disabled(feature: &str) -> Result<Box<dyn DistributedLock>> {
    Err(LockError::config(format!(
        "distlock was built without the `{feature}` feature"
    )))
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

    #[tokio::test]
    async fn memory_and_file_urls_connect() {
        assert!(connect("memory://").await.is_ok());
        let dir = std::env::temp_dir().join(format!("distlock-connect-{}", std::process::id()));
        let locks = connect(&format!("file://{}", dir.display())).await.unwrap();
        assert!(locks.capabilities().cross_process);
        assert_eq!(
            connect("file://relative").await.unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}
