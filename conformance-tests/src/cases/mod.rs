//! The cases, grouped by what they exercise, and the helpers they share.

mod basic;
mod cancel;
pub(crate) mod cut;
mod exclusion;
mod fencing;
mod lapse;
mod leases;
mod many_names;
mod names;
mod ordering;
mod outage;
pub(crate) mod process;
mod recovery;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock_core::{Capabilities, DistributedLock, ErrorKind, LockError, Result};

use crate::case::{Case, Outcome, SkippedCheck};
use crate::harness::Harness;

/// Slack allowed on top of a wait limit or a deadline. The machines are shared and noisy.
pub(crate) const SLACK: Duration = Duration::from_millis(1500);

pub(crate) struct Ctx {
    pub harness: Arc<dyn Harness>,
    pub caps: Capabilities,
    pub case: Case,
    run: String,
    /// For the cross-process cases: the test's full path inside the test binary.
    pub test_path: Option<String>,
    passed: Mutex<Vec<&'static str>>,
    skipped: Mutex<Vec<SkippedCheck>>,
}

impl Ctx {
    /// A lock name unique to this run of this case, so cases can share a server.
    pub fn name(&self, label: &str) -> String {
        format!("conformance/{}/{}/{label}", self.case, self.run)
    }

    /// The random tag of this run.
    pub fn run_tag(&self) -> String {
        self.run.clone()
    }

    pub async fn client(&self) -> Box<dyn DistributedLock> {
        match self.harness.client().await {
            Ok(c) => c,
            Err(e) => panic!("{}: the harness could not make a client: {e}", self.case),
        }
    }

    /// Records that sub-check `check` ran and held.
    pub fn passed(&self, check: &'static str) {
        self.known(check);
        lock(&self.passed).push(check);
    }

    /// Records that sub-check `check` could not run, and says so by name on the real
    /// stderr (past libtest's capture), so a skip never reads as a pass.
    pub fn skipped(&self, check: &'static str, why: impl Into<String>) {
        self.known(check);
        let skip = SkippedCheck {
            case: self.case,
            check,
            reason: why.into(),
        };
        // One write, so parallel tests' output cannot split the line.
        use std::io::Write;
        let _ = std::io::stderr().write_all(format!("SKIPPED {skip}\n").as_bytes());
        lock(&self.skipped).push(skip);
    }

    /// Skips every sub-check of the case not recorded yet.
    pub fn skip(&self, why: impl Into<String>) {
        let why = why.into();
        for check in self.case.checks() {
            if !self.recorded(check) {
                self.skipped(check, why.clone());
            }
        }
    }

    fn recorded(&self, check: &str) -> bool {
        lock(&self.passed).contains(&check) || lock(&self.skipped).iter().any(|s| s.check == check)
    }

    fn known(&self, check: &str) {
        assert!(
            self.case.checks().contains(&check),
            "suite bug: {} has no sub-check {check}",
            self.case
        );
        assert!(
            !self.recorded(check),
            "suite bug: {}/{check} recorded twice",
            self.case
        );
    }

    /// The outcome once the case returned: a case with one sub-check that returned
    /// without a skip passed it; any other unrecorded sub-check is a suite bug.
    fn outcome(self) -> Outcome {
        if let [only] = self.case.checks() {
            if !self.recorded(only) {
                self.passed(only);
            }
        }
        let passed = std::mem::take(&mut *lock(&self.passed));
        let skipped = std::mem::take(&mut *lock(&self.skipped));
        for check in self.case.checks() {
            assert!(
                passed.contains(check) || skipped.iter().any(|s| s.check == *check),
                "suite bug: {}/{check} neither passed nor was skipped",
                self.case
            );
        }
        Outcome {
            case: self.case,
            passed,
            skipped,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `fut`, failing the case if it takes longer than `limit`.
pub(crate) async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}

pub(crate) fn ok<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e} ({e:?})"),
    }
}

pub(crate) fn expect_kind<T>(r: Result<T>, kinds: &[ErrorKind], what: &str) -> LockError {
    match r {
        Ok(_) => panic!("{what}: succeeded, expected an error of kind {kinds:?}"),
        Err(e) if kinds.contains(&e.kind()) => e,
        Err(e) => panic!("{what}: expected an error of kind {kinds:?}, got {e} ({e:?})"),
    }
}

/// Runs one case against a harness. Panics (with the reason) when the backend fails it;
/// otherwise returns which sub-checks passed and which were skipped (each skip is also
/// printed as `SKIPPED <case>/<check>: <reason>`).
pub async fn run_case(case: Case, harness: Arc<dyn Harness>) -> Outcome {
    run_case_in(case, harness, None).await
}

/// Store-disturbing cases take this for writing, all others for reading, so a restart or a
/// pause never lands in the middle of another case of the same test binary.
fn store_gate() -> &'static tokio::sync::RwLock<()> {
    static GATE: std::sync::OnceLock<tokio::sync::RwLock<()>> = std::sync::OnceLock::new();
    GATE.get_or_init(Default::default)
}

pub(crate) async fn run_case_in(
    case: Case,
    harness: Arc<dyn Harness>,
    test_path: Option<String>,
) -> Outcome {
    if case.disturbs_store() {
        let _alone = store_gate().write().await;
        run_case_gated(case, harness, test_path).await
    } else {
        let _shared = store_gate().read().await;
        run_case_gated(case, harness, test_path).await
    }
}

async fn run_case_gated(
    case: Case,
    harness: Arc<dyn Harness>,
    test_path: Option<String>,
) -> Outcome {
    let caps = match harness.client().await {
        Ok(c) => c.capabilities(),
        Err(e) => panic!("{case}: the harness could not make a client: {e}"),
    };
    let ctx = Ctx {
        harness,
        caps,
        case,
        run: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        test_path,
        passed: Mutex::default(),
        skipped: Mutex::default(),
    };
    run_body(&ctx).await;
    ctx.outcome()
}

async fn run_body(ctx: &Ctx) {
    match ctx.case {
        Case::AcquireReleaseReacquire => basic::acquire_release_reacquire(ctx).await,
        Case::NamesIndependent => basic::names_independent(ctx).await,
        Case::TryLockUnderContention => basic::try_lock_under_contention(ctx).await,
        Case::WaitTimeoutBounds => basic::wait_timeout_bounds(ctx).await,
        Case::WaitForeverAcquiresAfterRelease => {
            basic::wait_forever_acquires_after_release(ctx).await
        }
        Case::MutualExclusionStress => exclusion::stress(ctx).await,
        Case::MutualExclusionAcrossProcesses => process::exclusion_across_processes(ctx).await,
        Case::ReleaseIsImmediate => basic::release_is_immediate(ctx).await,
        Case::DroppedGuardFreesPromptly => basic::dropped_guard_frees_promptly(ctx).await,
        Case::StaleGuardCannotReleaseOrExtend => leases::stale_guard(ctx).await,
        Case::FencingStrictlyIncreasing => fencing::strictly_increasing(ctx).await,
        Case::CancellationLeavesNoHold => cancel::leaves_no_hold(ctx).await,
        Case::KilledHolderFreesWithinBackstop => process::killed_holder(ctx).await,
        Case::LostSignalOnFaultNotOnRelease => leases::lost_signal(ctx).await,
        Case::RenewalKeepsHoldPastTtl => leases::renewal(ctx).await,
        Case::OddAndHostileNames => names::odd_and_hostile(ctx).await,
        Case::ReentrancyOutcome => ordering::reentrancy(ctx).await,
        Case::FifoOrder => ordering::fifo(ctx).await,
        Case::RecoversAfterServerRestart => recovery::after_restart(ctx).await,
        Case::ServerPausePastBackstop => recovery::pause_past_backstop(ctx).await,
        Case::UnrenewedLeaseExcludesUntilValidUntil => lapse::unrenewed_excludes(ctx).await,
        Case::ExtendKeepsHoldForItsDuration => lapse::extend_keeps_hold(ctx).await,
        Case::StoreSideLossIsReported => lapse::store_side_loss(ctx).await,
        Case::GeneratedNamesNeverCollide => many_names::never_collide(ctx).await,
        Case::WaitingAcquireOutlivesOutage => outage::waiting_acquire_outlives_outage(ctx).await,
    }
}
