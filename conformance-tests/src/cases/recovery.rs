//! Reconnecting after the store restarts.

use std::time::{Duration, Instant};

use distlock_core::{AcquireOptions, ErrorKind, LockExt};

use super::{ok, within, Ctx, SLACK};

pub(crate) async fn after_restart(ctx: &Ctx) {
    let Some(faults) = ctx.harness.faults() else {
        return ctx.skip("the harness has no fault injector");
    };
    let name = ctx.name("lock");
    let a = ctx.client().await;
    let g = ok(a.try_acquire(&name).await, "before restart").expect("free lock");
    ok(g.release().await, "release");
    match faults.restart_server().await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return ctx.skip("the fault injector cannot restart the server")
        }
        Err(e) => panic!("restart_server failed: {e}"),
    }
    // Retryable errors are fine while the client reconnects; a bounded window, then it must work.
    let limit = Duration::from_secs(20);
    let start = Instant::now();
    loop {
        match a.acquire_timeout(&name, Duration::from_secs(2)).await {
            Ok(g) => {
                ok(g.release().await, "release after restart");
                return;
            }
            Err(e) if e.is_retryable() && start.elapsed() < limit => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("locking did not work again within {limit:?} of a restart: {e}"),
        }
    }
}

pub(crate) async fn pause_past_backstop(ctx: &Ctx) {
    let Some(faults) = ctx.harness.faults() else {
        return ctx.skip("the harness has no fault injector");
    };
    if !ctx.caps.lost_detection {
        return ctx.skip("the backend does not claim lost detection");
    }
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let options = AcquireOptions::try_once().with_ttl(ctx.harness.short_ttl());
    let g = ok(a.acquire_opts(&name, &options).await, "acquire").expect("free lock");
    match faults.pause_server().await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return ctx.skip("the fault injector cannot pause the server")
        }
        Err(e) => panic!("pause_server failed: {e}"),
    }
    let limit = ctx.harness.backstop() + SLACK;
    // Thaw the store whatever happens, or every later case of this binary would hang.
    let lost = tokio::time::timeout(limit, g.lost()).await;
    if let Err(e) = faults.resume_server().await {
        panic!("resume_server failed: {e}");
    }
    let lost = lost.unwrap_or_else(|_| {
        panic!("the store was frozen for {limit:?}, past the backstop, and the holder was not told")
    });
    assert_eq!(lost.kind(), ErrorKind::Lost);
    let next = within(
        limit + SLACK,
        "acquire after the thaw",
        b.acquire_timeout(&name, limit),
    )
    .await
    .unwrap_or_else(|e| panic!("after the thaw, the lost hold still blocked the lock: {e}"));
    assert!(
        g.release().await.is_err(),
        "releasing a lost hold reported success"
    );
    let c = ctx.client().await;
    assert!(
        ok(c.try_acquire(&name).await, "try_acquire").is_none(),
        "the stale guard freed the new holder's lock"
    );
    ok(next.release().await, "release");
}
