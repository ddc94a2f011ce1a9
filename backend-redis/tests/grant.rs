//! Direct handoff on a single server: a release grants the lock to the queue's head. A grant
//! to a waiter that was cancelled before it saw it passes on to the next waiter; a grant
//! whose message was lost is picked up by the waiter's re-check; a handoff runs no acquire
//! script.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{config, lock_key, SingleHarness};
use distlock_core::{AcquireOptions, LockExt};
use distlock_redis::RedisLock;
use redis::aio::MultiplexedConnection;

/// Far longer than any wait below: a grant that nobody frees would block the lock this long.
const TTL: Duration = Duration::from_secs(60);

async fn client(h: &SingleHarness) -> RedisLock {
    RedisLock::connect_with(config(&h.server().url()))
        .await
        .unwrap()
}

async fn queue_len(side: &mut MultiplexedConnection, name: &str) -> usize {
    redis::cmd("LLEN")
        .arg(format!("test:{{{name}}}:queue"))
        .query_async(side)
        .await
        .unwrap()
}

/// Polls the server until the queue of `name` is `len` long (no client-side event says
/// "queued").
async fn until_queued(side: &mut MultiplexedConnection, name: &str, len: usize) {
    let limit = Instant::now() + Duration::from_secs(10);
    while queue_len(side, name).await != len {
        assert!(
            Instant::now() < limit,
            "the queue of {name} never reached {len}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn get(side: &mut MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(side).await.unwrap()
}

/// A waiter is granted the lock but its acquire future is dropped before it is polled
/// again (it never saw the grant): the clean-up of its wait frees the grant and hands the
/// lock to the next waiter at once, not after the granted TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_to_a_cancelled_waiter_passes_to_the_next_waiter() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, a, b) = (client(&h).await, client(&h).await, client(&h).await);
    let options = AcquireOptions::wait_forever().with_ttl(TTL);
    let g = holder.try_acquire("cancelled").await.unwrap().unwrap();
    let key = lock_key(&g);

    let mut first = Box::pin(a.acquire_opts("cancelled", &options));
    tokio::select! {
        r = &mut first => panic!("the first waiter got {:?} while the lock was held", r.map(|g| g.is_some())),
        () = until_queued(&mut side, "cancelled", 1) => {}
    }
    let second = {
        let options = AcquireOptions::wait_up_to(Duration::from_secs(10)).with_ttl(TTL);
        tokio::spawn(async move {
            let g = b.acquire_opts("cancelled", &options).await.unwrap();
            (Instant::now(), g)
        })
    };
    until_queued(&mut side, "cancelled", 2).await;

    g.release().await.unwrap();
    let granted = get(&mut side, &key).await;
    assert!(
        granted.is_some(),
        "the release did not grant the lock to the first waiter"
    );
    assert_eq!(
        queue_len(&mut side, "cancelled").await,
        1,
        "the grant pops the head"
    );
    // The first waiter's future is dropped without seeing its grant.
    let dropped = Instant::now();
    drop(first);

    let (took, g2) = tokio::time::timeout(Duration::from_secs(15), second)
        .await
        .expect("the second waiter")
        .unwrap();
    let g2 = g2.expect("the second waiter never got the lock: the cancelled grant stayed");
    assert_ne!(granted.as_deref(), Some(g2.owner_token()));
    eprintln!(
        "next waiter got the lock {:?} after the drop",
        took - dropped
    );
    g2.release().await.unwrap();
    assert_eq!(get(&mut side, &key).await, None);
}

/// A grant whose message never reaches the waiter (made here by hand, exactly as the release
/// script makes it, but without publishing): the waiter's safety-net re-check finds the lock
/// held by its wait's grant token and returns it, with the grant's fencing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_grant_message_is_picked_up_by_the_recheck() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, a) = (client(&h).await, client(&h).await);
    let g = holder.try_acquire("lost-grant").await.unwrap().unwrap();
    let key = lock_key(&g);
    let waiter = tokio::spawn(async move {
        a.acquire_opts(
            "lost-grant",
            &AcquireOptions::wait_up_to(Duration::from_secs(10)).with_ttl(TTL),
        )
        .await
        .unwrap()
    });
    until_queued(&mut side, "lost-grant", 1).await;
    let details: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("test:{lost-grant}:queue-grant")
        .query_async(&mut side)
        .await
        .unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    let (id, value) = details.into_iter().next().unwrap();
    // `"=<seq> <ttl> <token> <wake channel>"`
    let token = value.split(' ').nth(2).unwrap().to_string();
    let fence = g.fencing_token().unwrap() + 1;
    // The holder's hold is overwritten by the grant: it must not release it.
    g.leak();
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(&key)
        .arg(&token)
        .arg("PX")
        .arg(TTL.as_millis() as u64)
        .ignore()
        .cmd("SET")
        .arg("test:{lost-grant}:fence")
        .arg(fence)
        .ignore()
        .cmd("LREM")
        .arg("test:{lost-grant}:queue")
        .arg(0)
        .arg(&id)
        .ignore()
        .cmd("ZREM")
        .arg("test:{lost-grant}:queue-expiry")
        .arg(&id)
        .ignore()
        .cmd("HDEL")
        .arg("test:{lost-grant}:queue-grant")
        .arg(&id)
        .ignore()
        .query_async(&mut side)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the waiter")
        .unwrap()
        .expect("the waiter never picked up its grant");
    assert_eq!(got.owner_token(), token);
    assert_eq!(got.fencing_token(), Some(fence));
    assert!(got.is_held());
    got.release().await.unwrap();
    assert_eq!(get(&mut side, &key).await, None);
}
