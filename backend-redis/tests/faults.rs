//! Fault tests against a throwaway single `redis-server`: killed connections, a frozen
//! server, a restart, and the speed and fairness of notified handoff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, lock_key, SingleHarness, SHORT_TTL};
use distlock_core::{AcquireOptions, ErrorKind, LockExt, RetryPolicy};
use distlock_redis::RedisLock;

fn short() -> AcquireOptions {
    AcquireOptions::try_once().with_ttl(SHORT_TTL)
}

async fn client(h: &SingleHarness) -> RedisLock {
    RedisLock::connect_with(config(&h.server().url()))
        .await
        .unwrap()
}

async fn get(h: &SingleHarness, key: &str) -> Option<String> {
    let mut side = h.side_connection().await;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut side)
        .await
        .unwrap()
}

/// Every normal connection but the killer's is cut. The holder's client reconnects and its
/// renewals keep the hold; at no moment do two clients hold the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_of_the_holders_connection_never_doubles_the_hold() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, client(&h).await);
    let g = a
        .acquire_opts("killed-conn", &short())
        .await
        .unwrap()
        .unwrap();
    let key = lock_key(&g);
    let mut side = h.side_connection().await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut side)
        .await
        .unwrap();
    assert!(killed >= 1, "no connection was killed");

    // For three TTLs: whenever b holds, a must already have reported its loss.
    let until = Instant::now() + SHORT_TTL * 3;
    let mut b_held = false;
    while Instant::now() < until {
        let was_held = g.is_held();
        match b.try_acquire("killed-conn").await {
            Ok(Some(other)) => {
                assert!(!was_held, "b acquired while a's guard still said held");
                b_held = true;
                other.release().await.unwrap();
                break;
            }
            Ok(None) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::Connection, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // With a reconnecting connection the hold is expected to survive.
    assert!(!b_held, "the hold did not survive a killed connection");
    assert!(g.is_held(), "the hold was reported lost");
    assert_eq!(get(&h, &key).await.as_deref(), Some(g.owner_token()));
    g.release().await.unwrap();
    assert!(b.try_acquire("killed-conn").await.unwrap().is_some());
}

/// A server frozen longer than the TTL: the holder's lost signal fires (at its local
/// deadline) before anyone else can take the lock, which is only after the server thaws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_signals_lost_before_another_client_acquires() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, client(&h).await);
    let g = a.acquire_opts("frozen", &short()).await.unwrap().unwrap();
    let acquired = Instant::now();
    let mut signal = g.lost_signal();
    let lost_at = tokio::spawn(async move {
        let e = signal.wait().await;
        (Instant::now(), e)
    });

    h.server().pause();
    let paused = Instant::now();
    let contender = tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_millis(500), b.try_acquire("frozen")).await {
                Ok(Ok(Some(g))) => return (Instant::now(), g),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(1000)).await;
    h.server().resume();

    let (lost, error) = tokio::time::timeout(Duration::from_secs(5), lost_at)
        .await
        .expect("lost signal")
        .unwrap();
    let error = error.expect("a loss, not a release");
    assert_eq!(error.kind(), ErrorKind::Lost);
    assert!(
        lost.duration_since(acquired) <= SHORT_TTL + Duration::from_millis(300),
        "lost signalled {:?} after the acquire, past the TTL",
        lost.duration_since(acquired)
    );
    let (taken, other) = tokio::time::timeout(Duration::from_secs(10), contender)
        .await
        .expect("the contender never acquired")
        .unwrap();
    assert!(
        taken > lost,
        "another client acquired {:?} before the holder's loss was signalled",
        lost.duration_since(taken)
    );
    assert!(taken > paused + SHORT_TTL);
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
    other.release().await.unwrap();
}

/// A restart loses the hold (no persistence): the guard reports it lost, and both clients
/// reconnect and lock again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loses_the_hold_visibly_and_clients_lock_again() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, client(&h).await);
    let g = a.acquire_opts("restart", &short()).await.unwrap().unwrap();
    h.server().restart().unwrap();
    let e = tokio::time::timeout(SHORT_TTL * 2, g.lost())
        .await
        .expect("the lost signal after a restart");
    assert_eq!(e.kind(), ErrorKind::Lost);
    let start = Instant::now();
    let other = loop {
        match b.acquire_timeout("restart", Duration::from_secs(2)).await {
            Ok(g) => break g,
            Err(e) if e.is_retryable() && start.elapsed() < Duration::from_secs(15) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("no lock after the restart: {e}"),
        }
    };
    assert!(other.fencing_token().unwrap() > g.fencing_token().unwrap());
    other.release().await.unwrap();
    let again = a
        .acquire_timeout("restart", Duration::from_secs(5))
        .await
        .unwrap();
    again.release().await.unwrap();
}

/// A waiter is woken by the release message: the handoff takes milliseconds, where a fixed
/// poll of the safety-net interval would average tens to hundreds of milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiter_acquires_within_milliseconds_of_a_release() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, Arc::new(client(&h).await));
    let mut handoffs = Vec::new();
    for _ in 0..9 {
        let g = a.try_acquire("handoff").await.unwrap().unwrap();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                let g = b.acquire("handoff").await.unwrap();
                (Instant::now(), g)
            })
        };
        // Let the waiter fail its attempts and park on the channel.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished());
        let released = Instant::now();
        g.release().await.unwrap();
        let (took, g) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        handoffs.push(took.duration_since(released));
        g.release().await.unwrap();
    }
    handoffs.sort();
    let median = handoffs[handoffs.len() / 2];
    eprintln!(
        "handoff after release: median {median:?}, min {:?}, max {:?} \
         (a fixed 500 ms poll would average ~250 ms)",
        handoffs[0],
        handoffs[handoffs.len() - 1]
    );
    assert!(
        median < Duration::from_millis(100),
        "median handoff {median:?}"
    );
}

/// Eight contenders, each with its own client, for a few seconds: nobody starves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_contenders_all_get_the_lock() {
    let h = SingleHarness::new();
    let stop = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = client(&h).await;
        tasks.push(tokio::spawn(async move {
            let mut count = 0u32;
            while Instant::now() < stop {
                match c.acquire_timeout("fair", Duration::from_secs(5)).await {
                    Ok(g) => {
                        count += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        g.release().await.unwrap();
                    }
                    Err(e) if e.kind() == ErrorKind::Timeout => {}
                    Err(e) => panic!("{e}"),
                }
            }
            count
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    eprintln!("acquisitions per client over 4 s: {counts:?} (min {min}, max {max})");
    assert!(*min >= 1, "a client starved: {counts:?}");
}

/// The fencing counter rolled back (as on a failover to a replica that missed increments):
/// the next token is still above every earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_survives_a_rolled_back_counter() {
    let h = SingleHarness::new();
    let a = client(&h).await;
    let g = a.try_acquire("rollback").await.unwrap().unwrap();
    let before = g.fencing_token().unwrap();
    let fence_key = lock_key(&g).replace(":lock", ":fence");
    g.release().await.unwrap();
    let mut side = h.side_connection().await;
    let _: () = redis::cmd("SET")
        .arg(&fence_key)
        .arg(1)
        .query_async(&mut side)
        .await
        .unwrap();
    let g = a.try_acquire("rollback").await.unwrap().unwrap();
    assert!(
        g.fencing_token().unwrap() > before,
        "{:?} after {before}",
        g.fencing_token()
    );
    g.release().await.unwrap();
}

/// The shared subscriber connection is killed while a waiter waits: it reconnects and
/// resubscribes, and handoffs are notified again (not left to the 100–250 ms re-check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_reconnects_after_its_connection_is_killed() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, Arc::new(client(&h).await));
    let mut side = h.side_connection().await;
    let mut handoffs = Vec::new();
    for round in 0..7 {
        let g = a.try_acquire("resubscribe").await.unwrap().unwrap();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                let g = b.acquire("resubscribe").await.unwrap();
                (Instant::now(), g)
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        if round == 0 {
            let killed: i64 = redis::cmd("CLIENT")
                .arg(&["KILL", "TYPE", "pubsub"])
                .query_async(&mut side)
                .await
                .unwrap();
            assert_eq!(killed, 1, "one shared subscriber connection per client");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(!waiter.is_finished());
        let released = Instant::now();
        g.release().await.unwrap();
        let (took, g) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        handoffs.push(took.duration_since(released));
        g.release().await.unwrap();
    }
    handoffs.sort();
    let median = handoffs[handoffs.len() / 2];
    eprintln!("handoffs after the subscriber was killed: {handoffs:?}");
    assert!(
        median < Duration::from_millis(100),
        "median handoff {median:?}"
    );
}

/// A wait-forever acquire whose server goes away retries (core's retry policy) and then
/// ends with a retryable `Connection` error, instead of failing at once or riding out the
/// outage silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_server_dies_gets_a_connection_error() {
    let h = SingleHarness::new();
    let (a, b) = (client(&h).await, client(&h).await);
    let g = a.acquire_opts("dies", &short()).await.unwrap().unwrap();
    let give_up = Duration::from_secs(3);
    let options = AcquireOptions::wait_forever()
        .with_retry(RetryPolicy::default().with_give_up_after(give_up));
    let waiter = tokio::spawn(async move { b.acquire_opts("dies", &options).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    h.server().kill();
    let killed = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the waiter kept waiting on a dead server")
        .unwrap()
        .unwrap_err();
    let took = killed.elapsed();
    eprintln!("waiter ended {took:?} after the kill: {e}");
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.is_retryable());
    // The run of failures starts at the first one after the kill; the last pause that
    // still fits in it is at most a second.
    assert!(
        took >= give_up - Duration::from_secs(1),
        "gave up after {took:?}, before retrying"
    );
    g.leak();
}

/// A server that forgot the scripts (`SCRIPT FLUSH`, as after a restart) answers `NOSCRIPT`:
/// the client loads the script and runs it again, for the acquire and for the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_forgotten_by_the_server_are_loaded_again() {
    let h = SingleHarness::new();
    let a = client(&h).await;
    let flush = || async {
        let mut side = h.side_connection().await;
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut side)
            .await
            .unwrap();
    };
    let g = a.acquire_opts("flushed", &short()).await.unwrap().unwrap();
    let key = lock_key(&g);
    flush().await;
    g.release().await.unwrap();
    assert_eq!(get(&h, &key).await, None, "the release did not run");
    flush().await;
    let g = a.acquire_opts("flushed", &short()).await.unwrap().unwrap();
    assert_eq!(get(&h, &key).await.as_deref(), Some(g.owner_token()));
    g.release().await.unwrap();
}
