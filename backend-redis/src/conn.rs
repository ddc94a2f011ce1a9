//! One logical connection to a single node (reconnecting `ConnectionManager`) or to a
//! cluster (the redis crate's cluster client, which follows slot moves and reconnects).

use redis::aio::ConnectionLike;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind, ToRedisArgs};

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
        // The command is written once, straight into its buffer: `Script::prepare_invoke`
        // copies every key and argument into a vector of its own and then again into the
        // command, about 20 allocations per call on the uncontended path.
        // Room for the keys and for owner tokens (the longest arguments), so the buffer
        // is allocated once.
        let room = 64 + keys.iter().map(|k| k.len() + 16).sum::<usize>() + 96 * args.len();
        let mut cmd = Cmd::with_capacity(3 + keys.len() + args.len(), room);
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys.len());
        for key in keys {
            cmd.arg(*key);
        }
        for arg in args {
            arg.write_to(&mut cmd);
        }
        match self {
            Conn::Single(c) => run_script(script, &cmd, &mut c.clone()).await,
            Conn::Cluster(c) => run_script(script, &cmd, &mut c.clone()).await,
        }
    }
}

/// Sends an `EVALSHA` and, when the server does not know the script (`NOSCRIPT`: a restart,
/// a `SCRIPT FLUSH`, a new node), loads it and sends the command once more, as
/// `ScriptInvocation::invoke_async` does.
async fn run_script<T: FromRedisValue>(
    script: &Script,
    cmd: &Cmd,
    conn: &mut impl ConnectionLike,
) -> RedisResult<T> {
    match cmd.query_async(conn).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load_async(conn).await?;
            cmd.query_async(conn).await
        }
        other => other,
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
    /// Appends this value's arguments to `cmd`.
    fn write_to(&self, cmd: &mut Cmd);
}

impl<T: ToRedisArgs + Sync> ToRedisArgsDyn for T {
    fn write_to(&self, cmd: &mut Cmd) {
        cmd.arg(self);
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
