//! One logical connection to a single node (reconnecting `ConnectionManager`) or to a
//! cluster (the redis crate's cluster client, which follows slot moves and reconnects).

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisResult, Script, ToRedisArgs};

use distlock_core::Result;

use crate::config::RedisConfig;
use crate::error::{is_connection_error, map_error};
use crate::server_url::ServerUrl;

#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects to one server and keeps reconnecting after drops and restarts.
    pub(crate) async fn single(config: &RedisConfig, server: &ServerUrl) -> Result<Self> {
        let secrets = config.secrets();
        let fail = |e| map_error(e, "connecting", &server.redacted(), &secrets);
        let client = redis::Client::open(server.secret()).map_err(fail)?;
        let manager = tokio::time::timeout(
            config.connect_timeout * 3,
            ConnectionManager::new_with_config(client, manager_config(config)),
        )
        .await
        .map_err(|_| {
            distlock_core::LockError::connection(format!(
                "connecting to {} timed out",
                server.redacted()
            ))
        })?
        .map_err(fail)?;
        Ok(Conn::Single(manager))
    }

    /// A reconnecting connection that dials on first use, so a server that is down now
    /// does not fail the client (Redlock tolerates a minority of dead servers).
    pub(crate) fn single_lazy(config: &RedisConfig, server: &ServerUrl) -> Result<Self> {
        let secrets = config.secrets();
        let fail = |e| map_error(e, "connecting", &server.redacted(), &secrets);
        let client = redis::Client::open(server.secret()).map_err(fail)?;
        // No dial retries inside one command: a dead server must fail fast, not eat the
        // validity time; the next command dials again.
        let manager = ConnectionManager::new_lazy_with_config(
            client,
            manager_config(config).set_number_of_retries(0),
        )
        .map_err(fail)?;
        Ok(Conn::Single(manager))
    }

    /// Connects to a cluster through any of its nodes.
    pub(crate) async fn cluster(config: &RedisConfig) -> Result<Self> {
        let secrets = config.secrets();
        let label = servers_label(config.servers());
        let fail = |e| map_error(e, "connecting to the cluster", &label, &secrets);
        let client = ClusterClientBuilder::new(config.servers().iter().map(|s| s.secret()))
            .response_timeout(config.response_timeout)
            .connection_timeout(config.connect_timeout)
            .retries(3)
            .min_retry_wait(20)
            .max_retry_wait(500)
            .build()
            .map_err(fail)?;
        let connection =
            tokio::time::timeout(config.connect_timeout * 3, client.get_async_connection())
                .await
                .map_err(|_| {
                    distlock_core::LockError::connection(format!("connecting to {label} timed out"))
                })?
                .map_err(fail)?;
        Ok(Conn::Cluster(connection))
    }

    /// Runs `script` (EVALSHA, reloaded on NOSCRIPT). Every script of this crate is
    /// idempotent for one owner token, so a command that failed on a broken connection is
    /// sent once more: the reconnecting connection fails the first command after a drop.
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&dyn ToRedisArgsDyn],
    ) -> RedisResult<T> {
        match self.eval_once(script, keys, args).await {
            Err(e) if is_connection_error(&e) => self.eval_once(script, keys, args).await,
            other => other,
        }
    }

    async fn eval_once<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&dyn ToRedisArgsDyn],
    ) -> RedisResult<T> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg.to_args());
        }
        match self {
            Conn::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Conn::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        }
    }
}

fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(config.response_timeout))
        .set_connection_timeout(Some(config.connect_timeout))
        .set_number_of_retries(2)
        .set_max_delay(std::time::Duration::from_millis(500))
}

/// Script arguments of mixed types.
pub(crate) trait ToRedisArgsDyn: Sync {
    fn to_args(&self) -> Vec<Vec<u8>>;
}

impl<T: ToRedisArgs + Sync> ToRedisArgsDyn for T {
    fn to_args(&self) -> Vec<Vec<u8>> {
        self.to_redis_args()
    }
}

/// The servers, redacted and comma-separated, for messages.
pub(crate) fn servers_label(servers: &[ServerUrl]) -> String {
    servers
        .iter()
        .map(ServerUrl::redacted)
        .collect::<Vec<_>>()
        .join(",")
}
