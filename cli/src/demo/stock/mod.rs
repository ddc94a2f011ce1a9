//! Where the sale's stock lives: a store every buyer process reaches. A file next to the
//! lock files by default; the backend's own store when the URL names a server.

mod file;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "zookeeper")]
mod zk;

use distlock::{LockError, Result};

/// What the demo needs to know about the URL's backend before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backend {
    /// Whether a hold can end while its holder is paused (leases, sessions): act 3 runs.
    pub(crate) loses_holds: bool,
}

/// Which backends the demo can run on, or why not (a usage error).
pub(crate) fn backend_of(url: &str) -> std::result::Result<Backend, String> {
    let scheme = scheme_of(url);
    match scheme.as_str() {
        "file" => Ok(Backend { loses_holds: false }),
        "mysql" | "mariadb" => Ok(Backend { loses_holds: false }),
        "redis" | "rediss" | "zk" | "zookeeper" => Ok(Backend { loses_holds: true }),
        "memory" => Err(
            "memory:// lives inside one process, and the demo's buyers are \
                         separate processes: use file:// (the default) or a server URL"
                .into(),
        ),
        "redis+cluster" | "rediss+cluster" | "redis+redlock" | "rediss+redlock" => {
            Err("the demo keeps its stock on one Redis server: use a redis:// URL".into())
        }
        _ => Err(format!(
            "unknown lock URL scheme {scheme:?}; the demo runs on file, redis, zk and mysql"
        )),
    }
}

/// The URL's scheme in lower case: schemes are case-insensitive, as `connect` takes them.
fn scheme_of(url: &str) -> String {
    url.split_once("://")
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase()
}

/// The stock of one demo run.
pub(crate) enum Stock {
    File(file::FileStock),
    #[cfg(feature = "redis")]
    Redis(redis::RedisStock),
    #[cfg(feature = "mysql")]
    MySql(mysql::MySqlStock),
    #[cfg(feature = "zookeeper")]
    Zk(zk::ZkStock),
}

impl Stock {
    /// Opens the stock of demo run `run` in the store `url` names.
    pub(crate) async fn open(url: &str, run: &str) -> Result<Stock> {
        let scheme = scheme_of(url);
        match scheme.as_str() {
            "file" => Ok(Stock::File(file::FileStock::open(url, run)?)),
            #[cfg(feature = "redis")]
            "redis" | "rediss" => Ok(Stock::Redis(redis::RedisStock::open(url, run).await?)),
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => Ok(Stock::MySql(mysql::MySqlStock::open(url, run).await?)),
            #[cfg(feature = "zookeeper")]
            "zk" | "zookeeper" => Ok(Stock::Zk(zk::ZkStock::open(url, run).await?)),
            _ => Err(LockError::config(format!(
                "the demo cannot keep stock for {scheme}:// URLs in this build"
            ))),
        }
    }

    /// Where the stock is, for the report.
    pub(crate) fn describe(&self) -> String {
        match self {
            Stock::File(s) => s.describe(),
            #[cfg(feature = "redis")]
            Stock::Redis(s) => s.describe(),
            #[cfg(feature = "mysql")]
            Stock::MySql(s) => s.describe(),
            #[cfg(feature = "zookeeper")]
            Stock::Zk(s) => s.describe(),
        }
    }

    /// Puts `items` on sale (creating the stock the first time).
    pub(crate) async fn reset(&mut self, items: u64) -> Result<()> {
        match self {
            Stock::File(s) => s.reset(items).await,
            #[cfg(feature = "redis")]
            Stock::Redis(s) => s.reset(items).await,
            #[cfg(feature = "mysql")]
            Stock::MySql(s) => s.reset(items).await,
            #[cfg(feature = "zookeeper")]
            Stock::Zk(s) => s.reset(items).await,
        }
    }

    /// Items left.
    pub(crate) async fn read(&mut self) -> Result<u64> {
        match self {
            Stock::File(s) => s.read().await,
            #[cfg(feature = "redis")]
            Stock::Redis(s) => s.read().await,
            #[cfg(feature = "mysql")]
            Stock::MySql(s) => s.read().await,
            #[cfg(feature = "zookeeper")]
            Stock::Zk(s) => s.read().await,
        }
    }

    /// Writes the items left: plainly without a token, fenced with one (error kind
    /// `Fenced` when a newer holder already wrote).
    pub(crate) async fn write(&mut self, items: u64, token: Option<u64>) -> Result<()> {
        match self {
            Stock::File(s) => s.write(items, token).await,
            #[cfg(feature = "redis")]
            Stock::Redis(s) => s.write(items, token).await,
            #[cfg(feature = "mysql")]
            Stock::MySql(s) => s.write(items, token).await,
            #[cfg(feature = "zookeeper")]
            Stock::Zk(s) => s.write(items, token).await,
        }
    }

    /// Deletes everything this stock created (data and fence token).
    pub(crate) async fn remove(&mut self) -> Result<()> {
        match self {
            Stock::File(s) => s.remove().await,
            #[cfg(feature = "redis")]
            Stock::Redis(s) => s.remove().await,
            #[cfg(feature = "mysql")]
            Stock::MySql(s) => s.remove().await,
            #[cfg(feature = "zookeeper")]
            Stock::Zk(s) => s.remove().await,
        }
    }
}

/// Parses a stored item count.
fn parse_items(text: &str, place: &str) -> Result<u64> {
    text.trim()
        .parse()
        .map_err(|_| LockError::backend(format!("{place} does not hold an item count")))
}

/// The URL without its query (distlock's own parameters mean nothing to the raw clients).
#[cfg(any(feature = "redis", feature = "mysql", feature = "zookeeper"))]
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::backend_of;

    #[test]
    fn schemes_in_any_case() {
        assert_eq!(
            backend_of("FILE:///tmp/x").map(|b| b.loses_holds),
            Ok(false)
        );
        assert_eq!(backend_of("Redis://h:1/0").map(|b| b.loses_holds), Ok(true));
        assert_eq!(backend_of("ZK://h:1").map(|b| b.loses_holds), Ok(true));
        assert!(backend_of("MEMORY://").is_err());
    }
}
