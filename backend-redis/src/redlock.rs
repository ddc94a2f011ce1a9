//! [`Redlock`]: a quorum lock over N independent Redis servers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::lease::drift_allowance;
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, LockError, LockGuard, LockName, Result,
};
use futures::future::join_all;
use tokio::time::Instant;

use crate::backend::{not_held, ttl_ms, Attempt, Backend, Node, Wait, Wake};
use crate::config::RedisConfig;
use crate::conn::{servers_label, Conn};
use crate::engine::Engine;
use crate::hold::Renewals;
use crate::keys::LockKeys;
use crate::lock::pubsub_client;
use crate::subscriber::Subscriber;

/// A Redlock client: the lock is held when a majority of N independent Redis servers
/// (N = 3 or 5 typically) accepted `SET NX PX` for this owner within the validity time.
///
/// * **Acquire**: the same script on every server at once, each bounded by a per-server
///   timeout much shorter than the TTL. Held when at least ⌊N/2⌋+1 servers took it and the
///   time left, TTL − elapsed − drift allowance (1 % of the TTL + 2 ms), is positive; the
///   guard's lease is counted from before the first request, so its local deadline is that
///   validity. Otherwise every server is told to release (partial holds, and servers that did
///   not answer, since their `SET` may have landed), and the attempt counts as contended — or,
///   when so many servers failed that no majority is possible, as an error of kind
///   [`Connection`](distlock_core::ErrorKind::Connection) naming the quorum.
/// * **Renewal** succeeds when a majority extended; it reports `NotHeld` (the hold is lost)
///   once a majority can no longer be reached because servers said the lock is not ours.
/// * **Release** runs everywhere and succeeds when a majority freed the lock. It reports
///   `NotHeld` when so many servers said the lock is not ours that this owner cannot have
///   held a majority (a stale guard; its leftover votes are freed all the same), and an
///   error of kind [`Connection`](distlock_core::ErrorKind::Connection) when unreachable
///   servers leave it unconfirmed (what they hold expires with the TTL).
/// * **No fencing tokens.** Each server has its own counter, and a majority's counters need
///   not move together: a server that restarted without persistence, or that missed a
///   holder's increment, can put a later holder's maximum below an earlier one's. Nothing
///   short of a consensus system makes Redlock tokens provably monotonic, so the capability
///   is not claimed and guards carry `None`. Use a single node with persistence, or
///   ZooKeeper, when the resource must check fencing tokens.
/// * Waiting subscribes to the release channel on every server. There is no waiter queue
///   (independent queues on N servers could order waiters differently, and no waiter would
///   win a majority): a release wakes every waiter, who race for it (not FIFO).
#[derive(Clone)]
pub struct Redlock {
    engine: Arc<Engine>,
}

impl fmt::Debug for Redlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redlock")
            .field("config", &self.engine.config)
            .finish()
    }
}

impl Redlock {
    /// Makes a client of the independent servers in `config`. Servers that are down now are
    /// dialled again on every use; connecting fails (kind
    /// [`Connection`](distlock_core::ErrorKind::Connection)) only when no majority answers.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is held until it returns.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let n = config.servers().len();
        let nodes = config
            .servers()
            .iter()
            .map(|server| {
                Ok(Node {
                    conn: Conn::single_lazy(&config, server)?,
                    label: server.redacted(),
                    secrets: config.secrets(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let quorum = n / 2 + 1;
        let pings = join_all(
            nodes
                .iter()
                .map(|node| tokio::time::timeout(config.connect_timeout * 2, node.ping())),
        )
        .await;
        let up = pings.iter().filter(|p| matches!(p, Ok(Ok(())))).count();
        let label = servers_label(config.servers());
        // A refused password is the configuration's fault: retrying cannot fix it, so it
        // must not be reported as a (retryable) connection error.
        let refused = pings.iter().find_map(|p| match p {
            Ok(Err(e)) if e.kind() == distlock_core::ErrorKind::Config => Some(e.message()),
            _ => None,
        });
        if let (true, Some(why)) = (up < quorum, refused) {
            return Err(LockError::config(format!(
                "Redlock needs {quorum} of {n} servers, and authentication failed: {why}"
            )));
        }
        if up < quorum {
            return Err(LockError::connection(format!(
                "Redlock needs {quorum} of {n} servers, only {up} answered ({label})"
            )));
        }
        let sources = config
            .servers()
            .iter()
            .map(|s| pubsub_client(&config, s).map(|c| vec![c]))
            .collect::<Result<Vec<_>>>()?;
        // No queue, so no wake channel of its own: waiters listen on the lock's channel.
        let subscriber = Subscriber::start(sources, config.response_timeout, None);
        let backend: Arc<dyn Backend> = Arc::new(Quorum {
            nodes,
            quorum,
            label,
            response_timeout: config.response_timeout,
        });
        Ok(Redlock {
            engine: Arc::new(Engine {
                renewals: Renewals::group(backend.clone()),
                backend,
                subscriber,
                config,
            }),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &RedisConfig {
        &self.engine.config
    }
}

#[async_trait]
impl DistributedLock for Redlock {
    /// Takes `name` on a majority (see [`Redlock`]). Not reentrant: a second acquire of a
    /// name this client holds is an ordinary contender.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped while an attempt may have taken the lock anywhere, a background
    /// task releases it on every server by owner token; the TTL is the backstop.
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
        "redlock"
    }
}

struct Quorum {
    nodes: Vec<Node>,
    quorum: usize,
    label: String,
    response_timeout: Duration,
}

impl fmt::Debug for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quorum")
            .field("servers", &self.label)
            .field("quorum", &self.quorum)
            .finish()
    }
}

impl Quorum {
    /// Per-server bound: short against the TTL, so one dead server cannot eat the validity.
    fn per_node(&self, ttl: Duration) -> Duration {
        (ttl / 5).clamp(
            Duration::from_millis(100),
            self.response_timeout.max(Duration::from_millis(100)),
        )
    }

    /// A renewal holds when a majority extended; it is `NotHeld` once servers saying the
    /// lock is not ours leave no majority possible.
    fn judge_extend(
        &self,
        keys: &LockKeys,
        ok: usize,
        absent: usize,
        failed: usize,
        last: Option<LockError>,
    ) -> Result<()> {
        if ok >= self.quorum {
            Ok(())
        } else if absent > self.nodes.len() - self.quorum {
            Err(not_held(keys))
        } else {
            Err(self.too_few(failed, last))
        }
    }

    fn too_few(&self, failed: usize, error: Option<LockError>) -> LockError {
        let n = self.nodes.len();
        let why = error.map_or_else(|| "timed out".to_string(), |e| e.to_string());
        LockError::connection(format!(
            "Redlock needs {} of {n} servers but {failed} failed (last: {why}); servers {}",
            self.quorum, self.label
        ))
    }

    /// Releases on every server, each bounded by `bound`; counts (freed, not ours, failed)
    /// and the last error. A server that did not confirm in time is told again in the
    /// background for up to `linger`: a frozen server applies a pending `SET` when it thaws,
    /// and the undo sent before may then only earn a `NOSCRIPT` that nobody waited for.
    async fn unlock_all(
        &self,
        keys: &LockKeys,
        token: &str,
        wake: Wake,
        bound: Duration,
        linger: Duration,
    ) -> (usize, usize, usize, Option<LockError>) {
        let results = join_all(
            self.nodes
                .iter()
                .map(|n| tokio::time::timeout(bound, n.unlock_raw(keys, token, wake))),
        )
        .await;
        for (node, r) in self.nodes.iter().zip(&results) {
            if !matches!(r, Ok(Ok(_))) {
                spawn_late_unlock(node.clone(), keys.clone(), token.to_string(), wake, linger);
            }
        }
        let (mut freed, mut absent, mut failed, mut last) = (0, 0, 0, None);
        for r in results {
            match r {
                Ok(Ok(true)) => freed += 1,
                Ok(Ok(false)) => absent += 1,
                Ok(Err(e)) => {
                    failed += 1;
                    last = Some(e);
                }
                Err(_) => failed += 1,
            }
        }
        (freed, absent, failed, last)
    }
}

/// How long a release keeps retrying, in the background, on a server that did not confirm
/// it in time (the lease, unknown here, is the backstop beyond that).
const RELEASE_LINGER: Duration = Duration::from_secs(30);

/// Compare-and-delete by `token` on one server, in the background, for at most `linger`
/// (only ever frees this owner's key, so it is harmless whenever it lands).
fn spawn_late_unlock(node: Node, keys: LockKeys, token: String, wake: Wake, linger: Duration) {
    distlock_core::backend::spawn_background(async move {
        let _ = tokio::time::timeout(linger, node.unlock_raw(&keys, &token, wake)).await;
    });
}

impl Node {
    pub(crate) async fn ping(&self) -> Result<()> {
        let Conn::Single(manager) = &self.conn else {
            return Ok(());
        };
        let mut manager = manager.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut manager)
            .await
            .map(|_| ())
            .map_err(|e| crate::error::map_error(e, "PING", &self.label, &self.secrets))
    }
}

#[async_trait]
impl Backend for Quorum {
    async fn try_lock(
        &self,
        keys: &LockKeys,
        token: &str,
        ttl: Duration,
        _waiter: Option<Wait<'_>>,
    ) -> Result<Attempt> {
        let started = Instant::now();
        let bound = self.per_node(ttl);
        let results = join_all(
            self.nodes
                .iter()
                .map(|n| tokio::time::timeout(bound, n.try_lock(keys, token, ttl, None))),
        )
        .await;
        let (mut won, mut failed, mut expires_in, mut last) = (0, 0, None::<Duration>, None);
        for r in results {
            match r {
                Ok(Ok(Attempt::Acquired { .. })) => won += 1,
                // Never: the nodes are asked without a wait, so nothing is granted to one.
                Ok(Ok(Attempt::Granted { .. })) => {}
                Ok(Ok(Attempt::Held { expires_in: e, .. })) => {
                    if let Some(e) = e {
                        expires_in = Some(expires_in.map_or(e, |x| x.min(e)));
                    }
                }
                Ok(Err(e)) => {
                    failed += 1;
                    last = Some(e);
                }
                Err(_) => failed += 1,
            }
        }
        let valid = ttl
            .checked_sub(started.elapsed() + drift_allowance(ttl))
            .is_some_and(|left| !left.is_zero());
        if won >= self.quorum && valid {
            return Ok(Attempt::Acquired {
                fence: None,
                started,
            });
        }
        // Undo partial holds, including on servers that failed: their SET may have landed.
        // Silently: the lock was never held, and waking every contender after a split vote
        // would have them split again at once. They retry on their jittered re-check.
        // Bounded like the attempt: a server that did not answer it will not answer this
        // either, and waiting a full response timeout on it would only slow every contended
        // try. Such a server gets the undo again in the background until the TTL has passed
        // (commands on one connection run in order, so it lands behind the late SET).
        self.unlock_all(keys, token, Wake::Nobody, bound, ttl).await;
        if failed > self.nodes.len() - self.quorum {
            return Err(self.too_few(failed, last));
        }
        Ok(Attempt::Held {
            expires_in,
            started,
        })
    }

    fn queues(&self) -> bool {
        false
    }

    async fn leave(&self, _keys: &LockKeys, _waiter: &str, _grant_token: &str) -> Result<()> {
        Ok(())
    }

    async fn unlock(&self, keys: &LockKeys, token: &str) -> Result<()> {
        let (freed, absent, failed, last) = self
            .unlock_all(
                keys,
                token,
                Wake::All,
                self.response_timeout,
                RELEASE_LINGER,
            )
            .await;
        // Judged like a renewal: freeing a leftover minority vote is not releasing a hold
        // (another client may have had the majority meanwhile), so it is `NotHeld`.
        if freed >= self.quorum {
            Ok(())
        } else if absent > self.nodes.len() - self.quorum {
            Err(not_held(keys))
        } else {
            Err(self.too_few(failed, last))
        }
    }

    async fn extend(&self, keys: &LockKeys, token: &str, ttl: Duration) -> Result<()> {
        // A lease Redis cannot take is the caller's error, not a quorum failure.
        ttl_ms(ttl)?;
        let bound = self.per_node(ttl);
        let results = join_all(
            self.nodes
                .iter()
                .map(|n| tokio::time::timeout(bound, n.extend_raw(keys, token, ttl))),
        )
        .await;
        let (mut ok, mut absent, mut failed, mut last) = (0, 0, 0, None);
        for r in results {
            match r {
                Ok(Ok(true)) => ok += 1,
                Ok(Ok(false)) => absent += 1,
                Ok(Err(e)) => {
                    failed += 1;
                    last = Some(e);
                }
                Err(_) => failed += 1,
            }
        }
        self.judge_extend(keys, ok, absent, failed, last)
    }

    /// Each server gets the whole batch in one call (bounded like a single renewal); each
    /// hold is then judged like [`Backend::extend`] judges one.
    async fn extend_many(&self, holds: &[(&LockKeys, &str)], ttl: Duration) -> Vec<Result<()>> {
        if let Err(e) = ttl_ms(ttl) {
            return holds.iter().map(|_| Err(e.clone())).collect();
        }
        let bound = self.per_node(ttl);
        let per_node = join_all(self.nodes.iter().map(|n| async move {
            tokio::time::timeout(bound, n.extend_many_raw(holds, ttl))
                .await
                .ok()
        }))
        .await;
        (0..holds.len())
            .map(|i| {
                let (mut ok, mut absent, mut failed, mut last) = (0, 0, 0, None);
                for node in &per_node {
                    match node.as_ref().and_then(|r| r.get(i)) {
                        Some(Ok(true)) => ok += 1,
                        Some(Ok(false)) => absent += 1,
                        Some(Err(e)) => {
                            failed += 1;
                            last = Some(e.clone());
                        }
                        None => failed += 1,
                    }
                }
                self.judge_extend(holds[i].0, ok, absent, failed, last)
            })
            .collect()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_leases(true)
            .with_lost_detection(true)
            .with_cross_process(true)
    }

    fn label(&self) -> &str {
        &self.label
    }
}
