//! The suite must be able to fail: a small store-backed toy backend, sound or with one
//! deliberate defect, and for each defect the case that must catch it. The sound toy runs
//! the whole suite (and, being non-FIFO, reports the FIFO case skipped).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use distlock_conformance::{run_case, Case, Faults, Harness};
use distlock_core::backend::{
    new_owner_token, ConnectionRetry, Deadline, GuardParts, Hold, HoldStatus, Lease,
};
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, LockError, LockGuard, LockName, Result, Wait,
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
    /// Gives the store the TTL rounded down to whole seconds (1.5 s becomes 1 s), while the
    /// guard counts the TTL it asked for.
    TtlRoundedDownToSeconds,
    /// `extend(d)` ignores `d` and extends by the acquire TTL again.
    ExtendIgnoresDuration,
    /// Release deletes the row if the owner token matches, expired or not.
    ReleaseIgnoresExpiry,
    /// Extend updates the row if the owner token matches, expired or not: it revives a
    /// lapsed hold.
    ExtendIgnoresExpiry,
    /// Keys are the names cut at 512 bytes (a VARCHAR(512) in a lax SQL mode).
    LongNamesTruncated,
    /// Keys fold non-ASCII letters to lower case (a case-insensitive collation).
    UnicodeCaseFolded,
}

/// The store key of `name`: the name itself, unless the defect folds names together.
fn key(name: &str, defect: Defect) -> String {
    match defect {
        Defect::LongNamesTruncated => {
            let mut end = name.len().min(512);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name[..end].to_string()
        }
        Defect::UnicodeCaseFolded => name
            .chars()
            .flat_map(|c| {
                if c.is_ascii() {
                    vec![c]
                } else {
                    c.to_lowercase().collect()
                }
            })
            .collect(),
        _ => name.to_string(),
    }
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

    fn drop_hold(
        &self,
        name: &str,
        token: &str,
        ignore_owner: bool,
        ignore_expiry: bool,
    ) -> Result<()> {
        self.reachable()?;
        let mut holds = self.holds.lock().unwrap();
        let owned = holds
            .get(name)
            .is_some_and(|(t, exp)| t == token && (ignore_expiry || *exp > Instant::now()));
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
        ignore_expiry: bool,
    ) -> Result<()> {
        if !ignore {
            self.reachable()?;
        }
        let mut holds = self.holds.lock().unwrap();
        match holds.get_mut(name) {
            Some((t, exp))
                if (t == token && (ignore_expiry || *exp > Instant::now()))
                    || ignore
                    || ignore_owner =>
            {
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
    /// The store key.
    name: String,
    token: String,
    defect: Defect,
    /// The TTL the hold was acquired with.
    ttl: Duration,
}

#[async_trait]
impl Hold for ToyHold {
    async fn release(&self) -> Result<()> {
        let ignore = self.defect == Defect::ReleaseIgnoresOwner;
        let ignore_expiry = self.defect == Defect::ReleaseIgnoresExpiry;
        self.store
            .drop_hold(&self.name, &self.token, ignore, ignore_expiry)
    }

    async fn extend(&self, ttl: Duration) -> Result<()> {
        let ignore = matches!(
            self.defect,
            Defect::ReleaseIgnoresOwner | Defect::ExtendIgnoresLoss
        );
        let ignore_owner = self.defect == Defect::ExtendIgnoresOwner;
        let ignore_expiry = self.defect == Defect::ExtendIgnoresExpiry;
        let ttl = match self.defect {
            Defect::ExtendIgnoresDuration => self.ttl,
            defect => store_ttl(ttl, defect),
        };
        self.store.extend(
            &self.name,
            &self.token,
            ttl,
            ignore,
            ignore_owner,
            ignore_expiry,
        )
    }

    fn release_on_drop(self: Arc<Self>) {
        if self.defect != Defect::DropNeverReleases {
            let _ = self.store.drop_hold(&self.name, &self.token, false, false);
        }
    }
}

/// The TTL the store is given for a lease of `ttl`.
fn store_ttl(ttl: Duration, defect: Defect) -> Duration {
    match defect {
        Defect::TtlRoundedDownToSeconds => Duration::from_secs(ttl.as_secs()),
        _ => ttl,
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
            let key = key(name.as_str(), self.defect);
            let granted = store_ttl(ttl, self.defect);
            if let Some(fence) = self.store.take(&key, &token, granted, self.defect) {
                if self.defect == Defect::CancelledAcquireLeaks
                    || (self.defect == Defect::HandOffLeaks && !first_attempt)
                {
                    // Work after the store granted the hold, with no clean-up on cancellation.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let hold = ToyHold {
                    store: self.store.clone(),
                    name: key,
                    token: token.clone(),
                    defect: self.defect,
                    ttl,
                };
                return Ok(Some(LockGuard::new(GuardParts {
                    name: name.clone(),
                    owner_token: token,
                    fencing_token: Some(fence),
                    hold: Arc::new(hold),
                    status: HoldStatus::new(),
                    lease: Some(Lease::new(ttl, started, o.renew)),
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
    short_ttl: Duration,
    faults: bool,
}

impl ToyHarness {
    fn new(defect: Defect) -> Self {
        ToyHarness {
            store: Arc::default(),
            defect,
            short_ttl: Duration::from_millis(600),
            faults: true,
        }
    }

    /// With the lease the example had: 1.5 s, which whole-second rounding cuts.
    fn with_ttl(mut self, ttl: Duration) -> Self {
        self.short_ttl = ttl;
        self
    }

    fn without_faults(mut self) -> Self {
        self.faults = false;
        self
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
        self.faults.then_some(self as &dyn Faults)
    }
    fn short_ttl(&self) -> Duration {
        self.short_ttl
    }
    fn cleanup(&self) -> Duration {
        // Cleanup here is synchronous; a short limit keeps the leak tests fast.
        Duration::from_millis(500)
    }
}

#[async_trait]
impl Faults for ToyHarness {
    /// Lapses the hold in place, as a lease table's row whose expiry passed: the row stays
    /// until someone takes the lock over. The hold is found the way any harness can find
    /// one: by the guard's name (mapped to the store key as the backend does) and owner token.
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        let key = key(guard.name().as_str(), self.defect);
        let mut holds = self.store.holds.lock().unwrap();
        match holds.get_mut(&key) {
            Some((token, expires)) if token == guard.owner_token() => {
                *expires = Instant::now();
                Ok(())
            }
            _ => Err(LockError::backend("the guard's hold is not in the store")),
        }
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
    failing_cases_on(ToyHarness::new(defect), cases).await
}

async fn failing_cases_on(harness: ToyHarness, cases: &[Case]) -> Vec<&'static str> {
    let harness: Arc<dyn Harness> = Arc::new(harness);
    let mut failed = Vec::new();
    for &case in cases {
        match tokio::spawn(run_case(case, harness.clone())).await {
            Ok(outcome) if outcome.is_complete() => {}
            Ok(outcome) => panic!("{case} skipped checks on the toy: {:?}", outcome.skipped),
            Err(e) if e.is_panic() => failed.push(case.name()),
            Err(e) => panic!("{case}: {e}"),
        }
    }
    failed
}

async fn assert_caught(defect: Defect, catchers: &[Case]) {
    assert_caught_on(ToyHarness::new(defect), catchers).await
}

async fn assert_caught_on(harness: ToyHarness, catchers: &[Case]) {
    let defect = harness.defect;
    let failed = failing_cases_on(harness, catchers).await;
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
    assert!(run_case(Case::FifoOrder, harness.clone())
        .await
        .is_skipped());
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
            Case::UnrenewedLeaseExcludesUntilValidUntil,
            Case::ExtendKeepsHoldForItsDuration,
            Case::StoreSideLossIsReported,
            Case::GeneratedNamesNeverCollide,
        ]
    )
    .await
    .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_lease_ttl_rounded_down_to_whole_seconds() {
    assert_caught_on(
        ToyHarness::new(Defect::TtlRoundedDownToSeconds).with_ttl(Duration::from_millis(1500)),
        &[Case::UnrenewedLeaseExcludesUntilValidUntil],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_an_extend_that_ignores_its_duration() {
    assert_caught(
        Defect::ExtendIgnoresDuration,
        &[Case::ExtendKeepsHoldForItsDuration],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_release_that_ignores_expiry_in_the_store() {
    assert_caught(
        Defect::ReleaseIgnoresExpiry,
        &[Case::StoreSideLossIsReported],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_an_extend_that_revives_a_lapsed_hold() {
    assert_caught(
        Defect::ExtendIgnoresExpiry,
        &[Case::StoreSideLossIsReported],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_long_names_truncated_into_one_key() {
    assert_caught(
        Defect::LongNamesTruncated,
        &[Case::GeneratedNamesNeverCollide],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_unicode_names_folded_to_one_case() {
    assert_caught(
        Defect::UnicodeCaseFolded,
        &[Case::GeneratedNamesNeverCollide],
    )
    .await;
}

/// The leak window of a cancelled acquire is 2 ms here; stepping through the await points
/// must find it on every run, not now and then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_cancelled_acquire_that_leaks_its_hold_every_time() {
    for run in 0..20 {
        let failed = failing_cases(
            Defect::CancelledAcquireLeaks,
            &[Case::CancellationLeavesNoHold],
        )
        .await;
        assert!(!failed.is_empty(), "run {run}: the leak went unnoticed");
    }
}

/// Without a fault injector every sub-check that needs one is reported skipped, by name,
/// and nothing else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_faults_every_check_that_needs_them_is_reported_skipped() {
    let harness: Arc<dyn Harness> = Arc::new(ToyHarness::new(Defect::Sound).without_faults());
    let mut skipped = Vec::new();
    for &case in Case::ALL {
        let outcome = tokio::spawn(run_case(case, harness.clone()))
            .await
            .unwrap_or_else(|e| panic!("{case} failed on the sound toy: {e}"));
        assert_eq!(
            outcome.passed.len() + outcome.skipped.len(),
            case.checks().len(),
            "{case}: {outcome:?}"
        );
        skipped.extend(
            outcome
                .skipped
                .iter()
                .map(|s| format!("{}/{}", s.case, s.check)),
        );
    }
    skipped.sort();
    let mut expected = vec![
        // Needs a fault injector.
        "stale_guard_cannot_release_or_extend/renewal_of_a_stale_hold",
        "lost_signal_on_fault_not_on_release/on_fault",
        "recovers_after_server_restart/main",
        "server_pause_past_backstop/main",
        "store_side_loss_is_reported/release",
        "store_side_loss_is_reported/extend",
        "waiting_acquire_outlives_outage/restart",
        "waiting_acquire_outlives_outage/pause",
        // The toy claims neither.
        "mutual_exclusion_across_processes/main",
        "killed_holder_frees_within_backstop/main",
        "fifo_order/main",
    ];
    expected.sort();
    assert_eq!(skipped, expected);
}

mod sound_toy_suite {
    use super::*;
    distlock_conformance::conformance_tests!(ToyHarness::new(Defect::Sound));
}
