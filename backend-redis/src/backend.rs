//! What the waiting loop and the guard need from a store: one attempt, release, extend.
//! Implemented by [`Node`] (a single server or a cluster) and by the Redlock quorum.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::{Capabilities, LockError, Result};
use futures::future::join_all;
use tokio::time::Instant;

use crate::conn::{Conn, ToRedisArgsDyn};
use crate::error::map_error;
use crate::keys::LockKeys;
use crate::scripts::{ACQUIRE, EXTEND, EXTEND_MANY, LEAVE, RELEASE};

/// How long a queued waiter's entry lives unless the waiter refreshes it (every attempt does,
/// and a waiter attempts at least every [`RECHECK`](crate::RECHECK)). A waiter that vanished
/// blocks the lock for at most this long after it reached the head of the queue.
pub(crate) const QUEUE_ENTRY_TTL: Duration = Duration::from_millis(1_000);

/// The longest lease a release hands a waiter (its TTL when shorter): the waiter renews it
/// to its TTL a tenth of the way into it (a background renewal, not a round trip before
/// the acquire returns; a hold released before then needs none).
/// A waiter that vanished within [`QUEUE_ENTRY_TTL`] before the grant (killed, frozen,
/// partitioned) blocks the lock this long, not for its whole TTL.
pub(crate) const GRANT_LEASE: Duration = Duration::from_millis(3_000);

/// How long a grant holds the lock for a wait with lease `ttl` before its waiter renews it.
pub(crate) fn granted_for(ttl: Duration) -> Duration {
    ttl.min(GRANT_LEASE)
}

/// Whom a release wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Nobody (Redlock undoing a split vote).
    Nobody,
    /// The head of the waiter queue, if any: the lock is granted to it.
    Head,
    /// Every waiter (Redlock keeps no queue).
    All,
}

/// A waiting acquire, as one of its attempts presents itself to a store with a queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait<'a> {
    /// Unique per wait; names the waiter in the queue and in grant messages.
    pub id: &'a str,
    /// The owner token a release hands the lock to when it grants it to this waiter: one per
    /// wait (not per attempt), so the wait's clean-up can compare-and-delete a grant it never
    /// saw, and never touches an attempt's own hold.
    pub grant_token: &'a str,
    /// This attempt's number within the wait (1, 2, …), recorded with the queue entry and
    /// echoed by a grant.
    pub seq: u64,
    /// The client's own wake channel, recorded with the queue entry: a grant is published
    /// there, so it reaches this client's subscriber alone.
    pub channel: &'a str,
}

/// The outcome of one acquire attempt.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// This owner holds the lock. `started` is when the request that took it was sent.
    Acquired {
        fence: Option<u64>,
        started: Instant,
    },
    /// The lock was granted to this wait (its grant token holds it) and this attempt reset
    /// its lease; `started` is when this attempt was sent.
    Granted {
        fence: Option<u64>,
        started: Instant,
    },
    /// Someone else holds it (or others queue ahead); `expires_in` is the holder's remaining
    /// lease, when known and when this waiter is next in line (others ahead are woken first).
    /// `started` is when this attempt was sent: its script ran before any grant that names it.
    Held {
        expires_in: Option<Duration>,
        started: Instant,
    },
}

#[async_trait]
pub(crate) trait Backend: Send + Sync + Debug + 'static {
    /// One attempt to take the lock for `token`. Idempotent per token: repeating it after a
    /// lost reply finds the lock already ours. `waiter` is the waiting acquire this attempt
    /// belongs to (`None` for a try): a store with a queue enqueues it when the attempt
    /// fails, lets only the head of its queue take the lock, and reports a lock already
    /// granted to the wait as [`Attempt::Granted`].
    async fn try_lock(
        &self,
        keys: &LockKeys,
        token: &str,
        ttl: Duration,
        waiter: Option<Wait<'_>>,
    ) -> Result<Attempt>;

    /// Whether waiters queue (FIFO, woken one at a time); otherwise every waiter is woken on
    /// each release and `waiter` ids are ignored.
    fn queues(&self) -> bool;

    /// Removes `waiter` from the queue (a waiter that gave up), undoes a grant to it (the lock
    /// held by `grant_token`), and passes a free lock to the next waiter. Idempotent.
    async fn leave(&self, keys: &LockKeys, waiter: &str, grant_token: &str) -> Result<()>;

    /// Compare-and-delete (and publish the release). `NotHeld` when `token` does not own it.
    async fn unlock(&self, keys: &LockKeys, token: &str) -> Result<()>;

    /// Compare-and-pexpire. `NotHeld` when `token` does not own it.
    async fn extend(&self, keys: &LockKeys, token: &str, ttl: Duration) -> Result<()>;

    /// [`Backend::extend`] of many (lock, owner token) pairs, in as few round trips as the
    /// mode allows; one result per pair, in order.
    async fn extend_many(&self, holds: &[(&LockKeys, &str)], ttl: Duration) -> Vec<Result<()>>;

    fn capabilities(&self) -> Capabilities;

    /// Redacted server list, for messages.
    fn label(&self) -> &str;
}

/// The lease in whole milliseconds, at least 1 (PX 0 is an error in Redis). A lease whose
/// milliseconds exceed Redis's signed 64-bit range is a `Config` error: cutting it down (as
/// `as u64` would) could hand the server a short lease while the guard counts on a long one.
pub(crate) fn ttl_ms(ttl: Duration) -> Result<u64> {
    u64::try_from(ttl.as_millis())
        .ok()
        .filter(|ms| i64::try_from(*ms).is_ok())
        .map(|ms| ms.max(1))
        .ok_or_else(|| LockError::config(format!("a lease of {ttl:?} is too long for Redis")))
}

fn ttl_ms_of_entry() -> u64 {
    u64::try_from(QUEUE_ENTRY_TTL.as_millis()).unwrap_or(u64::MAX)
}

/// A single Redis server or a Redis Cluster.
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) conn: Conn,
    pub(crate) label: String,
    pub(crate) secrets: Vec<String>,
}

impl Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("servers", &self.label)
            .finish()
    }
}

impl Node {
    fn fail(&self, e: redis::RedisError, what: &str) -> LockError {
        map_error(e, what, &self.label, &self.secrets)
    }

    /// Like [`Backend::unlock`] but says whether the lock was ours instead of erroring.
    pub(crate) async fn unlock_raw(
        &self,
        keys: &LockKeys,
        token: &str,
        wake: Wake,
    ) -> Result<bool> {
        let wake = match wake {
            Wake::Head => "h",
            Wake::All => "a",
            Wake::Nobody => "n",
        };
        let freed: i64 = self
            .conn
            .eval(
                &RELEASE,
                &[
                    &keys.lock,
                    &keys.fence,
                    &keys.queue,
                    &keys.queue_expiry,
                    &keys.queue_grant,
                ],
                &[&token, &wake],
            )
            .await
            .map_err(|e| self.fail(e, "releasing"))?;
        Ok(freed == 1)
    }

    /// Like [`Backend::extend_many`] but says per pair whether the lock was ours. A single
    /// server gets one script call; a cluster one call per key (the keys of a batch hash to
    /// any slot), sent concurrently on its multiplexed connections.
    pub(crate) async fn extend_many_raw(
        &self,
        holds: &[(&LockKeys, &str)],
        ttl: Duration,
    ) -> Vec<Result<bool>> {
        if let Conn::Cluster(_) = self.conn {
            return join_all(holds.iter().map(|(k, t)| self.extend_raw(k, t, ttl))).await;
        }
        let batch = async {
            let ttl_ms = ttl_ms(ttl)?;
            let keys: Vec<&str> = holds.iter().map(|(k, _)| k.lock.as_str()).collect();
            let mut args: Vec<&dyn ToRedisArgsDyn> = Vec::with_capacity(holds.len() + 1);
            args.push(&ttl_ms);
            args.extend(holds.iter().map(|(_, t)| t as &dyn ToRedisArgsDyn));
            let extended: Vec<i64> = self
                .conn
                .eval(&EXTEND_MANY, &keys, &args)
                .await
                .map_err(|e| self.fail(e, "extending"))?;
            if extended.len() != holds.len() {
                return Err(LockError::backend(format!(
                    "renewing {} locks returned {} results",
                    holds.len(),
                    extended.len()
                )));
            }
            Ok(extended)
        };
        match batch.await {
            Ok(extended) => extended.into_iter().map(|n| Ok(n == 1)).collect(),
            Err(e) => holds.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Like [`Backend::extend`] but says whether the lock was ours instead of erroring.
    pub(crate) async fn extend_raw(
        &self,
        keys: &LockKeys,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let extended: i64 = self
            .conn
            .eval(&EXTEND, &[&keys.lock], &[&token, &ttl_ms(ttl)?])
            .await
            .map_err(|e| self.fail(e, "extending"))?;
        Ok(extended == 1)
    }
}

pub(crate) fn not_held(keys: &LockKeys) -> LockError {
    LockError::not_held(format!(
        "{} is not held by this owner (it expired or was taken over)",
        keys.lock
    ))
}

#[async_trait]
impl Backend for Node {
    async fn try_lock(
        &self,
        keys: &LockKeys,
        token: &str,
        ttl: Duration,
        waiter: Option<Wait<'_>>,
    ) -> Result<Attempt> {
        let lease_ms = ttl_ms(ttl)?;
        let keys_of = [
            keys.lock.as_str(),
            keys.fence.as_str(),
            keys.queue.as_str(),
            keys.queue_expiry.as_str(),
            keys.queue_grant.as_str(),
        ];
        let started = Instant::now();
        let reply: Vec<i64> = match waiter {
            // Not queued (a try, or Redlock): the script needs only these two.
            None => {
                self.conn
                    .eval(&ACQUIRE, &keys_of, &[&token, &lease_ms])
                    .await
            }
            Some(w) => {
                let grant_ms = ttl_ms(granted_for(ttl))?;
                let details = if w.channel.is_empty() {
                    format!("{} {grant_ms} {}", w.seq, w.grant_token)
                } else {
                    format!("={} {grant_ms} {} {}", w.seq, w.grant_token, w.channel)
                };
                self.conn
                    .eval(
                        &ACQUIRE,
                        &keys_of,
                        &[
                            &token,
                            &lease_ms,
                            &w.id,
                            &ttl_ms_of_entry(),
                            &w.grant_token,
                            &details,
                        ],
                    )
                    .await
            }
        }
        .map_err(|e| self.fail(e, "acquiring"))?;
        let (taken, value, first) = match reply[..] {
            [taken, value] => (taken, value, 1),
            [taken, value, first] => (taken, value, first),
            _ => {
                return Err(LockError::backend(format!(
                    "the acquire script answered {reply:?}"
                )))
            }
        };
        if taken == 1 || taken == 2 {
            let fence = u64::try_from(value).map_err(|_| {
                LockError::backend(format!("the fencing counter {} is negative", keys.fence))
            })?;
            let fence = Some(fence);
            return Ok(if taken == 1 {
                Attempt::Acquired { fence, started }
            } else {
                Attempt::Granted { fence, started }
            });
        }
        // PTTL is -1 for a key without expiry (not ours to judge) and -2 when it just vanished.
        let expires_in = u64::try_from(value)
            .ok()
            .filter(|_| first == 1)
            .map(Duration::from_millis);
        Ok(Attempt::Held {
            expires_in,
            started,
        })
    }

    fn queues(&self) -> bool {
        true
    }

    async fn leave(&self, keys: &LockKeys, waiter: &str, grant_token: &str) -> Result<()> {
        let _: i64 = self
            .conn
            .eval(
                &LEAVE,
                &[
                    &keys.lock,
                    &keys.fence,
                    &keys.queue,
                    &keys.queue_expiry,
                    &keys.queue_grant,
                ],
                &[&waiter, &grant_token],
            )
            .await
            .map_err(|e| self.fail(e, "leaving the waiter queue"))?;
        Ok(())
    }

    async fn unlock(&self, keys: &LockKeys, token: &str) -> Result<()> {
        if self.unlock_raw(keys, token, Wake::Head).await? {
            Ok(())
        } else {
            Err(not_held(keys))
        }
    }

    async fn extend(&self, keys: &LockKeys, token: &str, ttl: Duration) -> Result<()> {
        if self.extend_raw(keys, token, ttl).await? {
            Ok(())
        } else {
            Err(not_held(keys))
        }
    }

    async fn extend_many(&self, holds: &[(&LockKeys, &str)], ttl: Duration) -> Vec<Result<()>> {
        let results = self.extend_many_raw(holds, ttl).await;
        holds
            .iter()
            .zip(results)
            .map(|((keys, _), r)| match r? {
                true => Ok(()),
                false => Err(not_held(keys)),
            })
            .collect()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_leases(true)
            .with_fencing(true)
            .with_lost_detection(true)
            .with_cross_process(true)
            .with_fifo(true)
    }

    fn label(&self) -> &str {
        &self.label
    }
}
