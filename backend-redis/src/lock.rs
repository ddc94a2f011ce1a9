//! [`RedisLock`]: the client for one Redis server or one Redis Cluster.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, LockError, LockGuard, LockName, Result,
};

use crate::backend::{Backend, Node};
use crate::config::RedisConfig;
use crate::conn::{servers_label, Conn};
use crate::engine::Engine;
use crate::error::map_error;
use crate::hold::Renewals;
use crate::inspect::RedisInspector;
use crate::subscriber::{wake_channel, Subscriber};

/// A lock client for one Redis server ([`RedisLock::connect`]) or a Redis Cluster
/// ([`RedisLock::connect_cluster`]). Cheap to clone; clones share connections.
///
/// See the [crate docs](crate) for the protocol and what Redis can and cannot promise.
#[derive(Clone)]
pub struct RedisLock {
    engine: Arc<Engine>,
    cluster: bool,
    inspector: RedisInspector,
}

impl fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("mode", &if self.cluster { "cluster" } else { "single" })
            .field("config", &self.engine.config)
            .finish()
    }
}

impl RedisLock {
    /// Connects to the single server at `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://` for TLS) with default settings.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is held until it returns.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(RedisConfig::builder([url]).build()?).await
    }

    /// Connects to the single server of `config` (which must name exactly one).
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is held until it returns.
    pub async fn connect_with(config: RedisConfig) -> Result<Self> {
        let [server] = config.servers() else {
            return Err(LockError::config(format!(
                "a single-node RedisLock needs exactly one server URL, got {}",
                config.servers().len()
            )));
        };
        let conn = Conn::single(&config, server).await?;
        let client = pubsub_client(&config, server)?;
        Ok(Self::assemble(config, conn, vec![vec![client]], false))
    }

    /// Connects to a Redis Cluster through any of its nodes (`config`'s URLs are seeds).
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is held until it returns.
    pub async fn connect_cluster(config: RedisConfig) -> Result<Self> {
        let conn = Conn::cluster(&config).await?;
        // A cluster forwards PUBLISH to every node: one subscription on any node hears all.
        let clients = config
            .servers()
            .iter()
            .map(|s| pubsub_client(&config, s))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::assemble(config, conn, vec![clients], true))
    }

    fn assemble(
        config: RedisConfig,
        conn: Conn,
        sources: Vec<Vec<redis::Client>>,
        cluster: bool,
    ) -> Self {
        let node = Node {
            conn,
            label: servers_label(config.servers()),
            secrets: config.secrets(),
        };
        let own = wake_channel(config.key_prefix());
        let subscriber = Subscriber::start(sources, config.response_timeout, Some(own));
        let inspector = RedisInspector {
            node: node.clone(),
            key_prefix: config.key_prefix().to_string(),
            cluster,
        };
        let backend: Arc<dyn Backend> = Arc::new(node);
        RedisLock {
            inspector,
            engine: Arc::new(Engine {
                renewals: Renewals::group(backend.clone()),
                backend,
                subscriber,
                config,
            }),
            cluster,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &RedisConfig {
        &self.engine.config
    }
}

pub(crate) fn pubsub_client(
    config: &RedisConfig,
    server: &crate::server_url::ServerUrl,
) -> Result<redis::Client> {
    redis::Client::open(server.secret())
        .map_err(|e| map_error(e, "configuring", &server.redacted(), &config.secrets()))
}

#[async_trait]
impl DistributedLock for RedisLock {
    /// Takes `name` (see [`DistributedLock::acquire_with`]). Not reentrant: a second acquire
    /// of a name this client holds is an ordinary contender (it waits or times out).
    ///
    /// # Cancel safety
    /// Cancel safe. The owner token exists before anything is sent; if the future is dropped
    /// while an attempt may have taken the lock, a background task releases it by token
    /// (compare-and-delete), and the TTL frees it if even that cannot reach the server.
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        self.engine.acquire(name, options).await
    }

    fn capabilities(&self) -> Capabilities {
        self.engine.backend.capabilities()
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }

    /// Holders, breaking a hold and the doctor: see [`Inspect`](distlock_core::Inspect).
    /// Listing holders works on a single server only.
    fn inspect(&self) -> Option<&dyn distlock_core::Inspect> {
        Some(&self.inspector)
    }
}
