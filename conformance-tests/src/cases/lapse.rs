//! What a lease promises and what a lost hold reports: exclusion for the whole local
//! validity of a lease, `extend(d)` honouring its `d`, and a store-side loss never read
//! as success.

use std::time::Duration;

use distlock_core::{AcquireOptions, DistributedLock, ErrorKind, LockExt, LockGuard};
use tokio::time::Instant;

use super::{expect_kind, ok, within, Ctx, SLACK};

fn unrenewed(ttl: Duration) -> AcquireOptions {
    AcquireOptions::try_once().with_ttl(ttl).with_renewal(false)
}

fn valid_until(g: &LockGuard) -> Instant {
    g.valid_until()
        .unwrap_or_else(|| panic!("a backend that claims leases gave a guard no valid_until"))
}

/// Polls `other.try_acquire(name)` until `until`: nobody may get the lock before it. A
/// grant whose reply came back before `until` was certainly made before it.
async fn nobody_before(other: &dyn DistributedLock, name: &str, until: Instant, what: &str) {
    loop {
        let asked = Instant::now();
        if asked >= until {
            return;
        }
        let got = ok(
            other.try_acquire(name).await,
            "try_acquire by another client",
        );
        let answered = Instant::now();
        if let Some(g) = got {
            if answered < until {
                panic!(
                    "another client got the lock {:?} before the holder's valid_until ({what})",
                    until - answered
                );
            }
            ok(g.release().await, "release");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5).min(until - asked)).await;
    }
}

/// Once the lease's local validity ended, the lock must soon be free.
async fn free_soon_after(other: &dyn DistributedLock, name: &str, until: Instant, what: &str) {
    let limit = until.saturating_duration_since(Instant::now()) + SLACK;
    let g = other
        .acquire_timeout(name, limit)
        .await
        .unwrap_or_else(|e| {
            panic!("the lock was not free {SLACK:?} after the holder's valid_until ({what}): {e}")
        });
    ok(g.release().await, "release");
}

pub(crate) async fn unrenewed_excludes(ctx: &Ctx) {
    if !ctx.caps.leases {
        return ctx.skip("the backend does not claim leases");
    }
    let name = ctx.name("lease");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let ttl = ctx.harness.short_ttl();
    let g = ok(a.acquire_opts(&name, &unrenewed(ttl)).await, "acquire").expect("free lock");
    let until = valid_until(&g);
    assert!(
        until > Instant::now() + ttl / 2,
        "a {ttl:?} lease is valid only until {:?} from now",
        until.saturating_duration_since(Instant::now())
    );
    let what = format!("an unrenewed {ttl:?} lease");
    nobody_before(b.as_ref(), &name, until, &what).await;
    free_soon_after(b.as_ref(), &name, until, &what).await;
    drop(g);
}

pub(crate) async fn extend_keeps_hold(ctx: &Ctx) {
    let ttl = ctx.harness.short_ttl();
    let (a, b) = (ctx.client().await, ctx.client().await);
    if !ctx.caps.leases {
        // Nothing expires, so extending trivially succeeds while the hold is ours.
        for (check, d) in [("longer_than_ttl", ttl * 2), ("shorter_than_ttl", ttl / 2)] {
            let name = ctx.name(check);
            let g = ok(a.try_acquire(&name).await, "acquire").expect("free lock");
            ok(
                g.extend(d).await,
                "extend of a held lock on a backend without leases",
            );
            assert!(g.is_held(), "extend made a held guard lost");
            assert!(
                ok(b.try_acquire(&name).await, "try_acquire").is_none(),
                "the lock was free after an extend"
            );
            ok(g.release().await, "release");
            ctx.passed(check);
        }
        return;
    }

    // Longer: acquired for `ttl`, extended at once to twice that.
    let name = ctx.name("longer");
    let d = ttl * 2;
    let g = ok(a.acquire_opts(&name, &unrenewed(ttl)).await, "acquire").expect("free lock");
    let asked = Instant::now();
    ok(g.extend(d).await, "extend to a longer lease");
    let until = valid_until(&g);
    assert!(
        until >= asked + ttl,
        "after extend({d:?}) the guard counts only {:?}",
        until.saturating_duration_since(asked)
    );
    let what = format!("a {ttl:?} lease extended to {d:?}");
    nobody_before(b.as_ref(), &name, until, &what).await;
    free_soon_after(b.as_ref(), &name, until, &what).await;
    drop(g);
    ctx.passed("longer_than_ttl");

    // Shorter: acquired for a long lease, extended at once to `ttl`: held until the new
    // deadline, and free soon after it, long before the acquire TTL would have ended.
    let name = ctx.name("shorter");
    let long = ttl * 4 + SLACK * 2;
    let g = ok(a.acquire_opts(&name, &unrenewed(long)).await, "acquire").expect("free lock");
    ok(g.extend(ttl).await, "extend to a shorter lease");
    let until = valid_until(&g);
    let what = format!("a {long:?} lease extended to {ttl:?}");
    nobody_before(b.as_ref(), &name, until, &what).await;
    free_soon_after(b.as_ref(), &name, until, &what).await;
    drop(g);
    ctx.passed("shorter_than_ttl");
}

pub(crate) async fn store_side_loss(ctx: &Ctx) {
    let Some(faults) = ctx.harness.faults() else {
        return ctx.skip("the harness has no fault injector (Harness::faults)");
    };
    // A long lease without renewal: the guard still believes it holds when the store lost
    // the hold, so only the store's answer can tell.
    let options = unrenewed(Duration::from_secs(60));
    let limit = ctx.harness.backstop() + SLACK;
    for check in ["extend", "release"] {
        let name = ctx.name(check);
        let (a, b) = (ctx.client().await, ctx.client().await);
        let g = ok(a.acquire_opts(&name, &options).await, "acquire").expect("free lock");
        match faults.lose_hold(&g).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                return ctx.skip("the fault injector cannot lose a hold (Faults::lose_hold)")
            }
            Err(e) => panic!("lose_hold failed: {e}"),
        }
        if check == "extend" {
            expect_kind(
                g.extend(ctx.harness.short_ttl()).await,
                &[ErrorKind::NotHeld],
                "extend after the store lost the hold",
            );
            assert!(
                !g.is_held(),
                "the guard says held after extend found it lost"
            );
        } else {
            let r = within(limit, "release after the store lost the hold", g.release()).await;
            expect_kind(
                r,
                &[ErrorKind::NotHeld, ErrorKind::Lost],
                "release after the store lost the hold",
            );
        }
        let next = b
            .acquire_timeout(&name, limit)
            .await
            .unwrap_or_else(|e| panic!("the lost lock did not become free: {e}"));
        ok(next.release().await, "release");
        ctx.passed(check);
    }
}
