//! The acquire loop shared by every mode: one attempt, then notified waiting.
//!
//! Queueing (single server and cluster): a waiting acquire has a waiter id for the whole
//! wait. Its first failed attempt puts that id at the tail of the lock's waiter queue (in the
//! same script), every later attempt refreshes its entry, and only the queue's head can take
//! the lock, so waiters are served in arrival order and a try never jumps the queue. A
//! release publishes the head's id, which the client's subscriber routes to that one waiting
//! task. A waiter that gives up (times out, fails, or is dropped) leaves the queue, and wakes
//! the next head when the lock is free; one that vanished without leaving blocks the lock for
//! at most its entry's lifetime ([`QUEUE_ENTRY_TTL`] after its last attempt). Redlock keeps
//! no queue: a release wakes all its waiters, who race.
//!
//! Waiting: after a failed first attempt the waiter registers on the lock's release channel
//! (shared subscriber connection), waits until the subscription is confirmed (bounded), and
//! tries again (a release between the two attempts would otherwise go unnoticed); when the
//! channel was already subscribed (another waiter, or a recent wait on the name) it registers
//! before its first attempt and needs no second one. Then it sleeps until the first of: its
//! wake-up message, the holder's lease expiry when it is next in line (from `PTTL`; an expiry
//! publishes nothing), a jittered re-check in [`RECHECK`] (the safety net for lost messages,
//! which also refreshes the queue entry), or the caller's deadline. Handoff time is therefore
//! set by the notification, not by a poll interval.
//!
//! Connection failures during a wait (a restart, a failover, a lost quorum) are retried as
//! the core's [`RetryPolicy`](distlock_core::RetryPolicy) in `AcquireOptions::retry` says,
//! like on every backend; a try reports them at once.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use distlock_core::backend::{
    Armed, ConnectionRetry, Deadline, GuardParts, HoldStatus, Lease, RenewalGroup,
};
use distlock_core::{AcquireOptions, ErrorKind, LockError, LockGuard, LockName, Result};
use rand::Rng;
use tokio::time::Instant;

#[cfg(doc)]
use crate::backend::QUEUE_ENTRY_TTL;
use crate::backend::{ttl_ms, Attempt, Backend};
use crate::config::RedisConfig;
use crate::hold::{PendingAcquire, QueueEntry, RedisHold};
use crate::keys::LockKeys;
use crate::subscriber::Subscriber;

/// The safety-net re-check interval of a waiter, drawn uniformly from this range (ms) each
/// time, so waiters do not retry in lockstep.
pub const RECHECK: Range<u64> = 100..250;

/// How long a waiter waits for its subscription to be confirmed before relying on re-checks.
const SUBSCRIBE_LIMIT: Duration = Duration::from_millis(500);

pub(crate) struct Engine {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) subscriber: Subscriber,
    pub(crate) config: RedisConfig,
    /// Renews every hold of this client (see [`crate::hold::Renewals`]).
    pub(crate) renewals: RenewalGroup,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("servers", &self.backend.label())
            .field("key_prefix", &self.config.key_prefix)
            .finish_non_exhaustive()
    }
}

fn recheck_in() -> Duration {
    Duration::from_millis(rand::rng().random_range(RECHECK))
}

/// A waiter id: unique per wait, never [`WAKE_ALL`](crate::subscriber).
fn new_waiter_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// Leaves the queue before a wait returns without the lock, so the caller (or anyone) finds
/// the queue as if it never waited; stays armed while that runs, for a caller that drops it.
async fn leave(queued: Option<Armed<QueueEntry>>) {
    if let Some(mut entry) = queued {
        entry.state().leave().await;
        entry.disarm();
    }
}

impl Engine {
    pub(crate) async fn acquire(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        let ttl = options.ttl.unwrap_or(self.config.default_ttl);
        if ttl < Duration::from_millis(1) {
            return Err(LockError::config("a lease TTL must be at least 1 ms"));
        }
        ttl_ms(ttl)?;
        let keys = LockKeys::new(&self.config.key_prefix, name);
        // A zero limit is a try (not an attempt cut off before its reply), and a limit beyond
        // the clock's range is a very long wait (not an overflow panic).
        let deadline = Deadline::start(options.wait);
        let mut retry = ConnectionRetry::new(options.retry);
        let waiter = (!deadline.is_try() && self.backend.queues()).then(new_waiter_id);
        // Armed from the first attempt that may enqueue until the lock is ours or the waiter
        // left; dropped armed (an error, a cancelled future) it leaves in the background.
        let mut queued: Option<Armed<QueueEntry>> = None;
        let mut pending: Armed<PendingAcquire>;
        // A channel this client already listens on needs no confirmation: register first,
        // and the first failed attempt is followed by the wait itself.
        let mut interest = (!deadline.is_try() && self.subscriber.is_ready(&keys.channel))
            .then(|| self.subscriber.interest(&keys.channel, waiter.as_deref()))
            .filter(|i| i.ready());
        loop {
            // Every attempt has a token of its own, generated before anything is sent so a
            // cancelled attempt can be cleaned up by it. Undoing an attempt that failed (or
            // Redlock's undo of a split vote, retried in the background) can then never
            // remove a later attempt's hold. Replacing `pending` drops the previous one:
            // armed, it undoes its attempt in the background.
            let token = distlock_core::backend::new_owner_token();
            pending = Armed::new(PendingAcquire {
                backend: self.backend.clone(),
                keys: keys.clone(),
                token: token.clone(),
            });
            if let (None, Some(id)) = (&queued, &waiter) {
                queued = Some(Armed::new(QueueEntry {
                    backend: self.backend.clone(),
                    keys: keys.clone(),
                    waiter: id.clone(),
                }));
            }
            // `pending` stays armed on every early return: the attempt may have landed.
            let outcome = match deadline
                .run(self.backend.try_lock(&keys, &token, ttl, waiter.as_deref()))
                .await
            {
                Some(Ok(outcome)) => outcome,
                Some(Err(e)) if e.kind() == ErrorKind::Connection => {
                    match retry.after_failure(&deadline) {
                        Some(pause) => {
                            tracing::debug!(error = %e, ?pause, "Redis unreachable; retrying the acquire");
                            tokio::time::sleep(pause).await;
                            continue;
                        }
                        None => return Err(e),
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {
                    leave(queued).await;
                    return Ok(None);
                }
            };
            retry.progressed();
            let expires_in = match outcome {
                Attempt::Acquired { fence, started } => {
                    pending.disarm();
                    // The script that took the lock also took this waiter off the queue.
                    if let Some(entry) = queued.as_mut() {
                        entry.disarm();
                    }
                    return Ok(Some(
                        self.guard(name, keys, token, fence, started, ttl, options),
                    ));
                }
                Attempt::Held { expires_in } => {
                    pending.disarm();
                    expires_in
                }
            };
            if deadline.is_try() || deadline.expired() {
                leave(queued).await;
                return Ok(None);
            }
            let Some(waiting) = interest.as_mut() else {
                let mut fresh = self.subscriber.interest(&keys.channel, waiter.as_deref());
                let limit = Instant::now() + SUBSCRIBE_LIMIT;
                let limit = deadline.at().map_or(limit, |d| d.min(limit));
                let _ = tokio::time::timeout_at(limit, fresh.subscribed()).await;
                fresh.mark_seen();
                interest = Some(fresh);
                // The wait for the subscription may have used up the limit: an attempt sent
                // now could only be cancelled at once (and, had it landed, undone).
                if deadline.expired() {
                    leave(queued).await;
                    return Ok(None);
                }
                continue;
            };
            let mut wake = Instant::now() + recheck_in();
            if let Some(left) = expires_in {
                wake = wake.min(Instant::now() + left + Duration::from_millis(1));
            }
            if let Some(d) = deadline.at() {
                wake = wake.min(d);
            }
            tokio::select! {
                _ = waiting.notified() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            waiting.mark_seen();
            if deadline.expired() {
                leave(queued).await;
                return Ok(None);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn guard(
        &self,
        name: &LockName,
        keys: LockKeys,
        token: String,
        fence: Option<u64>,
        started: Instant,
        ttl: Duration,
        options: &AcquireOptions,
    ) -> LockGuard {
        LockGuard::new(GuardParts {
            name: name.clone(),
            owner_token: token.clone(),
            fencing_token: fence,
            hold: Arc::new(RedisHold {
                backend: self.backend.clone(),
                keys,
                token,
                renewals: self.renewals.clone(),
            }),
            status: HoldStatus::new(),
            lease: Some(Lease {
                ttl,
                started,
                renew: options.renew,
            }),
        })
    }
}
