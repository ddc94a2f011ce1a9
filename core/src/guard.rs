//! The guard users hold while they are inside the critical section.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::background::spawn_background;
use crate::error::{ErrorKind, LockError, Result};
use crate::hold::Hold;
use crate::lease::{watchdog, Lease, LeaseClock};
use crate::name::LockName;
use crate::observe::{HoldObserver, LossReason};
use crate::status::{HoldStatus, LostSignal};

/// What a backend hands to [`LockGuard::new`] after a successful acquire.
#[derive(Debug)]
pub struct GuardParts {
    /// The lock's name.
    pub name: LockName,
    /// The random owner token of this hold: the one the store records where it records an
    /// owner, else a local one (document which; see [`LockGuard::owner_token`]).
    pub owner_token: String,
    /// The fencing token, when the backend claims fencing.
    pub fencing_token: Option<u64>,
    /// The backend's handle on the hold.
    pub hold: Arc<dyn Hold>,
    /// The hold's status; the backend keeps clones to report a loss.
    pub status: HoldStatus,
    /// The lease, for backends whose holds expire; the guard then runs the watchdog.
    pub lease: Option<Lease>,
}

/// A held lock.
///
/// Release it with [`LockGuard::release`], which frees the lock at once and reports errors.
/// A guard dropped without `release` frees the lock in the background: promptly when a
/// Tokio runtime is running, otherwise by the store's backstop (TTL, session, connection).
/// **Release on drop is therefore not immediate**, and its errors are only logged; call
/// `release` where it matters.
///
/// While held, a guard with a lease renews it in the background, and every guard exposes
/// whether it is still held ([`LockGuard::is_held`]) and its loss ([`LockGuard::lost`]).
pub struct LockGuard {
    name: LockName,
    owner_token: String,
    fencing_token: Option<u64>,
    hold: Option<Arc<dyn Hold>>,
    status: HoldStatus,
    lease: Option<Arc<LeaseClock>>,
}

impl LockGuard {
    /// Wraps a fresh hold. When the hold has a lease, schedules its renewal: in the hold's
    /// [`RenewalGroup`](crate::backend::RenewalGroup) if it names one, else in a watchdog task.
    /// Must be called inside a Tokio runtime for the watchdog to run.
    pub fn new(parts: GuardParts) -> Self {
        let lease = parts.lease.map(|lease| {
            let clock = Arc::new(LeaseClock::new(&lease));
            let watching = match parts.hold.renewal_group() {
                Some(group) => group.enrol(
                    parts.hold.clone(),
                    parts.status.clone(),
                    &clock,
                    lease.renew,
                ),
                None => spawn_background(watchdog(
                    parts.hold.clone(),
                    parts.status.clone(),
                    clock.clone(),
                    lease.renew,
                )),
            };
            if !watching {
                tracing::warn!(
                    lock = %parts.name,
                    "a leased guard was made outside a Tokio runtime: it will neither renew \
                     its lease nor signal its loss"
                );
            }
            clock
        });
        LockGuard {
            name: parts.name,
            owner_token: parts.owner_token,
            fencing_token: parts.fencing_token,
            hold: Some(parts.hold),
            status: parts.status,
            lease,
        }
    }

    /// Attaches the instrumentation of [`crate::observe`] (once, right after the acquire).
    pub(crate) fn observe(&self, observer: HoldObserver) {
        self.status.set_observer(observer);
    }

    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// The random token of this hold. Where the store records an owner it is what the
    /// store sees (Redis: the key's value; ZooKeeper: part of the lock node's name); where
    /// the store knows the hold by something else (MySQL: the session; lock files: the open
    /// file) it is local, for logs and for telling holds apart. Each backend's docs say which.
    pub fn owner_token(&self) -> &str {
        &self.owner_token
    }

    /// The fencing token: strictly greater than every token handed out before for this
    /// name on this backend. Pass it to the protected resource and have it reject smaller
    /// ones. `None` when the backend does not claim fencing (see its capabilities).
    pub fn fencing_token(&self) -> Option<u64> {
        self.fencing_token
    }

    /// Whether the hold is still believed held (not released, not lost). A leased hold
    /// counts as lost from [`LockGuard::valid_until`] on, read from the clock at the call,
    /// so the answer is right even while the runtime is too busy to run the watchdog.
    pub fn is_held(&self) -> bool {
        self.check_lease();
        self.status.is_held()
    }

    /// Declares the hold lost once its local deadline has passed, without waiting for the
    /// watchdog to wake up (a stalled runtime, a blocked thread).
    fn check_lease(&self) {
        if let Some(clock) = &self.lease {
            if Instant::now() >= clock.deadline() {
                self.status.mark_lost_because(
                    LossReason::LeaseExpired,
                    LockError::lost("the lease ran out before it could be renewed"),
                );
            }
        }
    }

    /// For leased holds: the instant until which the hold is known valid locally
    /// (request start + TTL − drift allowance).
    pub fn valid_until(&self) -> Option<Instant> {
        self.lease.as_ref().map(|clock| clock.deadline())
    }

    /// A cloneable signal of this hold's loss, for another task.
    pub fn lost_signal(&self) -> LostSignal {
        self.check_lease();
        self.status.signal()
    }

    /// Resolves with an error of kind [`ErrorKind::Lost`] once the hold is lost: renewal
    /// failed, the session expired, the connection died. Pending while the hold is fine.
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes state.
    pub async fn lost(&self) -> LockError {
        self.check_lease();
        match self.status.signal().wait().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// Extends the lease to `ttl` from now. Without a lease (see the backend's capabilities)
    /// there is nothing to extend and `ttl` is ignored: `Ok(())` while the hold is still
    /// ours. Error: [`ErrorKind::NotHeld`] when the hold is gone, on every backend (the
    /// guard is then lost).
    /// Runs one at a time with the background renewal.
    ///
    /// # Cancel safety
    /// Cancel safe: an extend is idempotent. Dropped midway, a longer lease counts only
    /// from the next confirmed renewal, while a shorter one counts at once (the store may
    /// have applied it), so [`LockGuard::valid_until`] never runs past the store's lease.
    pub async fn extend(&self, ttl: Duration) -> Result<()> {
        // A lost hold is never revived, even if the store would still take the extend.
        self.check_lease();
        if let Some(e) = self.status.lost_error() {
            return Err(LockError::not_held(format!("the hold was lost: {e}")));
        }
        let hold = self
            .hold
            .as_ref()
            .ok_or_else(|| LockError::not_held("the guard was released"))?;
        let _turn = match &self.lease {
            Some(clock) => Some(clock.serial.lock().await),
            None => None,
        };
        let started = Instant::now();
        if let Some(clock) = &self.lease {
            clock.extending(started, ttl);
        }
        match hold.extend(ttl).await {
            Ok(()) => {
                // The watchdog may have declared the hold lost (its deadline passed) while
                // this extend was in flight; the loss stands and must not read as success.
                if let Some(e) = self.status.lost_error() {
                    return Err(LockError::not_held(format!("the hold was lost: {e}")));
                }
                if let Some(clock) = &self.lease {
                    clock.renewed(started, ttl);
                }
                Ok(())
            }
            Err(e) => {
                if e.kind() == ErrorKind::NotHeld {
                    self.status.mark_lost_because(
                        LossReason::ExtendRejected,
                        LockError::lost(format!("extend found the hold gone: {e}")),
                    );
                }
                Err(e)
            }
        }
    }

    /// Frees the lock now. Returns [`ErrorKind::NotHeld`] if the store says this hold no
    /// longer owns the lock (it expired, someone else took it), and [`ErrorKind::Lost`] if
    /// the guard had signalled a loss although the store still had the hold (the critical
    /// section may have run unprotected, so success would mislead).
    ///
    /// # Cancel safety
    /// Cancel safe: dropped midway, the guard releases again in the background.
    pub async fn release(mut self) -> Result<()> {
        self.check_lease();
        let lost = self.status.lost_error();
        self.status.mark_released();
        self.stop_renewing();
        let Some(hold) = self.hold.clone() else {
            return Ok(());
        };
        let result = hold.release().await;
        self.hold = None;
        match (result, lost) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        }
    }

    /// Gives up the guard without releasing: the lock stays held until the store's
    /// backstop frees it (TTL, session end, connection close). Renewal stops.
    pub fn leak(mut self) {
        self.hold = None;
        self.status.mark_released();
    }
}

impl LockGuard {
    /// Takes the hold out of its client's renewal scheduler (a watchdog stops by itself).
    fn stop_renewing(&self) {
        if let Some(clock) = &self.lease {
            clock.unenrol();
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.status.mark_released();
        self.stop_renewing();
        if let Some(hold) = self.hold.take() {
            hold.release_on_drop();
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("fencing_token", &self.fencing_token)
            .field("held", &self.status.is_held())
            .finish_non_exhaustive()
    }
}
