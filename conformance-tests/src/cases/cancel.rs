//! Cancelled acquires must leave nothing behind.
//!
//! Each acquire is cancelled at each of its await points in turn (see [`super::cut`]): right
//! after its n-th suspension and right after the wake that ends it, for n = 1, 2, … until
//! it completes. After every cut, another client must get the lock within
//! [`Harness::cleanup`](crate::Harness::cleanup). A leak at any await point is therefore
//! found on every run, not by the luck of a random timer.

use std::future::Future;
use std::time::{Duration, Instant};

use distlock_core::{DistributedLock, LockExt, LockGuard, Result};

use super::cut::{Step, Stepped};
use super::{ok, within, Ctx, SLACK};

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

pub(crate) async fn leaves_no_hold(ctx: &Ctx) {
    let (a, b, c) = (ctx.client().await, ctx.client().await, ctx.client().await);
    let budget = Duration::from_secs(90);

    let free = ctx.name("free");
    within(budget, "cutting acquires of a free lock", async {
        let (b, free) = (b.as_ref(), free.as_str());
        each_point(ctx, c.as_ref(), free, || async move {
            b.acquire(free).await.map(Some)
        })
        .await
    })
    .await;
    ctx.passed("free_acquire");

    let free_try = ctx.name("free-try");
    within(budget, "cutting try_acquires of a free lock", async {
        let (b, free_try) = (b.as_ref(), free_try.as_str());
        each_point(ctx, c.as_ref(), free_try, || b.try_acquire(free_try)).await
    })
    .await;
    ctx.passed("free_try_acquire");

    let contended = ctx.name("contended");
    let holder = ok(a.try_acquire(&contended).await, "holder").expect("free lock");
    within(budget, "cutting waiters on a held lock", async {
        for point in 1..=QUEUED_POINTS {
            for after_wake in [false, true] {
                let mut waiter = Stepped::new(b.acquire(&contended));
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
        ctx,
        c.as_ref(),
        &contended,
        "waiters cancelled while queued",
    )
    .await;
    ctx.passed("queued_waiter");

    let handoff = ctx.name("handoff");
    within(budget, "cutting waiters during a hand-off", async {
        hand_off(ctx, b.as_ref(), c.as_ref(), &handoff).await
    })
    .await;
    ctx.passed("hand_off");
}

/// Cuts `acquire()` of a free lock at each of its points in turn, checking after each cut
/// that `verifier` gets the lock.
async fn each_point<Fut>(
    ctx: &Ctx,
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
                ctx,
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
async fn hand_off(ctx: &Ctx, b: &dyn DistributedLock, c: &dyn DistributedLock, name: &str) {
    for point in 0..=MAX_POINTS {
        for after_wake in [false, true] {
            let holder = acquire_within_cleanup(ctx, c, name, point, after_wake).await;
            let mut waiter = Stepped::new(b.acquire(name));
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
                    let guard = ok(got, "an uncut hand-off");
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
    ctx: &Ctx,
    c: &dyn DistributedLock,
    name: &str,
    point: usize,
    after_wake: bool,
) -> LockGuard {
    let limit = ctx.harness.cleanup();
    let when = if after_wake { "woken after" } else { "at" };
    c.acquire_timeout(name, limit).await.unwrap_or_else(|e| {
        panic!(
            "{name:?} was still held {limit:?} after a waiter was cut {when} await point \
             {point} of a hand-off (the round before): {e}"
        )
    })
}

async fn expect_free(ctx: &Ctx, verifier: &dyn DistributedLock, name: &str, what: &str) {
    let limit = ctx.harness.cleanup();
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
