//! The suite must be able to fail: a small store-backed toy backend, sound or with one
//! deliberate defect, and for each defect the case that must catch it. The sound toy runs
//! the whole suite (and, being non-FIFO, reports the FIFO case skipped).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use distlock_conformance::{run_case, Case, Faults, Harness, Outcome};
use distlock_core::{
    new_owner_token, AcquireOptions, Capabilities, ConnectionRetry, Deadline, DistributedLock,
    GuardParts, Hold, HoldStatus, Lease, LockError, LockGuard, LockName, Result, Wait,
};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defect {
    Sound,
    NoExclusion,
    ReleaseIgnoresOwner,
    FencingNotMonotonic,
    CancelledAcquireLeaks,
    /// Leaks only a hold it was handed after waiting (not one taken at the first attempt).
    HandOffLeaks,
    DropNeverReleases,
    ExtendIgnoresLoss,
    /// Extends whatever hold exists (a plain PEXPIRE), though not a missing one.
    ExtendIgnoresOwner,
    TimeoutIgnored,
}

#[derive(Debug, Default)]
struct Store {
    holds: Mutex<HashMap<String, (String, Instant)>>,
    fences: Mutex<HashMap<String, u64>>,
    released: Notify,
    /// While set, the store answers nothing but connection errors (a frozen server).
    paused: std::sync::atomic::AtomicBool,
}

impl Store {
    fn reachable(&self) -> Result<()> {
        if self.paused.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(LockError::connection("the toy store is paused"));
        }
        Ok(())
    }

    fn take(&self, name: &str, token: &str, ttl: Duration, defect: Defect) -> Option<u64> {
        let mut holds = self.holds.lock().unwrap();
        let now = Instant::now();
        let free = match holds.get(name) {
            Some((_, expires)) => *expires <= now,
            None => true,
        };
        if !free && defect != Defect::NoExclusion {
            return None;
        }
        holds.insert(name.to_string(), (token.to_string(), now + ttl));
        let mut fences = self.fences.lock().unwrap();
        let fence = fences.entry(name.to_string()).or_default();
        *fence += 1;
        Some(if defect == Defect::FencingNotMonotonic {
            7
        } else {
            *fence
        })
    }

    fn drop_hold(&self, name: &str, token: &str, ignore_owner: bool) -> Result<()> {
        self.reachable()?;
        let mut holds = self.holds.lock().unwrap();
        let owned = holds
            .get(name)
            .is_some_and(|(t, exp)| t == token && *exp > Instant::now());
        if owned || (ignore_owner && holds.contains_key(name)) {
            holds.remove(name);
            drop(holds);
            self.released.notify_waiters();
            Ok(())
        } else {
            Err(LockError::not_held("not the owner"))
        }
    }

    fn extend(
        &self,
        name: &str,
        token: &str,
        ttl: Duration,
        ignore: bool,
        ignore_owner: bool,
    ) -> Result<()> {
        if !ignore {
            self.reachable()?;
        }
        let mut holds = self.holds.lock().unwrap();
        match holds.get_mut(name) {
            Some((t, exp)) if (t == token && *exp > Instant::now()) || ignore || ignore_owner => {
                *exp = Instant::now() + ttl;
                Ok(())
            }
            _ if ignore => Ok(()),
            _ => Err(LockError::not_held("not the owner")),
        }
    }
}

#[derive(Debug)]
struct Toy {
    store: Arc<Store>,
    defect: Defect,
}

#[derive(Debug)]
struct ToyHold {
    store: Arc<Store>,
    name: String,
    token: String,
    defect: Defect,
}

#[async_trait]
impl Hold for ToyHold {
    async fn release(&self) -> Result<()> {
        let ignore = self.defect == Defect::ReleaseIgnoresOwner;
        self.store.drop_hold(&self.name, &self.token, ignore)
    }

    async fn extend(&self, ttl: Duration) -> Result<()> {
        let ignore = matches!(
            self.defect,
            Defect::ReleaseIgnoresOwner | Defect::ExtendIgnoresLoss
        );
        let ignore_owner = self.defect == Defect::ExtendIgnoresOwner;
        self.store
            .extend(&self.name, &self.token, ttl, ignore, ignore_owner)
    }

    fn release_on_drop(self: Arc<Self>) {
        if self.defect != Defect::DropNeverReleases {
            let _ = self.store.drop_hold(&self.name, &self.token, false);
        }
    }
}

#[async_trait]
impl DistributedLock for Toy {
    async fn acquire_with(&self, name: &LockName, o: &AcquireOptions) -> Result<Option<LockGuard>> {
        let token = new_owner_token();
        let leaky = matches!(
            self.defect,
            Defect::CancelledAcquireLeaks | Defect::HandOffLeaks | Defect::DropNeverReleases
        );
        let ttl = if leaky {
            Duration::from_secs(3600)
        } else {
            o.ttl_or_default()
        };
        let wait = match (self.defect, o.wait) {
            (Defect::TimeoutIgnored, Wait::Up(_)) => Wait::Forever,
            (_, w) => w,
        };
        let deadline = wait.deadline_from(Instant::now());
        let mut retry = (Deadline::start(wait), ConnectionRetry::new(o.retry));
        let mut first_attempt = true;
        loop {
            let notified = self.store.released.notified();
            let started = Instant::now();
            if let Err(e) = self.store.reachable() {
                // The core's retry policy, which every backend applies during a wait.
                let pause = retry.1.after_failure(&retry.0).ok_or(e)?;
                tokio::time::sleep(pause).await;
                continue;
            }
            if let Some(fence) = self.store.take(name.as_str(), &token, ttl, self.defect) {
                if self.defect == Defect::CancelledAcquireLeaks
                    || (self.defect == Defect::HandOffLeaks && !first_attempt)
                {
                    // Work after the store granted the hold, with no clean-up on cancellation.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let hold = ToyHold {
                    store: self.store.clone(),
                    name: name.as_str().to_string(),
                    token: token.clone(),
                    defect: self.defect,
                };
                return Ok(Some(LockGuard::new(GuardParts {
                    name: name.clone(),
                    owner_token: token,
                    fencing_token: Some(fence),
                    hold: Arc::new(hold),
                    status: HoldStatus::new(),
                    lease: Some(Lease {
                        ttl,
                        started,
                        renew: o.renew,
                    }),
                })));
            }
            let recheck = Duration::from_millis(20);
            let nap = match deadline {
                Some(d) if Instant::now() >= d => return Ok(None),
                Some(d) => recheck.min(d - Instant::now()),
                None if wait == Wait::Try => return Ok(None),
                None => recheck,
            };
            let _ = tokio::time::timeout(nap, notified).await;
            first_attempt = false;
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_leases(true)
            .with_fencing(true)
            .with_lost_detection(true)
    }
}

struct ToyHarness {
    store: Arc<Store>,
    defect: Defect,
}

impl ToyHarness {
    fn new(defect: Defect) -> Self {
        ToyHarness {
            store: Arc::default(),
            defect,
        }
    }
}

#[async_trait]
impl Harness for ToyHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(Toy {
            store: self.store.clone(),
            defect: self.defect,
        }))
    }
    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
    fn short_ttl(&self) -> Duration {
        Duration::from_millis(600)
    }
}

#[async_trait]
impl Faults for ToyHarness {
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        self.store
            .holds
            .lock()
            .unwrap()
            .remove(guard.name().as_str());
        Ok(())
    }
    async fn pause_server(&self) -> Result<()> {
        self.store
            .paused
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn resume_server(&self) -> Result<()> {
        self.store
            .paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// Runs `cases` on the defective toy and returns the names of those that failed.
async fn failing_cases(defect: Defect, cases: &[Case]) -> Vec<&'static str> {
    let harness: Arc<dyn Harness> = Arc::new(ToyHarness::new(defect));
    let mut failed = Vec::new();
    for &case in cases {
        match tokio::spawn(run_case(case, harness.clone())).await {
            Ok(Outcome::Passed) => {}
            Ok(Outcome::Skipped(why)) => panic!("{case} was skipped on the toy: {why}"),
            Err(e) if e.is_panic() => failed.push(case.name()),
            Err(e) => panic!("{case}: {e}"),
        }
    }
    failed
}

async fn assert_caught(defect: Defect, catchers: &[Case]) {
    let failed = failing_cases(defect, catchers).await;
    assert!(
        !failed.is_empty(),
        "no case caught {defect:?}; expected one of {catchers:?}"
    );
    eprintln!("{defect:?} caught by {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_missing_exclusion() {
    assert_caught(
        Defect::NoExclusion,
        &[Case::TryLockUnderContention, Case::MutualExclusionStress],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_release_that_ignores_the_owner_token() {
    assert_caught(
        Defect::ReleaseIgnoresOwner,
        &[Case::StaleGuardCannotReleaseOrExtend],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_fencing_that_does_not_increase() {
    assert_caught(
        Defect::FencingNotMonotonic,
        &[Case::FencingStrictlyIncreasing],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_cancelled_acquire_that_leaks_its_hold() {
    assert_caught(
        Defect::CancelledAcquireLeaks,
        &[Case::CancellationLeavesNoHold],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_waiter_cancelled_during_the_hand_off_that_leaks_its_hold() {
    assert_caught(Defect::HandOffLeaks, &[Case::CancellationLeavesNoHold]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_dropped_guard_that_never_releases() {
    assert_caught(
        Defect::DropNeverReleases,
        &[Case::DroppedGuardFreesPromptly],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_renewal_that_hides_a_loss() {
    assert_caught(
        Defect::ExtendIgnoresLoss,
        &[Case::LostSignalOnFaultNotOnRelease],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_renewal_that_hides_a_frozen_store() {
    assert_caught(Defect::ExtendIgnoresLoss, &[Case::ServerPausePastBackstop]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_renewal_that_extends_another_owners_hold() {
    assert_caught(
        Defect::ExtendIgnoresOwner,
        &[Case::StaleGuardCannotReleaseOrExtend],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_wait_limit_that_is_ignored() {
    assert_caught(Defect::TimeoutIgnored, &[Case::WaitTimeoutBounds]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sound_toy_passes_what_it_claims_and_skips_fifo() {
    let harness: Arc<dyn Harness> = Arc::new(ToyHarness::new(Defect::Sound));
    assert!(matches!(
        run_case(Case::FifoOrder, harness.clone()).await,
        Outcome::Skipped(_)
    ));
    assert!(failing_cases(
        Defect::Sound,
        &[
            Case::TryLockUnderContention,
            Case::StaleGuardCannotReleaseOrExtend,
            Case::FencingStrictlyIncreasing,
            Case::CancellationLeavesNoHold,
            Case::DroppedGuardFreesPromptly,
            Case::LostSignalOnFaultNotOnRelease,
            Case::WaitTimeoutBounds,
            Case::ServerPausePastBackstop,
        ]
    )
    .await
    .is_empty());
}

mod sound_toy_suite {
    use super::*;
    distlock_conformance::conformance_tests!(ToyHarness::new(Defect::Sound));
}
