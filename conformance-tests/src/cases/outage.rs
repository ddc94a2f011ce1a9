//! A waiting acquire outlives a store outage shorter than its wait, on every backend.
//!
//! One promise of the core's retry policy (`AcquireOptions::retry`): a try reports a
//! connection failure at once, but a *waiting* acquire rides out an outage shorter than its
//! wait and ends with the lock, whatever the store (a restart that kills every connection,
//! a freeze that makes every request hang).

use std::time::Duration;

use distlock_core::{ErrorKind, LockExt};

use super::{ok, within, Ctx, SLACK};

/// How long the store stays frozen: past the time backends take to give a request up (Redis
/// by default: a 2 s response timeout, twice), below the retry policy's default run of
/// 15 s and far below the wait.
const OUTAGE: Duration = Duration::from_secs(6);

/// The waiters' limit: the outage, a restart, and a loaded machine fit well inside it.
const WAIT: Duration = Duration::from_secs(30);

/// Time for a waiter to send its first attempt and start waiting. Not a synchronisation:
/// the outcome must be the same if the outage begins before the waiter has started.
const SETTLE: Duration = Duration::from_millis(300);

pub(crate) async fn waiting_acquire_outlives_outage(ctx: &Ctx) {
    let Some(faults) = ctx.harness.faults() else {
        return ctx.skip("the harness has no fault injector");
    };
    let (a, b, c) = (ctx.client().await, ctx.client().await, ctx.client().await);

    // 1. Held elsewhere, the store restarts under the waiter: it ends with the lock once
    //    the holder lets go (or lost its hold to the restart).
    let name = ctx.name("restart");
    let holder = ok(b.try_acquire(&name).await, "acquire by the holder").expect("free lock");
    let waiting = a.acquire_timeout(&name, WAIT);
    let restart = async {
        tokio::time::sleep(SETTLE).await;
        let restarted = faults.restart_server().await;
        // The hold may have died with the restart: any outcome of its release is fine
        // here, only the waiter's is under test.
        let _ = tokio::time::timeout(WAIT, holder.release()).await;
        restarted
    };
    let (got, restarted) = within(WAIT + SLACK, "a waiting acquire across a restart", async {
        tokio::join!(waiting, restart)
    })
    .await;
    let g = got.unwrap_or_else(|e| {
        panic!("a waiting acquire failed on a restart shorter than its wait: {e}")
    });
    excludes(ctx, c.as_ref(), &name, "after a restart").await;
    ok(g.release().await, "release after the restart");
    match restarted {
        Ok(()) => ctx.passed("restart"),
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            ctx.skipped("restart", "the fault injector cannot restart the store")
        }
        Err(e) => panic!("restart_server failed: {e}"),
    }

    // 2. Free, the store is frozen as the acquire starts: it ends with the lock after the thaw.
    let name = ctx.name("pause");
    match faults.pause_server().await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            return ctx.skipped("pause", "the fault injector cannot pause the store");
        }
        Err(e) => panic!("pause_server failed: {e}"),
    }
    let waiting = a.acquire_timeout(&name, WAIT);
    let thaw = async {
        tokio::time::sleep(OUTAGE).await;
        faults.resume_server().await
    };
    // Joined, so the store is thawed whatever the acquire does; every later case needs it.
    let (got, resumed) = tokio::join!(tokio::time::timeout(WAIT + SLACK, waiting), thaw);
    if let Err(e) = resumed {
        panic!("resume_server failed: {e}");
    }
    let g = got
        .unwrap_or_else(|_| panic!("a waiting acquire did not end within {WAIT:?} + slack"))
        .unwrap_or_else(|e| {
            panic!("a waiting acquire failed on a {OUTAGE:?} freeze, shorter than its wait: {e}")
        });
    excludes(ctx, c.as_ref(), &name, "after a freeze").await;
    ok(g.release().await, "release after the freeze");
    ctx.passed("pause");
}

/// The lock taken after the outage excludes others: another client's try finds it held
/// (connection failures while that client reconnects are retried, for a bounded time).
async fn excludes(ctx: &Ctx, other: &dyn distlock_core::DistributedLock, name: &str, when: &str) {
    let verdict = within(WAIT, "a try by another client", async {
        loop {
            match other.try_acquire(name).await {
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return other,
            }
        }
    })
    .await;
    if let Some(g) = ok(verdict, "try_acquire by another client") {
        drop(g);
        panic!(
            "{}: the lock taken {when} did not exclude another client",
            ctx.case
        );
    }
}
