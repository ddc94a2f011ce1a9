//! The guard's lifecycle with a scripted backend hold: renewal, deadlines, drop without a
//! runtime. Time is paused, so the deadlines are exact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::backend::{GuardParts, Hold, HoldStatus, Lease};
use distlock_core::{lease::local_deadline, ErrorKind, LockError, LockGuard, LockName, Result};
use tokio::time::Instant;

#[derive(Debug, Default)]
struct Scripted {
    extends: AtomicU32,
    releases: AtomicU32,
    /// What extend answers; `None` means success.
    extend_error: Mutex<Option<ErrorKind>>,
}

#[async_trait]
impl Hold for Scripted {
    async fn release(&self) -> Result<()> {
        self.releases.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn extend(&self, _ttl: Duration) -> Result<()> {
        self.extends.fetch_add(1, Ordering::SeqCst);
        match *self.extend_error.lock().unwrap() {
            None => Ok(()),
            Some(kind) => Err(LockError::new(kind, "scripted")),
        }
    }
}

fn guard(hold: Arc<Scripted>, ttl: Duration, renew: bool) -> LockGuard {
    guard_on(hold, Lease::new(ttl, Instant::now(), renew))
}

fn guard_on(hold: Arc<dyn Hold>, lease: Lease) -> LockGuard {
    LockGuard::new(GuardParts {
        name: LockName::new("x").unwrap(),
        owner_token: "t".into(),
        fencing_token: Some(1),
        hold,
        status: HoldStatus::new(),
        lease: Some(lease),
    })
}

#[tokio::test(start_paused = true)]
async fn renewal_runs_every_third_of_the_ttl_and_keeps_the_hold() {
    let hold = Arc::new(Scripted::default());
    let g = guard(hold.clone(), Duration::from_secs(30), true);
    tokio::time::sleep(Duration::from_secs(95)).await;
    assert!(g.is_held());
    assert_eq!(
        hold.extends.load(Ordering::SeqCst),
        9,
        "one renewal per 10 s"
    );
    g.release().await.unwrap();
    assert_eq!(hold.releases.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn failing_renewals_declare_the_hold_lost_at_the_local_deadline_not_before() {
    let hold = Arc::new(Scripted::default());
    *hold.extend_error.lock().unwrap() = Some(ErrorKind::Connection);
    let start = Instant::now();
    let ttl = Duration::from_secs(30);
    let g = guard(hold.clone(), ttl, true);
    let lost = g.lost().await;
    assert_eq!(lost.kind(), ErrorKind::Lost);
    assert_eq!(Instant::now(), local_deadline(start, ttl));
    assert!(
        hold.extends.load(Ordering::SeqCst) > 3,
        "retries after a failure"
    );
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_finds_the_hold_gone_reports_it_lost_at_once() {
    let hold = Arc::new(Scripted::default());
    *hold.extend_error.lock().unwrap() = Some(ErrorKind::NotHeld);
    let start = Instant::now();
    let g = guard(hold.clone(), Duration::from_secs(30), true);
    g.lost().await;
    assert_eq!(Instant::now() - start, Duration::from_secs(10));
    assert_eq!(
        g.extend(Duration::from_secs(1)).await.unwrap_err().kind(),
        ErrorKind::NotHeld,
        "a lost guard never extends"
    );
    assert_eq!(hold.extends.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn without_renewal_the_lease_lapses_and_release_never_reads_as_lost() {
    let hold = Arc::new(Scripted::default());
    let g = guard(hold.clone(), Duration::from_secs(3), false);
    let mut signal = g.lost_signal();
    g.lost().await;
    assert_eq!(hold.extends.load(Ordering::SeqCst), 0);
    assert!(signal.wait().await.is_some());

    let g = guard(hold.clone(), Duration::from_secs(3), true);
    let mut signal = g.lost_signal();
    g.release().await.unwrap();
    assert!(signal.wait().await.is_none());
}

#[test]
fn a_guard_dropped_without_a_runtime_neither_blocks_nor_panics() {
    let hold = Arc::new(Scripted::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let g = runtime.block_on(async { guard(hold.clone(), Duration::from_secs(30), true) });
    drop(runtime);
    drop(g); // no runtime: the backstop (TTL) frees it; nothing to spawn on
    assert_eq!(hold.releases.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_dropped_guard_is_released_in_the_background() {
    let hold = Arc::new(Scripted::default());
    let g = guard(hold.clone(), Duration::from_secs(30), true);
    drop(g);
    for _ in 0..100 {
        if hold.releases.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the background release never ran");
}

/// A hold whose first release and whose extends hang until told to go on.
#[derive(Debug, Default)]
struct Gated {
    releases_started: AtomicU32,
    releases_done: AtomicU32,
    extend_gate: tokio::sync::Notify,
}

#[async_trait]
impl Hold for Gated {
    async fn release(&self) -> Result<()> {
        if self.releases_started.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        self.releases_done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn extend(&self, _ttl: Duration) -> Result<()> {
        self.extend_gate.notified().await;
        Ok(())
    }
}

fn gated_guard(hold: Arc<Gated>, ttl: Duration, renew: bool) -> LockGuard {
    LockGuard::new(GuardParts {
        name: LockName::new("x").unwrap(),
        owner_token: "t".into(),
        fencing_token: None,
        hold,
        status: HoldStatus::new(),
        lease: Some(Lease::new(ttl, Instant::now(), renew)),
    })
}

#[tokio::test(start_paused = true)]
async fn a_release_cancelled_midway_is_finished_in_the_background() {
    let hold = Arc::new(Gated::default());
    let g = gated_guard(hold.clone(), Duration::from_secs(30), true);
    let signal = g.lost_signal();
    let cut = tokio::time::timeout(Duration::from_millis(10), g.release()).await;
    assert!(cut.is_err(), "the first release hangs by design");
    for _ in 0..100 {
        if hold.releases_done.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(hold.releases_started.load(Ordering::SeqCst), 2);
    assert_eq!(hold.releases_done.load(Ordering::SeqCst), 1);
    assert!(!signal.is_lost(), "a cancelled release is not a loss");
}

#[tokio::test(start_paused = true)]
async fn an_extend_that_lands_after_the_lease_ran_out_does_not_report_success() {
    let hold = Arc::new(Gated::default());
    let ttl = Duration::from_secs(3);
    let g = Arc::new(gated_guard(hold.clone(), ttl, false));
    let extend = {
        let g = g.clone();
        tokio::spawn(async move { g.extend(Duration::from_secs(60)).await })
    };
    // The extend hangs past the local deadline: the watchdog declares the hold lost.
    let lost = g.lost().await;
    assert_eq!(lost.kind(), ErrorKind::Lost);
    hold.extend_gate.notify_one();
    let r = extend.await.unwrap();
    assert_eq!(
        r.expect_err("an extend that completed after the loss reported success")
            .kind(),
        ErrorKind::NotHeld
    );
    assert!(!g.is_held(), "a lost hold is never revived");
}

#[tokio::test(start_paused = true)]
async fn huge_durations_neither_overflow_nor_panic() {
    use distlock_core::memory::MemoryLock;
    use distlock_core::{AcquireOptions, LockExt, Wait};

    let hold = Arc::new(Scripted::default());
    let g = guard(hold.clone(), Duration::MAX, true);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(g.is_held());
    assert!(g.valid_until().unwrap() > Instant::now());
    g.release().await.unwrap();

    let a = MemoryLock::new();
    let b = a.store().client();
    let forever = AcquireOptions::default()
        .with_ttl(Duration::MAX)
        .with_wait(Wait::Up(Duration::MAX));
    let g = a.acquire_opts("x", &forever).await.unwrap().unwrap();
    g.extend(Duration::MAX).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), b.acquire_opts("x", &forever))
            .await
            .is_err(),
        "a held lock was taken"
    );
    assert!(b
        .acquire_timeout("x", Duration::from_millis(10))
        .await
        .is_err());
    g.release().await.unwrap();
    b.acquire_timeout("x", Duration::MAX)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_extend_that_shortens_the_lease_counts_at_once() {
    let hold = Arc::new(Gated::default());
    let start = Instant::now();
    let g = gated_guard(hold.clone(), Duration::from_secs(30), false);
    // Let the watchdog settle on the 30 s deadline first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The store may apply the 1 s lease although the reply never comes.
    let cut = tokio::time::timeout(Duration::from_millis(10), g.extend(Duration::from_secs(1)));
    assert!(cut.await.is_err());
    assert!(
        g.valid_until().unwrap() <= start + Duration::from_millis(1100),
        "the guard trusts the old 30 s lease after a cancelled 1 s extend"
    );
    g.lost().await;
    assert!(
        Instant::now() - start <= Duration::from_millis(1100),
        "the loss was signalled {:?} after the start, past the 1 s lease",
        Instant::now() - start
    );
}

#[tokio::test(start_paused = true)]
async fn a_users_extend_waits_for_the_renewal_in_flight() {
    let hold = Arc::new(Gated::default());
    let start = Instant::now();
    let g = Arc::new(gated_guard(hold.clone(), Duration::from_secs(30), true));
    // At 10 s the watchdog's renewal (30 s) is sent and hangs.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let user = {
        let g = g.clone();
        tokio::spawn(async move { g.extend(Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!user.is_finished());
    // The renewal's reply, then the user's: the user's shorter lease is the one that counts.
    hold.extend_gate.notify_one();
    tokio::time::sleep(Duration::from_millis(100)).await;
    hold.extend_gate.notify_one();
    user.await.unwrap().unwrap();
    let until = g.valid_until().unwrap();
    assert!(
        until <= Instant::now() + Duration::from_secs(5),
        "valid until {:?} after a 5 s extend",
        until - start
    );
    assert!(g.is_held());
    // The renewal goes on at the new, shorter lease's pace.
    for _ in 0..10 {
        hold.extend_gate.notify_one();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(g.is_held(), "renewal is on, yet the 5 s lease ran out");
}

/// `is_held` reads the clock at the call: a runtime too busy to run the watchdog (here its
/// only thread blocks) must not keep a lapsed lease reading as held.
#[test]
fn is_held_is_false_past_the_deadline_while_the_runtime_is_stalled() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let hold = Arc::new(Scripted::default());
        let g = guard(hold.clone(), Duration::from_millis(100), true);
        assert!(g.is_held());
        let until = g.valid_until().unwrap();
        std::thread::sleep(
            until.saturating_duration_since(Instant::now()) + Duration::from_millis(20),
        );
        assert_eq!(
            hold.extends.load(Ordering::SeqCst),
            0,
            "the watchdog ran in the stall"
        );
        assert!(!g.is_held(), "is_held() past valid_until");
        assert!(g.lost_signal().is_lost());
        assert_eq!(g.lost().await.kind(), ErrorKind::Lost);
        let err = g.extend(Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotHeld);
        assert_eq!(
            hold.extends.load(Ordering::SeqCst),
            0,
            "a lost hold was extended"
        );
    });
}

/// A hold without a lease: `extend` is a check, `Ok(())` while held (the default of
/// `Hold::extend`), `NotHeld` once the guard knows the hold is lost.
#[tokio::test]
async fn extend_without_a_lease_checks_the_hold() {
    #[derive(Debug)]
    struct NoLease;
    #[async_trait]
    impl Hold for NoLease {
        async fn release(&self) -> Result<()> {
            Ok(())
        }
    }
    let status = HoldStatus::new();
    let g = LockGuard::new(GuardParts {
        name: LockName::new("x").unwrap(),
        owner_token: "t".into(),
        fencing_token: None,
        hold: Arc::new(NoLease),
        status: status.clone(),
        lease: None,
    });
    g.extend(Duration::from_secs(5)).await.unwrap();
    assert!(g.is_held() && g.valid_until().is_none());
    status.mark_lost(LockError::lost("connection died"));
    let err = g.extend(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotHeld);
}

/// Fails its first extend (one dropped round trip), then succeeds.
#[derive(Debug, Default)]
struct FailsOnce {
    extends: AtomicU32,
}

#[async_trait]
impl Hold for FailsOnce {
    async fn release(&self) -> Result<()> {
        Ok(())
    }
    async fn extend(&self, _ttl: Duration) -> Result<()> {
        match self.extends.fetch_add(1, Ordering::SeqCst) {
            0 => Err(LockError::new(ErrorKind::Connection, "scripted")),
            _ => Ok(()),
        }
    }
}

/// 3 s of a 30 s TTL, as a Redis grant.
fn short_lease() -> Lease {
    Lease::new(Duration::from_secs(30), Instant::now(), true).starting_short(Duration::from_secs(3))
}

/// A lease that starts short ([`Lease::first`]: 3 s of a 30 s TTL, as a Redis grant) and
/// whose early renewal fails once is retried before the short lease runs out, as any
/// failed renewal is (the watchdog's retry, TTL/10 = 3 s later, was capped at the local
/// deadline, where the hold was declared lost without a second try).
#[tokio::test(start_paused = true)]
async fn a_short_first_lease_survives_one_failed_renewal() {
    let hold = Arc::new(FailsOnce::default());
    let g = guard_on(hold.clone(), short_lease());
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        g.is_held(),
        "lost after {} renewal(s)",
        hold.extends.load(Ordering::SeqCst)
    );
    assert!(hold.extends.load(Ordering::SeqCst) >= 2);
    g.release().await.unwrap();
}

/// The watchdog (a backend without a renewal group) renews a lease that started short a
/// tenth of the way in, not at once, and not at all when the hold ends before then.
#[tokio::test(start_paused = true)]
async fn the_watchdog_renews_a_short_first_lease_a_tenth_of_the_way_in() {
    let released_early = Arc::new(FailsOnce::default());
    let g = guard_on(released_early.clone(), short_lease());
    tokio::time::sleep(Duration::from_millis(250)).await;
    g.release().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(released_early.extends.load(Ordering::SeqCst), 0);

    let kept = Arc::new(FailsOnce::default());
    let g = guard_on(kept.clone(), short_lease());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        kept.extends.load(Ordering::SeqCst),
        0,
        "renewed before 0.25 s"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        kept.extends.load(Ordering::SeqCst) >= 1,
        "not renewed by 0.35 s"
    );
    g.release().await.unwrap();
}
