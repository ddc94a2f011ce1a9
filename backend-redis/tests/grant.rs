//! Direct handoff on a single server: a release grants the lock to the queue's head. A grant
//! to a waiter that was cancelled before it saw it passes on to the next waiter; a grant
//! whose message was lost is picked up by the waiter's re-check; a handoff runs no acquire
//! script.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{client, lock_key, queue_len, until_queued, SingleHarness};
use distlock_core::{AcquireOptions, LockExt};
use distlock_redis::{RedisConfig, RedisLock};
use redis::aio::MultiplexedConnection;

/// Far longer than any wait below: a grant that nobody frees would block the lock this long.
const TTL: Duration = Duration::from_secs(60);

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

/// Polls until the only waiter of `name` made an attempt after its first (the one that
/// follows the confirmation of its subscription), so a grant now reaches it by message and
/// it returns without an attempt of its own.
async fn until_listening(side: &mut MultiplexedConnection, name: &str) {
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        let details: Vec<String> = redis::cmd("HVALS")
            .arg(format!("test:{{{name}}}:queue-grant"))
            .query_async(side)
            .await
            .unwrap();
        let seq = details
            .first()
            .and_then(|d| d.trim_start_matches('=').split(' ').next())
            .and_then(|s| s.parse::<u64>().ok());
        if seq.is_some_and(|s| s >= 2) {
            return;
        }
        assert!(
            Instant::now() < limit,
            "the waiter of {name} never attempted again"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn pttl(side: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(side).await.unwrap()
}

/// A waiter that is granted the lock but never runs again (a frozen or killed process; here
/// a future that is neither polled nor dropped) blocks the lock only for the short granted
/// lease (3 s), not for its 60 s TTL: the next waiter gets it soon after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_to_a_frozen_waiter_blocks_the_lock_only_briefly() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, a, b) = (client(&h).await, client(&h).await, client(&h).await);
    let options = AcquireOptions::wait_forever().with_ttl(TTL);
    let g = holder.try_acquire("frozen").await.unwrap().unwrap();
    let key = lock_key(&g);

    let mut frozen = Box::pin(a.acquire_opts("frozen", &options));
    tokio::select! {
        r = &mut frozen => panic!("the waiter got {:?} while the lock was held", r.map(|g| g.is_some())),
        () = until_queued(&mut side, "frozen", 1) => {}
    }
    g.release().await.unwrap();
    let left = pttl(&mut side, &key).await;
    assert!(
        (1..=3_000).contains(&left),
        "a grant holds the lock for at most 3 s until its waiter renews it; PTTL {left} ms"
    );

    let released = Instant::now();
    let next = b
        .acquire_opts(
            "frozen",
            &AcquireOptions::wait_up_to(Duration::from_secs(20)).with_ttl(TTL),
        )
        .await
        .unwrap();
    let took = released.elapsed();
    assert!(next.is_some(), "the next waiter never got the lock");
    assert!(
        took < Duration::from_secs(10),
        "the frozen waiter's grant blocked the lock for {took:?}"
    );
    drop(frozen);
}

/// A granted hold starts on the short granted lease and is renewed to its whole TTL early
/// (a tenth of the way in: 0.3 s), without a round trip before the acquire returns. (A TTL
/// of 10 s: the client's scheduler would otherwise renew the 3 s grant only TTL/10 = 1 s
/// before it ran out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_hold_is_renewed_to_its_ttl_early() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, a) = (client(&h).await, client(&h).await);
    let g = holder.try_acquire("renewed").await.unwrap().unwrap();
    let key = lock_key(&g);
    let waiter = tokio::spawn(async move {
        let options =
            AcquireOptions::wait_up_to(Duration::from_secs(10)).with_ttl(Duration::from_secs(10));
        let g = a.acquire_opts("renewed", &options).await.unwrap();
        (g, a)
    });
    until_queued(&mut side, "renewed", 1).await;
    until_listening(&mut side, "renewed").await;
    g.release().await.unwrap();
    let (granted, _a) = waiter.await.unwrap();
    let granted = granted.expect("the waiter got the lock");
    let limit = Instant::now() + Duration::from_secs(1);
    loop {
        let left = pttl(&mut side, &key).await;
        if left > 3_000 {
            break;
        }
        assert!(
            Instant::now() < limit,
            "the granted lease was never renewed to the TTL (PTTL {left} ms)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(granted.is_held());
    granted.release().await.unwrap();
}

/// Makes, by hand and without publishing, the grant the release script makes to the only
/// waiter queued on `name` (the holder's hold is overwritten: leak it), and pauses every
/// write (scripts included) in the same transaction, so the waiter can neither see nor pick
/// up its grant. Returns the grant token.
async fn grant_unseen_and_pause(side: &mut MultiplexedConnection, name: &str, key: &str) -> String {
    let details: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("test:{{{name}}}:queue-grant"))
        .query_async(side)
        .await
        .unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    let (id, value) = details.into_iter().next().unwrap();
    let token = value.split(' ').nth(2).unwrap().to_string();
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(key)
        .arg(&token)
        .arg("PX")
        .arg(TTL.as_millis() as u64)
        .ignore()
        .cmd("LREM")
        .arg(format!("test:{{{name}}}:queue"))
        .arg(0)
        .arg(&id)
        .ignore()
        .cmd("ZREM")
        .arg(format!("test:{{{name}}}:queue-expiry"))
        .arg(&id)
        .ignore()
        .cmd("HDEL")
        .arg(format!("test:{{{name}}}:queue-grant"))
        .arg(&id)
        .ignore()
        .cmd("CLIENT")
        .arg("PAUSE")
        .arg(60_000)
        .arg("WRITE")
        .ignore()
        .query_async(side)
        .await
        .unwrap();
    token
}

/// A waiter whose limit runs out while the server does not answer: its leave (which would
/// undo the grant it never saw) fails too. That must not leave the grant behind for its
/// whole TTL: the leave is retried in the background, as for a dropped wait, and the next
/// waiter gets the lock once the server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_leave_of_a_timed_out_waiter_is_retried() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let holder = client(&h).await;
    // Replies slower than this fail; the wait limit below runs out while the first attempt
    // sent into the pause still waits for its reply, so the waiter leaves in the foreground.
    let slow = RedisConfig::builder([h.server().url()])
        .key_prefix("test:")
        .response_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let a = RedisLock::connect_with(slow).await.unwrap();
    let g = holder.try_acquire("leave-fails").await.unwrap().unwrap();
    let key = lock_key(&g);
    let waiter = tokio::spawn(async move {
        a.acquire_opts(
            "leave-fails",
            &AcquireOptions::wait_up_to(Duration::from_millis(1500)).with_ttl(TTL),
        )
        .await
        .map(|g| g.is_some())
    });
    until_queued(&mut side, "leave-fails", 1).await;
    let token = grant_unseen_and_pause(&mut side, "leave-fails", &key).await;
    g.leak();
    let gave_up = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the waiter")
        .unwrap();
    assert!(
        !matches!(gave_up, Ok(true)),
        "the paused waiter got the lock"
    );
    assert_eq!(get(&mut side, &key).await.as_deref(), Some(token.as_str()));
    // The waiter's commands stuck in the pause (its leave among them) are dropped with its
    // connection; then the server answers again.
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut side)
        .await
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut side)
        .await
        .unwrap();
    let next = client(&h).await;
    let g = next
        .acquire_opts(
            "leave-fails",
            &AcquireOptions::wait_up_to(Duration::from_secs(10)).with_ttl(TTL),
        )
        .await
        .unwrap()
        .expect("the grant to the waiter that gave up stayed behind: the lock is stuck");
    g.release().await.unwrap();
}

/// The lease a grant sets is the one the waiter wrote into its queue entry (and counts on),
/// not a length the releasing client assumes: clients of different versions agree on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_sets_the_lease_the_waiters_entry_names() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, a) = (client(&h).await, client(&h).await);
    let g = holder.try_acquire("named").await.unwrap().unwrap();
    let key = lock_key(&g);
    // Never polled again once queued: nothing renews the grant.
    let options = AcquireOptions::wait_forever().with_ttl(TTL);
    let mut frozen = Box::pin(a.acquire_opts("named", &options));
    tokio::select! {
        r = &mut frozen => panic!("the waiter got {:?} while the lock was held", r.map(|g| g.is_some())),
        () = until_queued(&mut side, "named", 1) => {}
    }
    let grants = "test:{named}:queue-grant".to_string();
    let details: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&grants)
        .query_async(&mut side)
        .await
        .unwrap();
    let (id, value) = details.into_iter().next().unwrap();
    let mut fields: Vec<&str> = value.split(' ').collect();
    assert_eq!(
        fields[1], "3000",
        "the entry names the 3 s grant lease: {value}"
    );
    fields[1] = "1500";
    let _: () = redis::cmd("HSET")
        .arg(&grants)
        .arg(&id)
        .arg(fields.join(" "))
        .query_async(&mut side)
        .await
        .unwrap();
    g.release().await.unwrap();
    let left = pttl(&mut side, &key).await;
    assert!(
        (1..=1_500).contains(&left),
        "the grant set a lease other than the entry's 1500 ms: PTTL {left} ms"
    );
    drop(frozen);
}
