//! The acquire loop shared by every mode: one attempt, then notified waiting.
//!
//! Waiting: after a failed first attempt the waiter registers on the lock's release channel
//! (shared subscriber connection), waits until the subscription is confirmed (bounded), and
//! tries again (a release between the two attempts would otherwise go unnoticed). Then it
//! sleeps until the first of: a release message, the holder's lease expiry (from `PTTL`; an
//! expiry publishes nothing), a jittered re-check in [`RECHECK`] (the safety net for lost
//! messages), or the caller's deadline. Handoff time is therefore set by the notification,
//! not by a poll interval.
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

use crate::backend::{ttl_ms, Attempt, Backend};
use crate::config::RedisConfig;
use crate::hold::{PendingAcquire, RedisHold};
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
        let mut pending: Armed<PendingAcquire>;
        let mut interest = None;
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
            // `pending` stays armed on every early return: the attempt may have landed.
            let outcome = match deadline
                .run(self.backend.try_lock(&keys, &token, ttl))
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
                None => return Ok(None),
            };
            retry.progressed();
            let expires_in = match outcome {
                Attempt::Acquired { fence, started } => {
                    pending.disarm();
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
                return Ok(None);
            }
            let Some(waiting) = interest.as_mut() else {
                let mut fresh = self.subscriber.interest(&keys.channel);
                let limit = Instant::now() + SUBSCRIBE_LIMIT;
                let limit = deadline.at().map_or(limit, |d| d.min(limit));
                let _ = tokio::time::timeout_at(limit, fresh.subscribed()).await;
                fresh.mark_seen();
                interest = Some(fresh);
                // The wait for the subscription may have used up the limit: an attempt sent
                // now could only be cancelled at once (and, had it landed, undone).
                if deadline.expired() {
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
