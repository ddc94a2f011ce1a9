//! Shared by the integration tests: throwaway servers and harnesses.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use distlock_conformance::{Faults, Harness};
use distlock_core::{DistributedLock, LockError, LockGuard, Result};
use distlock_redis::{RedisConfig, RedisLock};
use distlock_testkit::redis::RedisServer;

/// The environment variable that points a child process at its parent's server.
pub const URL_VAR: &str = "DISTLOCK_TEST_REDIS_URL";

pub const SHORT_TTL: Duration = Duration::from_millis(1500);

pub fn config(url: &str) -> RedisConfig {
    RedisConfig::builder([url])
        .key_prefix("test:")
        .build()
        .expect("config")
}

/// One throwaway server per harness (each conformance case gets its own, so a restart in
/// one case cannot disturb another); a child process reuses its parent's via [`URL_VAR`].
pub struct SingleHarness {
    server: Option<Arc<RedisServer>>,
    url: String,
}

impl SingleHarness {
    pub fn new() -> Self {
        if let Ok(url) = std::env::var(URL_VAR) {
            return SingleHarness { server: None, url };
        }
        let server = RedisServer::start().unwrap_or_else(|e| panic!("redis-server: {e}"));
        let url = server.url();
        SingleHarness {
            server: Some(Arc::new(server)),
            url,
        }
    }

    pub fn server(&self) -> &RedisServer {
        self.server.as_ref().expect("the parent owns the server")
    }

    pub async fn side_connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("side connection")
    }
}

#[async_trait]
impl Harness for SingleHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(RedisLock::connect_with(config(&self.url)).await?))
    }
    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
    fn child_env(&self) -> Vec<(String, String)> {
        vec![(URL_VAR.to_string(), self.url.clone())]
    }
    fn short_ttl(&self) -> Duration {
        SHORT_TTL
    }
    fn backstop(&self) -> Duration {
        SHORT_TTL + Duration::from_millis(500)
    }
}

/// Deletes `guard`'s key behind its back, as a failover to a replica that never saw the
/// SET would.
pub async fn delete_lock_key(
    side: &mut impl redis::aio::ConnectionLike,
    guard: &LockGuard,
) -> Result<()> {
    let _: () = redis::cmd("DEL")
        .arg(lock_key(guard))
        .query_async(side)
        .await
        .map_err(|e| LockError::backend(e.to_string()))?;
    Ok(())
}

/// The lock key of `guard` under the tests' prefix.
pub fn lock_key(guard: &LockGuard) -> String {
    format!("test:{{{}}}:lock", guard.name().escaped())
}

#[async_trait]
impl Faults for SingleHarness {
    /// Overwrites the key, as a failover to a replica that never saw the SET would.
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        delete_lock_key(&mut self.side_connection().await, guard).await
    }

    async fn restart_server(&self) -> Result<()> {
        let server = self.server.clone().expect("parent");
        tokio::task::spawn_blocking(move || server.restart())
            .await
            .map_err(|e| LockError::backend(e.to_string()))?
            .map_err(|e| LockError::backend(e.to_string()))
    }

    async fn pause_server(&self) -> Result<()> {
        self.server().pause();
        Ok(())
    }

    async fn resume_server(&self) -> Result<()> {
        self.server().resume();
        Ok(())
    }
}

/// The environment variable that points a child process at its parent's cluster
/// (comma-separated node URLs).
pub const CLUSTER_VAR: &str = "DISTLOCK_TEST_REDIS_CLUSTER";

/// One throwaway three-master cluster per test binary (it takes about 2 s to form); the
/// suite runs the store-wide faults (restart, pause) alone, so sharing it is safe.
pub struct ClusterHarness {
    cluster: Option<Arc<distlock_testkit::redis::RedisCluster>>,
    urls: Vec<String>,
}

impl ClusterHarness {
    pub fn new() -> Self {
        if let Ok(urls) = std::env::var(CLUSTER_VAR) {
            let urls = urls.split(',').map(String::from).collect();
            return ClusterHarness {
                cluster: None,
                urls,
            };
        }
        static SHARED: std::sync::OnceLock<Arc<distlock_testkit::redis::RedisCluster>> =
            std::sync::OnceLock::new();
        let cluster = SHARED
            .get_or_init(|| {
                Arc::new(
                    distlock_testkit::redis::RedisCluster::start()
                        .unwrap_or_else(|e| panic!("redis cluster: {e}")),
                )
            })
            .clone();
        let urls = cluster.urls();
        ClusterHarness {
            cluster: Some(cluster),
            urls,
        }
    }

    /// A cluster of its own, for tests outside the suite (which the suite's gate does not
    /// keep away from its restart and pause cases).
    pub fn private() -> Self {
        let cluster = distlock_testkit::redis::RedisCluster::start()
            .unwrap_or_else(|e| panic!("redis cluster: {e}"));
        let urls = cluster.urls();
        ClusterHarness {
            cluster: Some(Arc::new(cluster)),
            urls,
        }
    }

    pub fn cluster(&self) -> &distlock_testkit::redis::RedisCluster {
        self.cluster.as_ref().expect("the parent owns the cluster")
    }

    pub fn config(&self) -> RedisConfig {
        RedisConfig::builder(&self.urls)
            .key_prefix("test:")
            .build()
            .expect("config")
    }

    pub async fn side_connection(&self) -> redis::cluster_async::ClusterConnection {
        redis::cluster::ClusterClient::new(self.urls.clone())
            .expect("cluster client")
            .get_async_connection()
            .await
            .expect("side connection")
    }
}

#[async_trait]
impl Harness for ClusterHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(RedisLock::connect_cluster(self.config()).await?))
    }
    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
    fn child_env(&self) -> Vec<(String, String)> {
        vec![(CLUSTER_VAR.to_string(), self.urls.join(","))]
    }
    fn short_ttl(&self) -> Duration {
        SHORT_TTL
    }
    fn backstop(&self) -> Duration {
        SHORT_TTL + Duration::from_millis(500)
    }
}

#[async_trait]
impl Faults for ClusterHarness {
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        delete_lock_key(&mut self.side_connection().await, guard).await
    }

    async fn restart_server(&self) -> Result<()> {
        let cluster = self.cluster.clone().expect("parent");
        tokio::task::spawn_blocking(move || cluster.restart())
            .await
            .map_err(|e| LockError::backend(e.to_string()))?
            .map_err(|e| LockError::backend(e.to_string()))
    }

    async fn pause_server(&self) -> Result<()> {
        self.cluster().nodes().iter().for_each(RedisServer::pause);
        Ok(())
    }

    async fn resume_server(&self) -> Result<()> {
        self.cluster().nodes().iter().for_each(RedisServer::resume);
        Ok(())
    }
}

/// The environment variable that points a child process at its parent's Redlock servers.
pub const REDLOCK_VAR: &str = "DISTLOCK_TEST_REDLOCK";

/// Three independent throwaway servers per harness.
pub struct RedlockHarness {
    servers: Vec<Arc<RedisServer>>,
    urls: Vec<String>,
}

impl RedlockHarness {
    pub fn new() -> Self {
        if let Ok(urls) = std::env::var(REDLOCK_VAR) {
            let urls = urls.split(',').map(String::from).collect();
            return RedlockHarness {
                servers: Vec::new(),
                urls,
            };
        }
        let servers: Vec<Arc<RedisServer>> = distlock_testkit::redis::start_many(3)
            .unwrap_or_else(|e| panic!("redis-server: {e}"))
            .into_iter()
            .map(Arc::new)
            .collect();
        let urls = servers.iter().map(|s| s.url()).collect();
        RedlockHarness { servers, urls }
    }

    pub fn servers(&self) -> &[Arc<RedisServer>] {
        &self.servers
    }

    pub fn config(&self) -> RedisConfig {
        RedisConfig::builder(&self.urls)
            .key_prefix("test:")
            .build()
            .expect("config")
    }

    pub async fn side_connections(&self) -> Vec<redis::aio::MultiplexedConnection> {
        self.side_connections_of(&(0..self.urls.len()).collect::<Vec<_>>())
            .await
    }

    pub async fn side_connections_of(
        &self,
        which: &[usize],
    ) -> Vec<redis::aio::MultiplexedConnection> {
        let mut out = Vec::new();
        for url in which.iter().map(|&i| &self.urls[i]) {
            out.push(
                redis::Client::open(url.as_str())
                    .expect("client")
                    .get_multiplexed_async_connection()
                    .await
                    .expect("side connection"),
            );
        }
        out
    }
}

#[async_trait]
impl Harness for RedlockHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(
            distlock_redis::Redlock::connect(self.config()).await?,
        ))
    }
    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
    fn child_env(&self) -> Vec<(String, String)> {
        vec![(REDLOCK_VAR.to_string(), self.urls.join(","))]
    }
    fn short_ttl(&self) -> Duration {
        SHORT_TTL
    }
    fn backstop(&self) -> Duration {
        SHORT_TTL + Duration::from_millis(500)
    }
}

#[async_trait]
impl Faults for RedlockHarness {
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        for mut side in self.side_connections().await {
            let _: () = redis::cmd("DEL")
                .arg(lock_key(guard))
                .query_async(&mut side)
                .await
                .map_err(|e| LockError::backend(e.to_string()))?;
        }
        Ok(())
    }

    async fn restart_server(&self) -> Result<()> {
        let servers = self.servers.clone();
        tokio::task::spawn_blocking(move || servers.iter().try_for_each(|s| s.restart()))
            .await
            .map_err(|e| LockError::backend(e.to_string()))?
            .map_err(|e| LockError::backend(e.to_string()))
    }

    async fn pause_server(&self) -> Result<()> {
        self.servers.iter().for_each(|s| s.pause());
        Ok(())
    }

    async fn resume_server(&self) -> Result<()> {
        self.servers.iter().for_each(|s| s.resume());
        Ok(())
    }
}

/// A client of `h`'s server with the tests' config.
pub async fn client(h: &SingleHarness) -> RedisLock {
    RedisLock::connect_with(config(&h.server().url()))
        .await
        .unwrap()
}

/// The waiter queue of lock `name` under the tests' prefix.
pub fn queue_key(name: &str) -> String {
    format!("test:{{{name}}}:queue")
}

pub async fn queue_len(side: &mut redis::aio::MultiplexedConnection, name: &str) -> usize {
    redis::cmd("LLEN")
        .arg(queue_key(name))
        .query_async(side)
        .await
        .unwrap()
}

/// Polls the server (the queue is the signal: no client-side event says "queued") until the
/// queue of `name` is `len` long.
pub async fn until_queued(side: &mut redis::aio::MultiplexedConnection, name: &str, len: usize) {
    let limit = std::time::Instant::now() + Duration::from_secs(10);
    while queue_len(side, name).await != len {
        assert!(
            std::time::Instant::now() < limit,
            "the queue of {name} never reached {len}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Calls per command the server counted since its last `CONFIG RESETSTAT` (`INFO
/// commandstats`; a script's own commands are counted too), without `INFO` and `CONFIG`.
pub async fn command_calls(
    side: &mut redis::aio::MultiplexedConnection,
) -> std::collections::BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(side)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| !name.starts_with("config") && name != "info")
        .collect()
}

/// The calls of `command` the server counted since its last `CONFIG RESETSTAT`.
pub async fn calls(side: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    command_calls(side).await.get(command).copied().unwrap_or(0)
}
