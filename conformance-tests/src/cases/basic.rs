//! Acquire, release, contention and waiting.

use std::time::{Duration, Instant};

use distlock_core::{ErrorKind, LockExt};

use super::{expect_kind, ok, within, Ctx, SLACK};

pub(crate) async fn acquire_release_reacquire(ctx: &Ctx) {
    let name = ctx.name("lock");
    let c = ctx.client().await;
    let g = ok(c.try_acquire(&name).await, "first try_acquire")
        .unwrap_or_else(|| panic!("try_acquire of a free lock returned None"));
    assert!(g.is_held(), "a fresh guard must be held");
    assert_eq!(g.name().as_str(), name);
    assert!(!g.owner_token().is_empty(), "a guard needs an owner token");
    ok(g.release().await, "release");
    let g = ok(c.try_acquire(&name).await, "second try_acquire")
        .unwrap_or_else(|| panic!("the lock stayed held after release"));
    ok(g.release().await, "second release");
    let g = ok(
        within(
            SLACK * 2,
            "wait-forever acquire of a free lock",
            c.acquire(&name),
        )
        .await,
        "acquire",
    );
    ok(g.release().await, "third release");
}

pub(crate) async fn names_independent(ctx: &Ctx) {
    let (a, b) = (ctx.client().await, ctx.client().await);
    let names = ["orders", "orders2", "orders/sub", "ORDERS"].map(|n| ctx.name(n));
    let mut guards = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let client = if i % 2 == 0 { &a } else { &b };
        let g = ok(client.try_acquire(name).await, "try_acquire")
            .unwrap_or_else(|| panic!("{name:?} was blocked by a hold on another name"));
        guards.push(g);
    }
    let other = ctx.client().await;
    for name in &names {
        assert!(
            ok(other.try_acquire(name).await, "contended try_acquire").is_none(),
            "{name:?} was free while held"
        );
    }
    for g in guards {
        ok(g.release().await, "release");
    }
}

pub(crate) async fn try_lock_under_contention(ctx: &Ctx) {
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let g = ok(a.try_acquire(&name).await, "holder").expect("free lock");
    for _ in 0..3 {
        let got = within(
            SLACK * 2,
            "try_acquire under contention",
            b.try_acquire(&name),
        )
        .await;
        assert!(
            ok(got, "contended try_acquire").is_none(),
            "two holders at once"
        );
    }
    assert!(g.is_held(), "the holder's guard must stay held");
    ok(g.release().await, "release");
    let g = ok(b.try_acquire(&name).await, "after release").expect("lock freed");
    ok(g.release().await, "release");
}

pub(crate) async fn wait_timeout_bounds(ctx: &Ctx) {
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let g = ok(a.try_acquire(&name).await, "holder").expect("free lock");
    for limit in [Duration::from_millis(300), Duration::from_millis(900)] {
        let start = Instant::now();
        let r = within(
            limit + SLACK * 2,
            "limited wait",
            b.acquire_timeout(&name, limit),
        )
        .await;
        let took = start.elapsed();
        expect_kind(r, &[ErrorKind::Timeout], "acquire_timeout on a held lock");
        assert!(
            took + Duration::from_millis(30) >= limit,
            "gave up after {took:?}, before the {limit:?} limit"
        );
        assert!(
            took <= limit + SLACK,
            "gave up after {took:?}, long past the {limit:?} limit"
        );
    }
    // A huge limit (`Duration::MAX` as "practically forever") is a long wait, not an
    // overflow panic.
    let huge = tokio::time::timeout(
        Duration::from_millis(300),
        b.acquire_timeout(&name, Duration::MAX),
    )
    .await;
    assert!(
        huge.is_err(),
        "a wait with a huge limit on a held lock ended: {huge:?}"
    );
    assert!(g.is_held());
    ok(g.release().await, "release");
    let g = ok(
        within(
            SLACK * 2,
            "a huge-limit acquire of a free lock",
            b.acquire_timeout(&name, Duration::MAX),
        )
        .await,
        "a huge-limit acquire of a free lock",
    );
    ok(g.release().await, "release");
}

pub(crate) async fn wait_forever_acquires_after_release(ctx: &Ctx) {
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let g = ok(a.try_acquire(&name).await, "holder").expect("free lock");
    let waiter = {
        let name = name.clone();
        tokio::spawn(async move {
            let got = b.acquire(&name).await;
            (got.map(|g| (g.fencing_token(), Instant::now())), b)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "the waiter got a held lock");
    ok(g.release().await, "release");
    let released = Instant::now();
    let (got, _b) = within(SLACK * 4, "waiter after release", waiter)
        .await
        .expect("waiter task");
    let (_, at) = ok(got, "wait-forever acquire");
    assert!(
        at.duration_since(released) <= SLACK * 2,
        "the waiter took {:?} after the release",
        at.duration_since(released)
    );
}

pub(crate) async fn release_is_immediate(ctx: &Ctx) {
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    for round in 0..5 {
        let g = ok(a.try_acquire(&name).await, "holder").expect("free lock");
        ok(g.release().await, "release");
        let g = ok(
            b.try_acquire(&name).await,
            "try_acquire right after release",
        )
        .unwrap_or_else(|| panic!("round {round}: still held right after release returned"));
        ok(g.release().await, "release");
    }
}

pub(crate) async fn dropped_guard_frees_promptly(ctx: &Ctx) {
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let limit = ctx.harness.cleanup();
    for _ in 0..3 {
        let g = ok(a.try_acquire(&name).await, "holder").expect("free lock");
        drop(g);
        let start = Instant::now();
        let g = b.acquire_timeout(&name, limit).await;
        let g = g.unwrap_or_else(|e| {
            panic!("a dropped guard did not free the lock within {limit:?}: {e}")
        });
        assert!(start.elapsed() <= limit + SLACK);
        ok(g.release().await, "release");
    }
}
