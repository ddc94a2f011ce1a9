//! Batched renewal: a client renews its holds with one script call per batch of due holds,
//! counted by the server (`INFO commandstats`), and a hold the server no longer has is lost
//! alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::calls;
use distlock_core::{AcquireOptions, DistributedLock, LockExt, LockGuard};
use distlock_redis::{RedisLock, Redlock};
use futures::{StreamExt, TryStreamExt};

const TTL: Duration = Duration::from_millis(1500);

async fn hold_many(locks: &dyn DistributedLock, prefix: &str, n: usize) -> Vec<LockGuard> {
    let options = AcquireOptions::try_once().with_ttl(TTL);
    futures::stream::iter(0..n)
        .map(|i| {
            let options = options.clone();
            async move {
                locks
                    .acquire_opts(&format!("{prefix}-{i}"), &options)
                    .await
                    .map(|g| g.expect("a fresh name is free"))
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await
        .unwrap()
}

/// Over the window, each hold needs about window / (TTL/3) renewals: one `PEXPIRE` each,
/// run inside far fewer `EVALSHA` calls.
async fn assert_batched(sides: &mut [redis::aio::MultiplexedConnection], guards: &[LockGuard]) {
    let window = TTL * 2;
    let mut before = Vec::new();
    for side in sides.iter_mut() {
        before.push((calls(side, "evalsha").await, calls(side, "pexpire").await));
    }
    tokio::time::sleep(window).await;
    for (side, (evalsha0, pexpire0)) in sides.iter_mut().zip(before) {
        let evalsha = calls(side, "evalsha").await - evalsha0;
        let pexpire = calls(side, "pexpire").await - pexpire0;
        let needed = guards.len() as u64 * 4;
        eprintln!(
            "{} holds over {window:?}: {pexpire} renewals in {evalsha} EVALSHA",
            guards.len()
        );
        assert!(pexpire >= needed, "{pexpire} renewals, {needed} needed");
        assert!(
            evalsha * 20 <= pexpire,
            "{evalsha} script calls for {pexpire} renewals"
        );
    }
    let lost = guards.iter().filter(|g| !g.is_held()).count();
    assert_eq!(lost, 0, "holds lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_renews_its_holds_in_batches() {
    let h = common::SingleHarness::new();
    let locks = RedisLock::connect_with(common::config(&h.server().url()))
        .await
        .unwrap();
    let guards = hold_many(&locks, "batch", 2000).await;
    let mut sides = vec![h.side_connection().await];
    assert_batched(&mut sides, &guards).await;
    for g in guards {
        g.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_renews_its_holds_in_batches_on_every_server() {
    let h = common::RedlockHarness::new();
    let locks = Redlock::connect(h.config()).await.unwrap();
    let guards = hold_many(&locks, "batch", 500).await;
    let mut sides = h.side_connections().await;
    assert_batched(&mut sides, &guards).await;
    for g in guards {
        g.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_gone_from_a_batch_loses_only_its_hold() {
    let h = common::SingleHarness::new();
    let locks = RedisLock::connect_with(common::config(&h.server().url()))
        .await
        .unwrap();
    let guards = hold_many(&locks, "gone", 50).await;
    let victim = &guards[17];
    common::delete_lock_key(&mut h.side_connection().await, victim)
        .await
        .unwrap();
    let e = tokio::time::timeout(TTL, victim.lost()).await.unwrap();
    assert!(e.to_string().contains("renewal found the lock gone"), "{e}");
    // Two more rounds for the others.
    tokio::time::sleep(TTL).await;
    let held = guards.iter().filter(|g| g.is_held()).count();
    assert_eq!(held, 49);
    // By the victim's name: `buffer_unordered` collects in completion order, so guards[17]
    // need not be "gone-17" (which would then still be held, and the try fail).
    assert!(locks
        .try_acquire(victim.name().as_str())
        .await
        .unwrap()
        .is_some());
}
