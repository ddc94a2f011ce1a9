//! Stale guards, renewal and the lost signal.

use std::time::{Duration, Instant};

use distlock_core::{AcquireOptions, ErrorKind, LockExt, LockGuard};

use super::{expect_kind, ok, within, Ctx, SLACK};

fn short_lease(ctx: &Ctx, renew: bool) -> AcquireOptions {
    AcquireOptions::try_once()
        .with_ttl(ctx.harness.short_ttl())
        .with_renewal(renew)
}

/// Makes a hold go stale: its lease lapses (leases) or the fault injector loses it.
/// Returns `None` when the backend offers neither.
async fn make_stale(ctx: &Ctx, name: &str) -> Option<(LockGuard, Duration)> {
    let a = ctx.client().await;
    if ctx.caps.leases {
        let ttl = ctx.harness.short_ttl();
        let g = ok(
            a.acquire_opts(name, &short_lease(ctx, false)).await,
            "acquire",
        )
        .expect("free lock");
        let e = within(ttl + SLACK, "lost signal of a lapsed lease", g.lost()).await;
        assert_eq!(e.kind(), ErrorKind::Lost);
        assert!(!g.is_held());
        return Some((g, ttl + SLACK));
    }
    let faults = ctx.harness.faults()?;
    let g = ok(a.try_acquire(name).await, "acquire").expect("free lock");
    match faults.lose_hold(&g).await {
        Ok(()) => Some((g, ctx.harness.backstop() + SLACK)),
        Err(e) if e.kind() == ErrorKind::Unsupported => None,
        Err(e) => panic!("lose_hold failed: {e}"),
    }
}

pub(crate) async fn stale_guard(ctx: &Ctx) {
    let name = ctx.name("lock");
    let Some((stale, wait)) = make_stale(ctx, &name).await else {
        ctx.skipped(
            "stale_release_and_extend",
            "the backend has no leases and its harness cannot lose a hold (Faults::lose_hold)",
        );
        return renewal_of_a_stale_hold(ctx).await;
    };
    let b = ctx.client().await;
    let fresh = b
        .acquire_timeout(&name, wait)
        .await
        .unwrap_or_else(|e| panic!("the lock was not free after the stale hold ended: {e}"));
    if let (Some(old), Some(new)) = (stale.fencing_token(), fresh.fencing_token()) {
        assert!(
            new > old,
            "the new holder's fencing token {new} is not above {old}"
        );
    }
    expect_kind(
        stale.extend(ctx.harness.short_ttl()).await,
        &[ErrorKind::NotHeld],
        "extend by a stale guard",
    );
    expect_kind(
        stale.release().await,
        &[ErrorKind::NotHeld],
        "release by a stale guard",
    );
    let c = ctx.client().await;
    assert!(
        ok(c.try_acquire(&name).await, "try_acquire").is_none(),
        "a stale guard freed the new holder's lock"
    );
    assert!(
        fresh.is_held(),
        "the new holder lost its hold to a stale guard"
    );
    ok(fresh.release().await, "release by the new holder");
    ctx.passed("stale_release_and_extend");
    renewal_of_a_stale_hold(ctx).await;
}

/// A guard that still renews while another client took its lock over must learn it from
/// its next renewal (compare-and-extend), not keep extending someone else's hold and
/// believe it is still held. A guard's own `extend` cannot show this: it refuses once the
/// guard knows of a loss, and a lapsed lease is known locally first.
async fn renewal_of_a_stale_hold(ctx: &Ctx) {
    const CHECK: &str = "renewal_of_a_stale_hold";
    if !ctx.caps.leases {
        return ctx.skipped(CHECK, "the backend does not claim leases");
    }
    let Some(faults) = ctx.harness.faults() else {
        return ctx.skipped(CHECK, "the harness has no fault injector (Harness::faults)");
    };
    let name = ctx.name("renewed");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let g = ok(
        a.acquire_opts(&name, &short_lease(ctx, true)).await,
        "acquire",
    )
    .expect("free lock");
    match faults.lose_hold(&g).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return ctx.skipped(
                CHECK,
                "the fault injector cannot lose a hold (Faults::lose_hold)",
            )
        }
        Err(e) => panic!("lose_hold failed: {e}"),
    }
    let limit = ctx.harness.backstop() + SLACK;
    let fresh = b
        .acquire_timeout(&name, limit)
        .await
        .unwrap_or_else(|e| panic!("the lock was not free after its hold was lost: {e}"));
    // The stale guard's next renewal comes within a third of the TTL.
    let ttl = ctx.harness.short_ttl();
    let lost = within(
        ttl + SLACK,
        "a stale guard's renewal finding the lock owned by another client",
        g.lost(),
    )
    .await;
    assert_eq!(lost.kind(), ErrorKind::Lost);
    assert!(fresh.is_held(), "the new holder lost its hold");
    assert!(
        ok(a.try_acquire(&name).await, "try_acquire").is_none(),
        "the new holder's lock was freed"
    );
    ok(fresh.release().await, "release by the new holder");
    ctx.passed(CHECK);
}

pub(crate) async fn lost_signal(ctx: &Ctx) {
    if !ctx.caps.lost_detection {
        return ctx.skip("the backend does not claim lost detection");
    }
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);

    // A normal release never reads as a loss.
    let g = ok(
        a.acquire_opts(&name, &short_lease(ctx, true)).await,
        "acquire",
    )
    .expect("free lock");
    let mut signal = g.lost_signal();
    ok(g.release().await, "release");
    let seen = within(SLACK, "lost signal after release", signal.wait()).await;
    assert!(
        seen.is_none(),
        "the lost signal fired on a normal release: {seen:?}"
    );
    ctx.passed("not_on_release");

    // An injected fault does.
    let Some(faults) = ctx.harness.faults() else {
        return ctx.skipped(
            "on_fault",
            "the harness has no fault injector (Harness::faults)",
        );
    };
    let g = ok(
        a.acquire_opts(&name, &short_lease(ctx, true)).await,
        "acquire",
    )
    .expect("free lock");
    let mut signal = g.lost_signal();
    match faults.lose_hold(&g).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return ctx.skipped(
                "on_fault",
                "the fault injector cannot lose a hold (Faults::lose_hold)",
            )
        }
        Err(e) => panic!("lose_hold failed: {e}"),
    }
    let limit = ctx.harness.backstop() + SLACK;
    let lost = within(limit, "lost signal after an injected fault", signal.wait())
        .await
        .unwrap_or_else(|| panic!("the signal ended without a loss"));
    assert_eq!(lost.kind(), ErrorKind::Lost, "{lost:?}");
    assert!(!g.is_held(), "is_held after the loss was signalled");
    let next = b
        .acquire_timeout(&name, limit)
        .await
        .unwrap_or_else(|e| panic!("another client could not take the lost lock: {e}"));
    assert!(
        g.release().await.is_err(),
        "releasing a lost hold reported success"
    );
    ok(next.release().await, "release");
    ctx.passed("on_fault");
}

pub(crate) async fn renewal(ctx: &Ctx) {
    if !ctx.caps.leases {
        return ctx.skip("the backend does not claim leases");
    }
    let name = ctx.name("lease");
    let ttl = ctx.harness.short_ttl();
    let (a, b) = (ctx.client().await, ctx.client().await);

    let g = ok(
        a.acquire_opts(&name, &short_lease(ctx, true)).await,
        "acquire",
    )
    .expect("free lock");
    let until = Instant::now() + ttl * 3;
    while Instant::now() < until {
        assert!(
            ok(b.try_acquire(&name).await, "try_acquire").is_none(),
            "the hold lapsed although renewal was on"
        );
        assert!(g.is_held(), "renewal on, yet the guard says lost");
        tokio::time::sleep(ttl / 5).await;
    }
    ok(g.extend(ttl).await, "manual extend");
    assert!(g
        .valid_until()
        .is_some_and(|t| t > tokio::time::Instant::now()));
    ok(g.release().await, "release");
    ctx.passed("renewal");

    let start = Instant::now();
    let g = ok(
        a.acquire_opts(&name, &short_lease(ctx, false)).await,
        "acquire",
    )
    .expect("free lock");
    let lost = within(ttl + SLACK, "loss of an unrenewed lease", g.lost()).await;
    assert_eq!(lost.kind(), ErrorKind::Lost);
    let lapsed = start.elapsed();
    assert!(
        lapsed + Duration::from_millis(50) >= ttl * 9 / 10,
        "an unrenewed {ttl:?} lease was reported lost after only {lapsed:?}"
    );
    let next = b
        .acquire_timeout(&name, SLACK * 2)
        .await
        .unwrap_or_else(|e| panic!("an unrenewed lease did not lapse: {e}"));
    ok(next.release().await, "release");
    ctx.passed("unrenewed_lapse");
}
