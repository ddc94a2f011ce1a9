//! The acquire loop shared by every mode: one attempt, then notified waiting.
//!
//! Queueing (single server and cluster): a waiting acquire has a waiter id for the whole
//! wait. Its first failed attempt puts that id at the tail of the lock's waiter queue (in the
//! same script), every later attempt refreshes its entry, and only the queue's head can take
//! the lock, so waiters are served in arrival order and a try never jumps the queue.
//!
//! Direct handoff: a release *grants* the lock to the live head — sets the lock to the
//! wait's grant token (one per wait, recorded with the entry) with a short lease
//! ([`GRANT_LEASE`](crate::backend::GRANT_LEASE), which the guard renews to the TTL 0.3 s in
//! unless it was released by then),
//! advances the fence, pops the head — and publishes `"<id> <seq> <fence>"`, which the client's
//! subscriber routes to that one waiting task. The waiter returns its guard without another
//! round trip. Its lease must not count from the message's arrival (the store's lease began
//! earlier, at the grant): it counts from the send time of attempt `seq`, the wait's attempt
//! that last refreshed the entry before the grant, so it ran before the grant. A grant naming
//! an older attempt than the latest one answered "queued" is stale (that later attempt found
//! the lock not ours: the granted lease ran out) and is ignored; one naming a newer attempt,
//! or leaving less than half the TTL, is confirmed by an immediate attempt, which finds the
//! lock held by the grant token, resets its lease and returns it (the same path picks up a
//! grant whose message was lost, at the next re-check).
//!
//! A waiter that gives up (times out, fails, or is dropped) leaves the queue; the leave
//! compare-and-deletes a grant it had not seen yet and passes the free lock to the next head.
//! One that vanished without leaving blocks the lock for at most its entry's lifetime
//! ([`QUEUE_ENTRY_TTL`] after its last attempt) — unless the lock was granted to it within
//! that time (it died less than an entry lifetime before the grant): then the lock stays
//! blocked until the short granted lease runs out (3 s at most). Redlock keeps no queue: a
//! release wakes all its waiters, who race.
//!
//! Waiting: after a failed first attempt the waiter registers on its client's wake channel
//! (Redlock: the lock's release channel; one subscriber connection per client), waits until
//! the subscription is confirmed (bounded), and tries again (a release between the two
//! attempts would otherwise go unnoticed); when the channel was already subscribed (any
//! earlier wait of the client; Redlock: another waiter, or a recent wait on the name) it
//! registers before its first attempt and needs no second one. Then it sleeps until the first of: its
//! wake-up message, the holder's lease expiry when it is next in line (from `PTTL`; an expiry
//! publishes nothing), a jittered re-check in [`RECHECK`] (the safety net for lost messages,
//! which also refreshes the queue entry), or the caller's deadline. Handoff time is therefore
//! set by the notification, not by a poll interval.
//!
//! Connection failures during a wait (a restart, a failover, a lost quorum) are retried as
//! the core's [`RetryPolicy`](distlock_core::RetryPolicy) in `AcquireOptions::retry` says,
//! like on every backend; a try reports them at once.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use distlock_core::backend::{
    Armed, ConnectionRetry, Deadline, GuardParts, HoldStatus, Lease, RenewalGroup,
};
use distlock_core::lease::local_deadline;
use distlock_core::{AcquireOptions, ErrorKind, LockError, LockGuard, LockName, Result};
use rand::Rng;
use tokio::time::Instant;

#[cfg(doc)]
use crate::backend::QUEUE_ENTRY_TTL;
use crate::backend::{granted_for, ttl_ms, Attempt, Backend, Wait};
use crate::config::RedisConfig;
use crate::hold::{PendingAcquire, QueueEntry, RedisHold};
use crate::keys::LockKeys;
use crate::subscriber::{Grant, Interest, Subscriber};

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

/// What a waiter does with the grant a message handed it.
#[derive(Debug, PartialEq, Eq)]
enum GrantUse {
    /// Return the hold: the store's lease began no earlier than `started`.
    Take { started: Instant, fence: u64 },
    /// Make an attempt now: it finds the lock held by the grant token (and resets the lease)
    /// or queues again.
    Confirm,
    /// No grant, or a stale one.
    Ignore,
}

/// Judges `grant` against the wait's latest attempt answered "queued" (`queued`: its number
/// and send time). Attempt `n` answered "queued" ran after every grant naming an attempt
/// before `n` (a grant names the last attempt that refreshed the entry), and found the lock
/// not the wait's: such a grant is over. A grant naming `n` itself came after attempt `n`
/// was sent, so its lease counts from then, as long as at least half the TTL is left (else
/// confirm: a lease nearly over is no use, and the confirming attempt restarts it). A grant
/// naming a later attempt (one whose reply was lost) is confirmed too.
fn judge(
    grant: Option<Grant>,
    queued: Option<(u64, Instant)>,
    ttl: Duration,
    renew: bool,
) -> GrantUse {
    let Some(grant) = grant else {
        return GrantUse::Ignore;
    };
    let held = granted_for(ttl);
    match queued {
        Some((seq, _)) if grant.seq < seq => GrantUse::Ignore,
        // A short grant without renewal would end long before the TTL the caller asked for.
        Some((seq, _)) if grant.seq == seq && held < ttl && !renew => GrantUse::Confirm,
        Some((seq, started)) if grant.seq == seq => {
            let left = local_deadline(started, held).saturating_duration_since(Instant::now());
            if left >= held / 2 {
                GrantUse::Take {
                    started,
                    fence: grant.fence,
                }
            } else {
                GrantUse::Confirm
            }
        }
        _ => GrantUse::Confirm,
    }
}

fn judge_interest(
    interest: Option<&Interest>,
    queued: Option<(u64, Instant)>,
    ttl: Duration,
    renew: bool,
) -> GrantUse {
    judge(interest.and_then(Interest::grant), queued, ttl, renew)
}

/// Leaves the queue before a wait returns without the lock, so the caller (or anyone) finds
/// the queue as if it never waited; stays armed while that runs, for a caller that drops it,
/// and when it fails: dropped armed, it retries in the background (a grant the waiter never
/// saw would otherwise block the lock for the waiter's whole TTL).
async fn leave(queued: Option<Armed<QueueEntry>>) {
    if let Some(mut entry) = queued {
        if entry.state().leave().await.is_ok() {
            entry.disarm();
        }
    }
}

/// A hold a wait obtained: the token the store holds, its fencing token, and its lease.
struct Taken {
    token: String,
    fence: Option<u64>,
    /// When the request the lease counts from was sent.
    started: Instant,
    /// The lease a grant set, when shorter than the TTL ([`Lease::first`]).
    first: Option<Duration>,
}

impl Taken {
    /// A grant its message handed over, counting from the attempt it names.
    fn granted(token: String, fence: u64, started: Instant, ttl: Duration) -> Self {
        Taken {
            token,
            fence: Some(fence),
            started,
            first: Some(granted_for(ttl)),
        }
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
        // What a release sets the lock to when it grants it to this wait.
        let grant_token = waiter
            .as_ref()
            .map(|_| distlock_core::backend::new_owner_token())
            .unwrap_or_default();
        // The number of the latest attempt, and of the latest one answered "queued" with
        // its send time (see `judge`).
        let mut seq = 0u64;
        let mut queued_at: Option<(u64, Instant)> = None;
        // Armed from the first attempt that may enqueue until the lock is ours or the waiter
        // left; dropped armed (an error, a cancelled future) it leaves in the background.
        let mut queued: Option<Armed<QueueEntry>> = None;
        let mut pending: Armed<PendingAcquire>;
        // Queued waiters are told on their client's own wake channel (their queue entries name
        // it), so a grant reaches this client alone; Redlock's on the lock's channel.
        let channel: Cow<'_, str> = match (&waiter, self.subscriber.own_channel()) {
            (Some(_), Some(own)) => Cow::Borrowed(own),
            // A try never listens.
            _ if deadline.is_try() => Cow::Borrowed(""),
            _ => Cow::Owned(keys.channel.clone()),
        };
        // A channel this client already listens on needs no confirmation: register first,
        // and the first failed attempt is followed by the wait itself.
        let mut interest = (!deadline.is_try() && self.subscriber.is_ready(&channel))
            .then(|| self.subscriber.interest(&channel, waiter.as_deref()))
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
                    grant_token: grant_token.clone(),
                }));
            }
            seq += 1;
            let wait = waiter.as_deref().map(|id| Wait {
                id,
                grant_token: &grant_token,
                seq,
                channel: &channel,
            });
            // `pending` stays armed on every early return: the attempt may have landed.
            let outcome = match deadline
                .run(self.backend.try_lock(&keys, &token, ttl, wait))
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
            pending.disarm();
            let expires_in = match outcome {
                Attempt::Acquired { fence, started } | Attempt::Granted { fence, started } => {
                    // Granted: the lock was granted to this wait (its message lost, or not
                    // trusted), and this attempt's own token took nothing.
                    let token = match outcome {
                        Attempt::Granted { .. } => grant_token,
                        _ => token,
                    };
                    let taken = Taken {
                        token,
                        fence,
                        started,
                        first: None,
                    };
                    return Ok(Some(self.taken(
                        &mut queued,
                        name,
                        keys,
                        taken,
                        ttl,
                        options,
                    )));
                }
                Attempt::Held {
                    expires_in,
                    started,
                } => {
                    if waiter.is_some() {
                        queued_at = Some((seq, started));
                    }
                    expires_in
                }
            };
            // A grant naming this attempt may have arrived before its reply.
            match judge_interest(interest.as_ref(), queued_at, ttl, options.renew) {
                GrantUse::Take { started, fence } => {
                    let taken = Taken::granted(grant_token, fence, started, ttl);
                    return Ok(Some(self.taken(
                        &mut queued,
                        name,
                        keys,
                        taken,
                        ttl,
                        options,
                    )));
                }
                GrantUse::Confirm => continue,
                GrantUse::Ignore => {}
            }
            if deadline.is_try() || deadline.expired() {
                leave(queued).await;
                return Ok(None);
            }
            let Some(waiting) = interest.as_mut() else {
                let mut fresh = self.subscriber.interest(&channel, waiter.as_deref());
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
            // A grant that arrived in time is taken even if the limit ran out since.
            if let GrantUse::Take { started, fence } =
                judge(waiting.grant(), queued_at, ttl, options.renew)
            {
                let taken = Taken::granted(grant_token, fence, started, ttl);
                return Ok(Some(self.taken(
                    &mut queued,
                    name,
                    keys,
                    taken,
                    ttl,
                    options,
                )));
            }
            if deadline.expired() {
                leave(queued).await;
                return Ok(None);
            }
        }
    }

    /// The lock is this wait's: its queue entry went with the script that took or granted
    /// it, so nothing is left to undo.
    fn taken(
        &self,
        queued: &mut Option<Armed<QueueEntry>>,
        name: &LockName,
        keys: LockKeys,
        taken: Taken,
        ttl: Duration,
        options: &AcquireOptions,
    ) -> LockGuard {
        if let Some(entry) = queued.as_mut() {
            entry.disarm();
        }
        LockGuard::new(GuardParts {
            name: name.clone(),
            owner_token: taken.token.clone(),
            fencing_token: taken.fence,
            hold: Arc::new(RedisHold {
                backend: self.backend.clone(),
                keys,
                token: taken.token,
                renewals: self.renewals.clone(),
            }),
            status: HoldStatus::new(),
            lease: Some(match taken.first {
                Some(first) => Lease::new(ttl, taken.started, options.renew).starting_short(first),
                None => Lease::new(ttl, taken.started, options.renew),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn ago(d: Duration) -> Instant {
        Instant::now().checked_sub(d).unwrap_or_else(Instant::now)
    }

    fn grant(seq: u64) -> Option<Grant> {
        Some(Grant { seq, fence: 42 })
    }

    /// The lease of a grant counts from the send time of the attempt it names (which ran
    /// before the grant), never from when the message was read.
    #[test]
    fn a_grant_naming_the_latest_queued_attempt_counts_from_its_send_time() {
        let sent = ago(Duration::from_secs(1));
        assert_eq!(
            judge(grant(3), Some((3, sent)), TTL, true),
            GrantUse::Take {
                started: sent,
                fence: 42
            }
        );
    }

    /// Too little of the granted lease left after the attempt it names: confirm instead of
    /// returning a guard about to expire (or already expired: a stalled waiter's grant ran
    /// out). A grant is at most `GRANT_LEASE` long, whatever the TTL.
    #[test]
    fn a_grant_with_less_than_half_its_lease_left_is_confirmed() {
        let held = granted_for(TTL);
        assert!(held < TTL / 2);
        let sent = ago(held / 2 + Duration::from_millis(100));
        assert_eq!(
            judge(grant(3), Some((3, sent)), TTL, true),
            GrantUse::Confirm
        );
        let sent = ago(TTL * 2);
        assert_eq!(
            judge(grant(3), Some((3, sent)), TTL, true),
            GrantUse::Confirm
        );
    }

    /// A grant shorter than the TTL is only taken by a guard that renews (it renews to the
    /// TTL early); without renewal the confirming attempt gives the lock its whole TTL.
    #[test]
    fn a_short_grant_without_renewal_is_confirmed() {
        let sent = Instant::now();
        assert_eq!(
            judge(grant(3), Some((3, sent)), TTL, false),
            GrantUse::Confirm
        );
        let short = granted_for(TTL) / 2;
        assert!(matches!(
            judge(grant(3), Some((3, sent)), short, false),
            GrantUse::Take { .. }
        ));
    }

    /// A later attempt answered "queued" ran after the grant and found the lock not ours: the
    /// grant is over. A grant naming an attempt whose reply was lost is confirmed.
    #[test]
    fn stale_grants_are_ignored_and_unknown_ones_confirmed() {
        let sent = Instant::now();
        assert_eq!(
            judge(grant(2), Some((3, sent)), TTL, true),
            GrantUse::Ignore
        );
        assert_eq!(
            judge(grant(4), Some((3, sent)), TTL, true),
            GrantUse::Confirm
        );
        assert_eq!(judge(grant(1), None, TTL, true), GrantUse::Confirm);
        assert_eq!(judge(None, Some((3, sent)), TTL, true), GrantUse::Ignore);
    }
}
