//! Cancelled acquires must leave nothing behind.
//!
//! Each acquire is cancelled at each of its await points in turn (see [`super::cut`]): right
//! after its n-th suspension and right after the wake that ends it, for n = 1, 2, … until
//! it completes. After every cut, another client must get the lock within
//! [`Harness::cleanup`](crate::Harness::cleanup). A leak at any await point is therefore
//! found on every run, not by the luck of a random timer.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use distlock_core::{AcquireOptions, DistributedLock, LockExt, LockGuard, Result};

use super::cut::{Step, Stepped};
use super::{ok, within, Ctx, SLACK};
use crate::case::Case;
use crate::harness::Harness;

/// How long a stepped acquire may sleep unwoken before it counts as parked (waiting for a
/// release), and how long a cut waits for the wake that follows a suspension.
const QUIET: Duration = Duration::from_millis(150);

/// No acquire of a free lock should need more suspensions than this (a fresh connection's
/// handshake included).
const MAX_POINTS: usize = 300;

/// A waiter on a held lock is cut at its first points only: backends that re-check
/// periodically never park, and every further point is another re-check.
const QUEUED_POINTS: usize = 12;

/// A waiter is given this long to queue up before the holder releases.
const SETTLE: Duration = Duration::from_millis(200);

/// What the cuts need from the case, owned: they run on a runtime of their own.
struct Scene {
    harness: Arc<dyn Harness>,
    case: Case,
    names: [String; 4],
}

impl Scene {
    async fn client(&self) -> Box<dyn DistributedLock> {
        match self.harness.client().await {
            Ok(c) => c,
            Err(e) => panic!("{}: the harness could not make a client: {e}", self.case),
        }
    }
}

pub(crate) async fn leaves_no_hold(ctx: &Ctx) {
    let scene = Scene {
        harness: ctx.harness.clone(),
        case: ctx.case,
        names: ["free", "free-try", "contended", "handoff"].map(|n| ctx.name(n)),
    };
    // On a runtime with one thread, the backend's own tasks (a connection's driver, a
    // session's reader) run only while the stepped acquire is suspended, so every round trip
    // to the store is a suspension point however fast the store answers: on a multi-threaded
    // runtime a reply can arrive and be processed within a single poll.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("conformance-cancel".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a Tokio runtime");
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                runtime.block_on(cut_everywhere(&scene))
            }));
            // Not dropped while unwinding: that would wait for stuck blocking tasks forever.
            runtime.shutdown_timeout(Duration::from_secs(5));
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        panic!("no thread for the cancellation cuts: {e}");
    }
    match rx.await {
        Ok(Ok(passed)) => passed.into_iter().for_each(|check| ctx.passed(check)),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the cancellation thread ended without a word"),
    }
}

/// Returns the sub-checks that passed, in order; panics at the first failure.
async fn cut_everywhere(scene: &Scene) -> Vec<&'static str> {
    let (a, b, c) = (
        scene.client().await,
        scene.client().await,
        scene.client().await,
    );
    let mut passed = Vec::new();
    let budget = Duration::from_secs(90);
    // Default options, so default leases: a hold left behind must be cleaned up, not wait
    // out a 30 s lease.
    let waiting = AcquireOptions::wait_forever();
    let once = AcquireOptions::try_once();
    let [free, free_try, contended, handoff] = &scene.names;

    within(budget, "cutting acquires of a free lock", async {
        let (b, waiting) = (b.as_ref(), &waiting);
        each_point(scene, c.as_ref(), free, || b.acquire_opts(free, waiting)).await
    })
    .await;
    passed.push("free_acquire");

    within(budget, "cutting try_acquires of a free lock", async {
        let (b, once) = (b.as_ref(), &once);
        each_point(scene, c.as_ref(), free_try, || {
            b.acquire_opts(free_try, once)
        })
        .await
    })
    .await;
    passed.push("free_try_acquire");

    let holder = ok(a.try_acquire(contended).await, "holder").expect("free lock");
    within(budget, "cutting waiters on a held lock", async {
        for point in 1..=QUEUED_POINTS {
            for after_wake in [false, true] {
                let mut waiter = Stepped::new(b.acquire_opts(contended, &waiting));
                match waiter.advance(point, QUIET).await {
                    Step::Finished(got) => panic!("a waiter acquired a held lock: {got:?}"),
                    Step::Suspended if after_wake => {
                        waiter.woken_within(QUIET).await;
                    }
                    Step::Suspended => {}
                    // It waits for the release: the last point there is.
                    Step::Parked => return,
                }
            }
        }
    })
    .await;
    assert!(
        holder.is_held(),
        "cancelled waiters broke the holder's hold"
    );
    ok(holder.release().await, "holder release");
    expect_free(
        scene,
        c.as_ref(),
        contended,
        "waiters cancelled while queued",
    )
    .await;
    passed.push("queued_waiter");

    within(budget, "cutting waiters during a hand-off", async {
        hand_off(scene, b.as_ref(), c.as_ref(), handoff, &waiting).await
    })
    .await;
    passed.push("hand_off");
    passed
}

/// Cuts `acquire()` of a free lock at each of its points in turn, checking after each cut
/// that `verifier` gets the lock.
async fn each_point<Fut>(
    scene: &Scene,
    verifier: &dyn DistributedLock,
    name: &str,
    acquire: impl Fn() -> Fut,
) where
    Fut: Future<Output = Result<Option<LockGuard>>>,
{
    for point in 1..=MAX_POINTS {
        for after_wake in [false, true] {
            let mut attempt = Stepped::new(acquire());
            match attempt.advance(point, QUIET).await {
                Step::Finished(got) => {
                    let guard = ok(got, "an uncut acquire of a free lock")
                        .unwrap_or_else(|| panic!("{name:?} was not free"));
                    ok(guard.release().await, "release");
                    return;
                }
                Step::Suspended | Step::Parked if after_wake => {
                    attempt.woken_within(QUIET).await;
                }
                Step::Suspended | Step::Parked => {}
            }
            drop(attempt);
            let when = if after_wake { "woken after" } else { "at" };
            expect_free(
                scene,
                verifier,
                name,
                &format!("cut {when} await point {point}"),
            )
            .await;
        }
    }
    panic!("an acquire of a free lock did not complete within {MAX_POINTS} await points");
}

/// A waiter queued behind a holder is cut at each point after the holder's release, while
/// the lock is being handed to it (a notification, a watch, a server-side wait returning).
async fn hand_off(
    scene: &Scene,
    b: &dyn DistributedLock,
    c: &dyn DistributedLock,
    name: &str,
    waiting: &AcquireOptions,
) {
    for point in 0..=MAX_POINTS {
        for after_wake in [false, true] {
            let holder = acquire_within_cleanup(scene, c, name, point, after_wake).await;
            let mut waiter = Stepped::new(b.acquire_opts(name, waiting));
            if let Ok(Step::Finished(got)) =
                tokio::time::timeout(SETTLE, waiter.advance(usize::MAX, SETTLE)).await
            {
                panic!("a waiter acquired a held lock: {got:?}");
            }
            ok(holder.release().await, "release before a hand-off");
            let step = if point == 0 {
                Step::Suspended
            } else {
                waiter.advance(point, QUIET).await
            };
            match step {
                Step::Finished(got) => {
                    let guard = ok(got, "an uncut hand-off").expect("a waiting acquire ends held");
                    ok(guard.release().await, "release");
                    if after_wake {
                        return;
                    }
                }
                Step::Suspended | Step::Parked if after_wake => {
                    waiter.woken_within(QUIET).await;
                }
                Step::Suspended | Step::Parked => {}
            }
        }
    }
    panic!("a hand-off did not complete within {MAX_POINTS} await points");
}

async fn acquire_within_cleanup(
    scene: &Scene,
    c: &dyn DistributedLock,
    name: &str,
    point: usize,
    after_wake: bool,
) -> LockGuard {
    let limit = scene.harness.cleanup();
    let when = if after_wake { "woken after" } else { "at" };
    c.acquire_timeout(name, limit).await.unwrap_or_else(|e| {
        panic!(
            "{name:?} was still held {limit:?} after a waiter was cut {when} await point \
             {point} of a hand-off (the round before): {e}"
        )
    })
}

async fn expect_free(scene: &Scene, verifier: &dyn DistributedLock, name: &str, what: &str) {
    let limit = scene.harness.cleanup();
    let start = Instant::now();
    let guard = verifier
        .acquire_timeout(name, limit)
        .await
        .unwrap_or_else(|e| {
            panic!("{name:?} was still held {limit:?} after an acquire was {what}: {e}")
        });
    assert!(start.elapsed() <= limit + SLACK);
    ok(guard.release().await, "release");
}
