//! Edges of the acquire options: zero and huge wait limits, huge leases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{config, RedlockHarness, SingleHarness};
use distlock_core::{AcquireOptions, ErrorKind, LockExt};
use distlock_redis::{RedisLock, Redlock};

async fn client(h: &SingleHarness) -> RedisLock {
    RedisLock::connect_with(config(&h.server().url()))
        .await
        .unwrap()
}

/// A zero wait on a free lock is a try: it takes the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_wait_on_a_free_lock_takes_it() {
    let h = SingleHarness::new();
    let a = client(&h).await;
    for _ in 0..20 {
        let g = a
            .acquire_timeout("zero-wait", Duration::ZERO)
            .await
            .expect("a free lock with a zero wait");
        g.release().await.unwrap();
    }
    // On a held lock it is a try too: a timeout at once.
    let b = client(&h).await;
    let g = b.try_acquire("zero-wait").await.unwrap().unwrap();
    let start = std::time::Instant::now();
    let e = a
        .acquire_timeout("zero-wait", Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    g.release().await.unwrap();
}

/// A wait limit too large for the clock is waiting forever, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_wait_limit_is_not_a_panic() {
    let h = SingleHarness::new();
    let a = client(&h).await;
    let g = a.acquire_timeout("huge-wait", Duration::MAX).await.unwrap();
    g.release().await.unwrap();
}

/// 2^64 ms + 500 ms: `as u64` would make it 500 ms.
fn huge_ttl() -> Duration {
    Duration::new(18_446_744_073_709_552, 116_000_000)
}

/// A lease whose milliseconds do not fit the server's range is refused, never cut down to a
/// short one the guard would not know about (it would then say "held" after the key expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_lease_is_refused_not_truncated() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, client(&h).await);
    let r = a
        .acquire_opts("huge-ttl", &AcquireOptions::try_once().with_ttl(huge_ttl()))
        .await;
    match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Config, "{e}"),
        Ok(g) => {
            let g = g.unwrap();
            tokio::time::sleep(Duration::from_millis(800)).await;
            let other = b.try_acquire("huge-ttl").await.unwrap();
            panic!(
                "acquired with a huge TTL; held {}, other client got it: {}",
                g.is_held(),
                other.is_some()
            );
        }
    }
    // Extending by such a lease is refused too, and the hold keeps its lease.
    let g = a.try_acquire("huge-ttl").await.unwrap().unwrap();
    let until = g.valid_until().unwrap();
    let e = g.extend(huge_ttl()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(g.valid_until(), Some(until));
    assert!(g.is_held());
    g.release().await.unwrap();
}

/// The same on Redlock: a refused lease is a `Config` error, not a quorum failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_lease_on_redlock_is_a_config_error() {
    let h = RedlockHarness::new();
    let a = Redlock::connect(h.config()).await.unwrap();
    let e = a
        .acquire_opts("huge-ttl", &AcquireOptions::try_once().with_ttl(huge_ttl()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let g = a.try_acquire("huge-ttl").await.unwrap().unwrap();
    let e = g.extend(huge_ttl()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    g.release().await.unwrap();
}
