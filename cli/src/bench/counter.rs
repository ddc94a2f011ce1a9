//! The counter in the store that contended clients read, increment and write back inside
//! the critical section: the work users protect, and the exclusion check (the final value
//! equals the number of acquisitions only if no two holds overlapped).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use distlock::{LockError, Result};

use super::target::{Kind, Target};

/// One client's connection to the counter.
#[async_trait]
pub(crate) trait Counter: Send {
    /// # Cancel safety
    /// Not needed by the bench: every call is awaited to the end.
    async fn get(&mut self) -> Result<u64>;
    /// # Cancel safety
    /// Not needed by the bench: every call is awaited to the end.
    async fn set(&mut self, value: u64) -> Result<()>;
    /// Deletes the counter.
    ///
    /// # Cancel safety
    /// Not needed by the bench: every call is awaited to the end.
    async fn remove(&mut self) -> Result<()>;
    /// What `get` + `set` are in this store, for the report.
    fn describe(&self) -> &'static str;
}

/// Opens counter `id` of the run (a new connection); `shared` is the in-process counter
/// of memory:// runs.
pub(crate) async fn open(
    target: &Target,
    id: &str,
    shared: &Arc<AtomicU64>,
) -> Result<Box<dyn Counter>> {
    match target.kind {
        Kind::Memory => Ok(Box::new(Memory(shared.clone()))),
        Kind::File => Ok(Box::new(FileCounter(
            target.dir()?.join(format!("{id}.counter")),
        ))),
        #[cfg(feature = "redis")]
        Kind::Redis => {
            let url = super::target::without_query(&target.url);
            let client = redis::Client::open(url).map_err(super::raw::redis_fail)?;
            let conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(super::raw::redis_fail)?;
            Ok(Box::new(RedisCounter {
                conn,
                key: format!("{}counter:{id}", target.redis_prefix()),
            }))
        }
        #[cfg(feature = "zookeeper")]
        Kind::ZooKeeper => {
            let client = super::raw::zk_session(&target.url).await?;
            let [_, root] = target.zk_roots();
            super::raw::zk_ensure(&client, &root).await?;
            Ok(Box::new(ZkCounter {
                client,
                path: format!("{root}/counter-{id}"),
            }))
        }
        #[cfg(feature = "mysql")]
        Kind::MySqlGetLock | Kind::MySqlRowLock => {
            let mut conn = super::raw::mysql_connect(&target.url).await?;
            sqlx::query(MYSQL_CREATE)
                .execute(&mut conn)
                .await
                .map_err(super::raw::mysql_fail)?;
            Ok(Box::new(MySqlCounter {
                conn,
                id: format!("{}/{id}", target.run),
            }))
        }
        #[allow(unreachable_patterns)]
        _ => Err(LockError::config("this build has no counter for the store")),
    }
}

struct Memory(Arc<AtomicU64>);

#[async_trait]
impl Counter for Memory {
    async fn get(&mut self) -> Result<u64> {
        let value = self.0.load(Ordering::SeqCst);
        // A read and a write that other tasks can interleave, like a store's GET and SET.
        tokio::task::yield_now().await;
        Ok(value)
    }
    async fn set(&mut self, value: u64) -> Result<()> {
        self.0.store(value, Ordering::SeqCst);
        Ok(())
    }
    async fn remove(&mut self) -> Result<()> {
        Ok(())
    }
    fn describe(&self) -> &'static str {
        "load + yield + store of an in-process integer"
    }
}

pub(crate) struct FileCounter(pub(crate) PathBuf);

#[async_trait]
impl Counter for FileCounter {
    async fn get(&mut self) -> Result<u64> {
        match tokio::fs::read_to_string(&self.0).await {
            Ok(text) => text
                .trim()
                .parse()
                .map_err(|_| LockError::backend("the bench counter file holds no number")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(LockError::backend("read the bench counter").with_source(e)),
        }
    }
    async fn set(&mut self, value: u64) -> Result<()> {
        tokio::fs::write(&self.0, value.to_string())
            .await
            .map_err(|e| LockError::backend("write the bench counter").with_source(e))
    }
    async fn remove(&mut self) -> Result<()> {
        match tokio::fs::remove_file(&self.0).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(LockError::backend("remove the bench counter").with_source(e))
            }
            _ => Ok(()),
        }
    }
    fn describe(&self) -> &'static str {
        "read + write of a file"
    }
}

#[cfg(feature = "redis")]
struct RedisCounter {
    conn: redis::aio::MultiplexedConnection,
    key: String,
}

#[cfg(feature = "redis")]
#[async_trait]
impl Counter for RedisCounter {
    async fn get(&mut self) -> Result<u64> {
        let value: Option<u64> = redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut self.conn)
            .await
            .map_err(super::raw::redis_fail)?;
        Ok(value.unwrap_or(0))
    }
    async fn set(&mut self, value: u64) -> Result<()> {
        redis::cmd("SET")
            .arg(&self.key)
            .arg(value)
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(super::raw::redis_fail)
    }
    async fn remove(&mut self) -> Result<()> {
        redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(super::raw::redis_fail)
    }
    fn describe(&self) -> &'static str {
        "GET + SET of a key"
    }
}

#[cfg(feature = "zookeeper")]
struct ZkCounter {
    client: zookeeper_client::Client,
    path: String,
}

#[cfg(feature = "zookeeper")]
#[async_trait]
impl Counter for ZkCounter {
    async fn get(&mut self) -> Result<u64> {
        match self.client.get_data(&self.path).await {
            Ok((data, _)) => Ok(String::from_utf8_lossy(&data).trim().parse().unwrap_or(0)),
            Err(zookeeper_client::Error::NoNode) => Ok(0),
            Err(e) => Err(super::raw::zk_fail(e)),
        }
    }
    async fn set(&mut self, value: u64) -> Result<()> {
        let data = value.to_string();
        match self
            .client
            .set_data(&self.path, data.as_bytes(), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(zookeeper_client::Error::NoNode) => {
                let mode = zookeeper_client::CreateMode::Persistent
                    .with_acls(zookeeper_client::Acls::anyone_all());
                self.client
                    .create(&self.path, data.as_bytes(), &mode)
                    .await
                    .map(drop)
                    .map_err(super::raw::zk_fail)
            }
            Err(e) => Err(super::raw::zk_fail(e)),
        }
    }
    async fn remove(&mut self) -> Result<()> {
        match self.client.delete(&self.path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
            Err(e) => Err(super::raw::zk_fail(e)),
        }
    }
    fn describe(&self) -> &'static str {
        "getData + setData of a node"
    }
}

#[cfg(feature = "mysql")]
const MYSQL_CREATE: &str = "CREATE TABLE IF NOT EXISTS distlock_bench_counter (
    id VARCHAR(190) NOT NULL PRIMARY KEY,
    value BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB";

#[cfg(feature = "mysql")]
struct MySqlCounter {
    conn: sqlx::MySqlConnection,
    id: String,
}

#[cfg(feature = "mysql")]
#[async_trait]
impl Counter for MySqlCounter {
    async fn get(&mut self) -> Result<u64> {
        let value: Option<u64> =
            sqlx::query_scalar("SELECT value FROM distlock_bench_counter WHERE id = ?")
                .bind(&self.id)
                .fetch_optional(&mut self.conn)
                .await
                .map_err(super::raw::mysql_fail)?;
        Ok(value.unwrap_or(0))
    }
    async fn set(&mut self, value: u64) -> Result<()> {
        sqlx::query("REPLACE INTO distlock_bench_counter (id, value) VALUES (?, ?)")
            .bind(&self.id)
            .bind(value)
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(super::raw::mysql_fail)
    }
    async fn remove(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM distlock_bench_counter WHERE id = ?")
            .bind(&self.id)
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(super::raw::mysql_fail)
    }
    fn describe(&self) -> &'static str {
        "SELECT + REPLACE of a row (autocommit)"
    }
}
