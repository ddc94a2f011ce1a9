//! Lease bookkeeping and the renewal watchdog shared by every backend whose holds expire.
//! Holds whose backend names a [`RenewalGroup`](crate::backend::RenewalGroup) are renewed by
//! that group's scheduler instead, with the same rules.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ErrorKind, LockError};
use crate::hold::Hold;
use crate::observe::{self, LossReason};
use crate::renewal::Enrolment;
use crate::status::HoldStatus;

/// A lease as the backend granted it. Made with [`Lease::new`] (and
/// [`Lease::starting_short`]), so a later field does not break a backend.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Lease {
    /// The TTL the store was given.
    pub ttl: Duration,
    /// When the request that obtained the lease was sent (not when the reply came), so
    /// the local deadline can only err early.
    pub started: Instant,
    /// Whether the guard renews it in the background.
    pub renew: bool,
    /// How long the store holds the lease from `started` when that is shorter than `ttl`:
    /// a lease handed over by someone else is kept short until its new holder confirms it
    /// (so a holder that is gone by then blocks the lock only that long), and the guard
    /// renews it to `ttl` a tenth of the way into it. `None`: the store holds it for `ttl`.
    /// Needs `renew`.
    pub first: Option<Duration>,
}

impl Lease {
    /// A lease the store holds for `ttl` from `started` (when the request that obtained it
    /// was sent), renewed by the guard when `renew`.
    pub fn new(ttl: Duration, started: Instant, renew: bool) -> Self {
        Lease {
            ttl,
            started,
            renew,
            first: None,
        }
    }

    /// The store holds it only for `first` until the guard renews it (see [`Lease::first`]).
    pub fn starting_short(mut self, first: Duration) -> Self {
        self.first = Some(first);
        self
    }

    /// How long the store holds the lease from `started`.
    fn held_for(&self) -> Duration {
        self.first.map_or(self.ttl, |f| f.min(self.ttl))
    }
}

/// When the first renewal of a lease that started short ([`Lease::first`]) is due: a tenth
/// of the way into what is left of it. Not at once: most holds handed over in a queue
/// (a contended critical section) end within that tenth, and then the renewal would have
/// been a round trip for nothing; not at a third, as a full lease is, since the short lease
/// leaves a frozen or cut-off holder less slack (3 s at most, renewed 0.3 s in).
pub(crate) fn first_renewal_of_short(now: Instant, deadline: Instant) -> Instant {
    saturating_add(now, deadline.saturating_duration_since(now) / 10)
}

/// How much earlier than the store the guard gives up on a lease, to cover clock drift
/// between this host and the store (the Redlock paper's allowance: 1% of the TTL + 2 ms).
pub fn drift_allowance(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// The local validity deadline of a lease obtained by a request sent at `started`.
/// Saturates (at about 30 years from `started`) instead of overflowing for huge TTLs.
pub fn local_deadline(started: Instant, ttl: Duration) -> Instant {
    saturating_add(started, ttl.saturating_sub(drift_allowance(ttl)))
}

/// `at + d`, or a far-future instant (about 30 years after `at`) where that would overflow:
/// `Instant + Duration` panics on overflow, and users may pass `Duration::MAX` to mean
/// "practically forever".
pub fn saturating_add(at: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    at.checked_add(d.min(FAR))
        .unwrap_or_else(|| at.checked_add(FAR).unwrap_or(at))
}

#[derive(Debug)]
pub(crate) struct LeaseClock {
    ttl: Mutex<Duration>,
    deadline: Mutex<Instant>,
    /// Extends (the watchdog's and the user's) run one at a time, so their replies cannot
    /// update the deadline out of the order the store applied them in.
    pub(crate) serial: tokio::sync::Mutex<()>,
    /// Wakes the watchdog when the deadline or TTL changes under it.
    changed: tokio::sync::Notify,
    /// The hold's place in its client's renewal scheduler, when it has one (instead of a
    /// watchdog); told of every change, like the watchdog.
    enrolment: OnceLock<Enrolment>,
    /// The lease started shorter than its TTL ([`Lease::first`]): renew it early
    /// ([`first_renewal_of_short`]).
    short: bool,
}

impl LeaseClock {
    pub(crate) fn new(lease: &Lease) -> Self {
        LeaseClock {
            ttl: Mutex::new(lease.ttl),
            deadline: Mutex::new(local_deadline(lease.started, lease.held_for())),
            serial: tokio::sync::Mutex::new(()),
            changed: tokio::sync::Notify::new(),
            enrolment: OnceLock::new(),
            short: lease.held_for() < lease.ttl,
        }
    }

    /// Whether the first renewal is due early (the lease started short).
    pub(crate) fn short(&self) -> bool {
        self.short
    }

    pub(crate) fn enrol(&self, enrolment: Enrolment) {
        let _ = self.enrolment.set(enrolment);
    }

    /// The hold ended: its scheduler forgets it.
    pub(crate) fn unenrol(&self) {
        if let Some(e) = self.enrolment.get() {
            e.remove();
        }
    }

    fn moved(&self) {
        self.changed.notify_waiters();
        if let Some(e) = self.enrolment.get() {
            e.replan();
        }
    }

    /// Called before an extend to `ttl` is sent at `started`: the store may apply it even if
    /// the reply never comes (cancelled, timed out, connection lost), so a shorter lease
    /// counts at once; a longer one only once the store confirmed it.
    pub(crate) fn extending(&self, started: Instant, ttl: Duration) {
        let mut deadline = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        *deadline = (*deadline).min(local_deadline(started, ttl));
        drop(deadline);
        self.moved();
    }

    pub(crate) fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn ttl(&self) -> Duration {
        *self.ttl.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn renewed(&self, started: Instant, ttl: Duration) {
        *self.ttl.lock().unwrap_or_else(|p| p.into_inner()) = ttl;
        let mut deadline = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        *deadline = local_deadline(started, ttl);
        drop(deadline);
        self.moved();
    }
}

/// Renews every TTL/3 (when `renew`), and declares the hold lost when the local deadline
/// passes without a successful renewal, or at once when the store says the hold is gone.
pub(crate) async fn watchdog(
    hold: Arc<dyn Hold>,
    status: HoldStatus,
    clock: Arc<LeaseClock>,
    renew: bool,
) {
    // After a failed renewal, retry sooner than TTL/3 so one dropped packet does not cost the lease.
    let mut retry_soon = false;
    // A lease that started short is renewed to its TTL early.
    let mut short = clock.short();
    loop {
        // Created before reading the clock, so a change made after the read wakes us.
        let changed = clock.changed.notified();
        let deadline = clock.deadline();
        let ttl = clock.ttl();
        // A lease shorter than its TTL (one that started short, `Lease::first`) must still
        // get its renewal, and its retries, before it runs out: TTL/3 or TTL/10 from now
        // can lie past its deadline, where the hold would be lost untried.
        let half_left =
            (deadline.saturating_duration_since(Instant::now()) / 2).max(Duration::from_millis(20));
        let wake = if !renew {
            deadline
        } else if short {
            short = false;
            first_renewal_of_short(Instant::now(), deadline)
        } else if retry_soon {
            let pause = (ttl / 10).max(Duration::from_millis(20)).min(half_left);
            saturating_add(Instant::now(), pause).min(deadline)
        } else {
            saturating_add(Instant::now(), (ttl / 3).min(half_left)).min(deadline)
        };
        tokio::select! {
            _ = status.ended() => return,
            _ = tokio::time::sleep_until(wake) => {}
            // A user's extend moved the deadline or changed the TTL: plan again.
            _ = changed => continue,
        }
        if Instant::now() >= clock.deadline() {
            status.mark_lost_because(
                LossReason::LeaseExpired,
                LockError::lost("the lease ran out before it could be renewed"),
            );
            return;
        }
        if !renew {
            continue;
        }
        let before = clock.deadline();
        let budget = before.saturating_duration_since(Instant::now());
        let renewal = async {
            // Bounded by the budget even while a user's extend holds the turn.
            let _turn = clock.serial.lock().await;
            let ttl = clock.ttl();
            let started = Instant::now();
            clock.extending(started, ttl);
            let result = hold.extend(ttl).await;
            if result.is_ok() {
                clock.renewed(started, ttl);
            }
            result
        };
        let outcome = tokio::select! {
            _ = status.ended() => return,
            r = tokio::time::timeout(budget, renewal) => r,
        };
        // How much of the old lease was left when the outcome came: a shrinking slack
        // warns of a loss before it happens.
        let slack = before.saturating_duration_since(Instant::now());
        let observer = status.observer();
        match outcome {
            Ok(Ok(())) => {
                retry_soon = false;
                if let Some(o) = observer {
                    o.renewed(slack);
                }
            }
            Ok(Err(e)) if e.kind() == ErrorKind::NotHeld => {
                observe::renewal_failed(observer, true, slack, &e);
                status.mark_lost_because(
                    LossReason::RenewalRejected,
                    LockError::lost(format!(
                        "renewal found the lock gone or owned by someone else: {e}"
                    )),
                );
                return;
            }
            Ok(Err(e)) => {
                observe::renewal_failed(observer, false, slack, &e);
                retry_soon = true;
            }
            Err(_elapsed) => {
                observe::renewal_failed(observer, false, slack, &"the renewal timed out");
                retry_soon = true;
            }
        }
    }
}
