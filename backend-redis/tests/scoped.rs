//! `with_lock` on a real leased backend: released at the end of the scope, nested scopes of
//! one task share the hold, and a hold lost in the store cancels the body with `Lost`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, SingleHarness, SHORT_TTL};
use distlock_core::{AcquireOptions, ErrorKind, LockError, LockExt};
use distlock_redis::RedisLock;
use tokio::sync::oneshot;

async fn client(h: &SingleHarness) -> RedisLock {
    RedisLock::connect_with(config(&h.server().url()))
        .await
        .unwrap()
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_release_and_nest_on_redis() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, client(&h).await);
    let opts = AcquireOptions::try_once().with_ttl(SHORT_TTL);
    let (ra, rb, ropts) = (&a, &b, &opts);
    let token = a
        .with_lock("scoped", &opts, |outer| async move {
            let inner = ra
                .with_lock("scoped", ropts, |inner| async move {
                    Ok::<_, LockError>((inner.depth(), inner.fencing_token()))
                })
                .await?;
            assert_eq!(inner, (2, outer.fencing_token()));
            let other: Result<(), LockError> =
                rb.with_lock("scoped", ropts, |_| async { Ok(()) }).await;
            assert_eq!(other.unwrap_err().kind(), ErrorKind::Timeout);
            Ok::<_, LockError>(outer.fencing_token())
        })
        .await
        .unwrap();
    assert!(token.is_some());
    let again = b.try_acquire("scoped").await.unwrap();
    assert!(again.is_some(), "the scope did not release on Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_deleted_in_redis_cancels_the_body() {
    let h = SingleHarness::new();
    let a = client(&h).await;
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let (entered_tx, entered_rx) = oneshot::channel::<String>();
    let mut side = h.side_connection().await;
    let deleter = tokio::spawn(async move {
        let escaped = entered_rx.await.unwrap();
        let deleted: i64 = redis::cmd("DEL")
            .arg(format!("test:{{{escaped}}}:lock"))
            .query_async(&mut side)
            .await
            .unwrap();
        assert_eq!(deleted, 1, "the lock key was not where the test expects it");
        Instant::now()
    });
    let opts = AcquireOptions::wait_forever().with_ttl(SHORT_TTL);
    let result = tokio::time::timeout(
        Duration::from_secs(15),
        a.with_lock("scoped-loss", &opts, move |guard| async move {
            let _flag = flag;
            entered_tx.send(guard.name().escaped()).unwrap();
            std::future::pending::<Result<(), LockError>>().await
        }),
    )
    .await
    .expect("the body kept running after its hold was deleted");
    let deleted_at = deleter.await.unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Lost);
    assert!(dropped.load(Ordering::SeqCst), "the body was not dropped");
    // The next renewal (every TTL/3) finds the key gone; allow for a loaded machine.
    let noticed = deleted_at.elapsed();
    assert!(noticed < SHORT_TTL * 3, "loss noticed after {noticed:?}");
}
