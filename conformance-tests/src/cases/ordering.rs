//! Reentrancy and FIFO fairness.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock_core::{ErrorKind, LockExt};

use super::{expect_kind, ok, within, Ctx, SLACK};

pub(crate) async fn reentrancy(ctx: &Ctx) {
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let outer = ok(a.try_acquire(&name).await, "first acquire").expect("free lock");
    let second = within(
        SLACK * 2,
        "second try_acquire by the holder",
        a.try_acquire(&name),
    )
    .await;
    let second = ok(second, "second try_acquire by the holder");
    if ctx.caps.reentrant {
        let inner = second.unwrap_or_else(|| panic!("a reentrant backend refused a nested hold"));
        ok(inner.release().await, "inner release");
        assert!(
            ok(b.try_acquire(&name).await, "try_acquire").is_none(),
            "releasing the inner hold freed the outer one"
        );
    } else {
        assert!(
            second.is_none(),
            "a non-reentrant backend gave the holder a second hold"
        );
        let r = within(
            SLACK * 3,
            "second limited acquire by the holder",
            a.acquire_timeout(&name, Duration::from_millis(300)),
        )
        .await;
        expect_kind(
            r,
            &[ErrorKind::Timeout],
            "second limited acquire by the holder",
        );
        assert!(
            ok(b.try_acquire(&name).await, "try_acquire").is_none(),
            "the refused nested acquire freed the outer hold"
        );
    }
    assert!(outer.is_held());
    ok(outer.release().await, "outer release");
    let g = ok(b.try_acquire(&name).await, "after release").expect("lock freed");
    ok(g.release().await, "release");
}

pub(crate) async fn fifo(ctx: &Ctx) {
    if !ctx.caps.fifo {
        return ctx.skip("the backend does not claim FIFO fairness");
    }
    const WAITERS: usize = 5;
    let name = ctx.name("queue");
    let holder = ctx.client().await;
    let g = ok(holder.try_acquire(&name).await, "holder").expect("free lock");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..WAITERS {
        let client = ctx.client().await;
        let (name, order) = (name.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let g = ok(
                client.acquire_timeout(&name, Duration::from_secs(30)).await,
                "queued acquire",
            );
            order.lock().unwrap().push(i);
            ok(g.release().await, "release");
        }));
        // The public API has no "now queued" signal; this gap orders the arrivals (with
        // room for a loaded 2-core machine to schedule the waiter's first request).
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ok(g.release().await, "holder release");
    within(Duration::from_secs(40), "the queue draining", async {
        for t in tasks {
            t.await.expect("waiter panicked");
        }
    })
    .await;
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order,
        (0..WAITERS).collect::<Vec<_>>(),
        "waiters were not served in arrival order"
    );
}
