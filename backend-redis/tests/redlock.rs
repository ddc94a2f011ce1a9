//! Redlock with servers down: a minority down still locks and excludes; a majority down
//! fails clearly and leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::RedlockHarness;
use distlock_core::{AcquireOptions, DistributedLock, ErrorKind, LockExt};
use distlock_redis::Redlock;

async fn keys_left(h: &RedlockHarness, alive: &[usize]) -> Vec<String> {
    let mut left = Vec::new();
    let sides = h.side_connections_of(alive).await;
    for mut side in sides {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("test:*:lock")
            .query_async(&mut side)
            .await
            .unwrap();
        left.extend(keys);
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_down_still_locks_and_excludes() {
    let h = RedlockHarness::new();
    h.servers()[0].kill();
    // Connecting works with a majority up.
    let a = Redlock::connect(h.config()).await.unwrap();
    let b = Redlock::connect(h.config()).await.unwrap();
    assert!(!a.capabilities().fencing);
    let g = a.try_acquire("minority-down").await.unwrap().expect("free");
    assert!(g.fencing_token().is_none());
    assert!(b.try_acquire("minority-down").await.unwrap().is_none());
    let e = b
        .acquire_timeout("minority-down", Duration::from_millis(400))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // Renewal keeps working on the majority.
    g.extend(Duration::from_secs(5)).await.unwrap();
    g.release().await.unwrap();
    let g = b
        .try_acquire("minority-down")
        .await
        .unwrap()
        .expect("freed");
    g.release().await.unwrap();
    assert!(keys_left(&h, &[1, 2]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_down_fails_clearly_and_leaves_nothing() {
    let h = RedlockHarness::new();
    let a = Redlock::connect(h.config()).await.unwrap();
    h.servers()[0].kill();
    h.servers()[1].kill();
    for wait in [None, Some(Duration::from_millis(500))] {
        let t = std::time::Instant::now();
        let r = match wait {
            None => a.try_acquire("majority-down").await.map(|_| ()),
            Some(limit) => a.acquire_timeout("majority-down", limit).await.map(|_| ()),
        };
        let e = r.unwrap_err();
        eprintln!("{wait:?}: {e} after {:?}", t.elapsed());
        assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
        assert!(e.to_string().contains("needs 2 of 3"), "{e}");
    }
    // Give the background clean-up (if any) a moment, then nothing may remain.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        keys_left(&h, &[2]).await.is_empty(),
        "a partial hold was left behind"
    );
    // And connecting now fails with the same clear error.
    let e = Redlock::connect(h.config()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
}

/// Eight contenders on a Redlock: split votes are undone silently and retried with jitter,
/// so the lock keeps moving and nobody starves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_contenders_make_progress() {
    let h = RedlockHarness::new();
    let stop = std::time::Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = Redlock::connect(h.config()).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut count = 0u32;
            while std::time::Instant::now() < stop {
                match c.acquire_timeout("contended", Duration::from_secs(5)).await {
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
    eprintln!("Redlock acquisitions per client over 3 s: {counts:?}");
    assert!(
        counts.iter().all(|c| *c >= 1),
        "a client starved: {counts:?}"
    );
    assert!(keys_left(&h, &[0, 1, 2]).await.is_empty());
}

/// A frozen minority server costs a contended attempt one per-server timeout (TTL/5 here),
/// not that plus a full response timeout for undoing the split vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_minority_server_does_not_slow_contended_tries_much() {
    let h = RedlockHarness::new();
    let (a, b) = (
        Redlock::connect(h.config()).await.unwrap(),
        Redlock::connect(h.config()).await.unwrap(),
    );
    let ttl = Duration::from_millis(1500);
    let opts = AcquireOptions::try_once().with_ttl(ttl);
    let g = b
        .acquire_opts("frozen-minority", &opts)
        .await
        .unwrap()
        .unwrap();
    h.servers()[0].pause();
    let mut took = Vec::new();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        assert!(a
            .acquire_opts("frozen-minority", &opts)
            .await
            .unwrap()
            .is_none());
        took.push(t.elapsed());
    }
    h.servers()[0].resume();
    eprintln!("contended tries with a frozen server took {took:?}");
    // Per-server timeout: 300 ms (TTL/5); the response timeout is 2 s.
    assert!(
        took.iter().all(|t| *t < Duration::from_millis(1200)),
        "{took:?}"
    );
    g.release().await.unwrap();
}

/// A guard that kept its key on a minority only (two servers lost it, as in a restart without
/// persistence) while another client took the majority is stale: its release says
/// `NotHeld` (not success), frees only its own leftover vote, and leaves the other hold alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_with_only_a_minority_left_is_not_held() {
    let h = RedlockHarness::new();
    let (a, b) = (
        Redlock::connect(h.config()).await.unwrap(),
        Redlock::connect(h.config()).await.unwrap(),
    );
    let g = a.try_acquire("minority-left").await.unwrap().unwrap();
    let key = common::lock_key(&g);
    for mut side in h.side_connections_of(&[0, 1]).await {
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut side)
            .await
            .unwrap();
    }
    let other = b
        .try_acquire("minority-left")
        .await
        .unwrap()
        .expect("a majority was free");
    let e = g.release().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotHeld, "{e}");
    assert!(b.try_acquire("minority-left").await.unwrap().is_none());
    other.release().await.unwrap();
    assert!(keys_left(&h, &[0, 1, 2]).await.is_empty());
}

/// A server that does not answer an attempt in time may still apply its `SET` later: the
/// undo of the failed vote must still reach it after it thaws — even though the release
/// script is not loaded there yet, so the undo needs a `NOSCRIPT` round trip that the
/// bounded foreground undo cannot wait for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_vote_is_undone_on_a_server_whose_reply_was_late() {
    let h = RedlockHarness::new();
    let (a, b) = (
        Redlock::connect(h.config()).await.unwrap(),
        Redlock::connect(h.config()).await.unwrap(),
    );
    let opts = AcquireOptions::try_once().with_ttl(Duration::from_secs(5));
    let g = b.acquire_opts("late-reply", &opts).await.unwrap().unwrap();
    let key = common::lock_key(&g);
    // Server 0 is free for the name, servers 1 and 2 are b's.
    for mut side in h.side_connections_of(&[0]).await {
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut side)
            .await
            .unwrap();
    }
    // Warm up a's connections (and the acquire script; nobody has released yet, so the
    // release script is unknown to the servers), then freeze server 0 and try.
    a.try_acquire("warm-up").await.unwrap().unwrap().leak();
    h.servers()[0].pause();
    let tried = a.acquire_opts("late-reply", &opts).await;
    h.servers()[0].resume();
    assert!(tried.unwrap().is_none(), "b holds the majority");
    let mut side = h.side_connections_of(&[0]).await.remove(0);
    let start = std::time::Instant::now();
    loop {
        let left: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut side)
            .await
            .unwrap();
        if left.is_none() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a's late vote was left on server 0"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    g.release().await.unwrap();
}
