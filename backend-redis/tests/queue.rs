//! The waiter queue of a single server: FIFO order, a vanished head, cancelled waiters
//! leaving, and a release waking one waiter instead of all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{calls, client, queue_key, queue_len, until_queued, SingleHarness};
use distlock_core::{ErrorKind, LockExt};

/// Waiters that queued one after the other (each seen in the server's queue before the next
/// starts) get the lock in that order, each from its own client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_get_the_lock_in_queue_order() {
    const WAITERS: usize = 6;
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let holder = client(&h).await;
    let g = holder.try_acquire("fifo").await.unwrap().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..WAITERS {
        let c = client(&h).await;
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let g = c
                .acquire_timeout("fifo", Duration::from_secs(20))
                .await
                .unwrap();
            order.lock().unwrap().push(i);
            g.release().await.unwrap();
        }));
        until_queued(&mut side, "fifo", i + 1).await;
    }
    g.release().await.unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
    assert_eq!(queue_len(&mut side, "fifo").await, 0);
}

/// A queue entry whose waiter vanished (left behind without its client, as a killed process
/// leaves it) blocks the lock only until the entry expires; then the next waiter gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_head_blocks_only_until_its_entry_expires() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, waiter) = (client(&h).await, client(&h).await);
    let g = holder.try_acquire("dead").await.unwrap().unwrap();
    // A waiter id at the head, with an entry expiring in 800 ms of server time.
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut side).await.unwrap();
    let expiry = secs * 1000 + micros / 1000 + 800;
    let _: () = redis::pipe()
        .rpush(queue_key("dead"), "ghost")
        .zadd("test:{dead}:queue-expiry", "ghost", expiry)
        .query_async(&mut side)
        .await
        .unwrap();
    let started = Instant::now();
    let wait = tokio::spawn(async move {
        let g = waiter
            .acquire_timeout("dead", Duration::from_secs(10))
            .await;
        (g, Instant::now())
    });
    until_queued(&mut side, "dead", 2).await;
    // Released while the ghost still heads the queue: its wake-up goes nowhere.
    g.release().await.unwrap();
    // The lock is free, but a try does not jump the queue.
    assert!(holder.try_acquire("dead").await.unwrap().is_none());
    let (got, at) = tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .unwrap()
        .unwrap();
    let g = got.expect("the waiter behind a vanished head never got the lock");
    let took = at.duration_since(started);
    assert!(
        took < Duration::from_millis(800 + 1_000),
        "the lock stayed blocked {took:?}, well past the ghost's entry expiry"
    );
    g.release().await.unwrap();
    assert_eq!(queue_len(&mut side, "dead").await, 0);
}

/// A waiter that times out leaves the queue before its acquire returns; one whose future is
/// dropped leaves it in the background (long before its entry would expire), and the waiter
/// behind it is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_timed_out_waiters_leave_the_queue() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, waiter) = (client(&h).await, Arc::new(client(&h).await));
    let g = holder.try_acquire("leave").await.unwrap().unwrap();

    let r = waiter
        .acquire_timeout("leave", Duration::from_millis(300))
        .await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(
        queue_len(&mut side, "leave").await,
        0,
        "a timed-out waiter stayed queued"
    );

    let dropped = {
        let waiter = waiter.clone();
        tokio::spawn(async move { waiter.acquire("leave").await })
    };
    until_queued(&mut side, "leave", 1).await;
    dropped.abort();
    let _ = dropped.await;
    let limit = Instant::now() + Duration::from_millis(400);
    while queue_len(&mut side, "leave").await != 0 {
        assert!(
            Instant::now() < limit,
            "a dropped waiter stayed queued (its entry lives 1 s)"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    g.release().await.unwrap();
    let g = holder.try_acquire("leave").await.unwrap();
    assert!(
        g.is_some(),
        "the queue left by cancelled waiters blocked a try"
    );
}

/// Eight parked waiters and a chain of releases: every release grants the lock to the next
/// waiter, so the server runs one script (the release) per acquisition and no acquire script
/// (a wake-up without a grant runs an acquire per acquisition as well; a herd one per waiter
/// left on every release: 8 + 7 + … + 1 failed attempts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_wakes_one_waiter() {
    const WAITERS: usize = 8;
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let holder = client(&h).await;
    let g = holder.try_acquire("one").await.unwrap().unwrap();
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for _ in 0..WAITERS {
        let c = client(&h).await;
        let done_tx = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            let g = c.acquire("one").await.unwrap();
            g.release().await.unwrap();
            done_tx.send(()).unwrap();
        }));
    }
    until_queued(&mut side, "one", WAITERS).await;
    // Each waiter re-attempts once its subscription is confirmed: let those land.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = calls(&mut side, "evalsha").await;
    g.release().await.unwrap();
    for _ in 0..WAITERS {
        tokio::time::timeout(Duration::from_secs(10), done.recv())
            .await
            .unwrap()
            .unwrap();
    }
    let scripts = calls(&mut side, "evalsha").await - before;
    for t in tasks {
        t.await.unwrap();
    }
    let herd = 1 + 2 * WAITERS as u64 + (WAITERS * (WAITERS - 1) / 2) as u64;
    eprintln!("{scripts} scripts for {WAITERS} handoffs (a herd would run about {herd})");
    // The slack covers safety-net re-checks that happen to fall inside the chain.
    assert!(
        scripts <= 1 + WAITERS as u64 + 4,
        "{scripts} scripts for {WAITERS} handoffs: releases did not grant the lock directly"
    );
}
