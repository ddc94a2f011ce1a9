//! Session semantics: short disconnections keep holds, long ones lose them (and never
//! re-acquire), waits ride out a disconnection, and a create whose reply was lost is found
//! again by its owner token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::ZkHarness;
use distlock_core::{ErrorKind, LockExt, LockName};
use distlock_zookeeper::ZkLock;

fn unique(label: &str) -> String {
    format!(
        "sessions/{label}/{}",
        &distlock_core::backend::new_owner_token()[..12]
    )
}

async fn children(lock: &ZkLock, name: &str) -> Vec<String> {
    let client = lock.zk_client().await.unwrap();
    let parent = lock.lock_path(&LockName::new(name).unwrap());
    client.list_children(&parent).await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disconnection_shorter_than_the_grace_keeps_the_hold() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let b = harness.zk_lock().await.unwrap();
    let name = unique("short");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let session = a.zk_client().await.unwrap().session_id();

    proxy.cut();
    // Short enough that the client crate's reconnection back-off (0.1 s, 0.2 s, 0.4 s, …
    // between attempts) still reconnects well within the grace (2/5 of the timeout).
    tokio::time::sleep(harness.session_timeout() / 10).await;
    proxy.restore();
    // Well past the grace period counted from the cut.
    tokio::time::sleep(harness.session_timeout() * 3 / 4).await;
    assert!(g.is_held(), "a short disconnection lost the hold");
    assert!(b.try_acquire(&name).await.unwrap().is_none());
    assert_eq!(a.zk_client().await.unwrap().session_id(), session);
    g.release().await.unwrap();
    let g = b.try_acquire(&name).await.unwrap().expect("released");
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_past_the_grace_loses_the_hold_and_never_takes_it_back() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let b = harness.zk_lock().await.unwrap();
    let name = unique("long");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let old_session = a.zk_client().await.unwrap().session_id();
    let timeout = harness.session_timeout();

    let cut = Instant::now();
    proxy.cut();
    let lost = tokio::time::timeout(timeout, g.lost())
        .await
        .expect("the holder is told within the session timeout");
    let told = cut.elapsed();
    assert_eq!(lost.kind(), ErrorKind::Lost);
    assert!(
        told >= timeout * 2 / 5 - Duration::from_millis(100),
        "lost after only {told:?}"
    );
    // The server frees the lock only once the session expired: after the holder was told.
    let next = b
        .acquire_timeout(&name, timeout * 2)
        .await
        .expect("another client takes the lock after the session expires");
    let freed = cut.elapsed();
    eprintln!("holder told after {told:?}, lock taken over after {freed:?}");
    assert!(
        freed > told,
        "the lock was taken over before the holder was told"
    );

    proxy.restore();
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
    // Later acquires run on a new session, and the lost hold was not taken back.
    assert!(a.try_acquire(&name).await.unwrap().is_none());
    assert_ne!(a.zk_client().await.unwrap().session_id(), old_session);
    next.release().await.unwrap();
    let again = a.try_acquire(&name).await.unwrap().expect("free");
    again.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_rides_out_a_short_disconnection() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let (b, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let name = unique("waiter");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let waiter = {
        let name = name.clone();
        tokio::spawn(async move { b.acquire_timeout(&name, Duration::from_secs(20)).await })
    };
    let start = Instant::now();
    while children(&a, &name).await.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the waiter never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut();
    // Released while the waiter cannot hear it; the re-armed watch tells it on reconnect.
    g.release().await.unwrap();
    tokio::time::sleep(harness.session_timeout() / 5).await;
    proxy.restore();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter finished")
        .unwrap()
        .expect("the waiter got the lock");
    assert!(got.is_held());
    got.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_whose_reply_was_lost_is_found_again_by_its_token() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let name = unique("lost-reply");
    // The parent exists, so the create is the first request whose reply goes missing.
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let first = children(&a, &name).await;
    let h = harness.zk_lock().await.unwrap();
    // Keep the parent container alive while `g` is released.
    let keeper = {
        let name = name.clone();
        tokio::spawn(async move { h.acquire_timeout(&name, Duration::from_secs(5)).await })
    };
    while children(&a, &name).await.len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    g.release().await.unwrap();
    let kept = tokio::time::timeout(Duration::from_secs(5), keeper)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    proxy.mute_replies();
    let started = Instant::now();
    let waiter = {
        let (a, name) = (a.clone(), name.clone());
        tokio::spawn(async move { a.acquire_timeout(&name, Duration::from_secs(20)).await })
    };
    // Let the create reach the server (its reply is dropped), then free the lock.
    let admin = harness.admin().await;
    let parent = a.lock_path(&LockName::new(&*name).unwrap());
    loop {
        let now = admin.list_children(&parent).await.unwrap();
        if now.len() >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the create never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let queued = admin.list_children(&parent).await.unwrap();
    kept.release().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the acquire finished")
        .unwrap()
        .expect("the acquire succeeded after its reply was lost");
    eprintln!(
        "acquired after {:?} (first nodes {first:?})",
        started.elapsed()
    );
    let now = admin.list_children(&parent).await.unwrap();
    assert_eq!(now.len(), 1, "an orphan or duplicate node is left: {now:?}");
    assert!(now[0].contains(got.owner_token()));
    assert!(
        queued.contains(&now[0]),
        "the node created before the reply was lost ({queued:?}) was not the one used ({now:?})"
    );
    got.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limited_wait_is_honoured_while_the_connection_hangs() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let name = unique("hang");
    proxy.cut();
    let limit = Duration::from_millis(300);
    let start = Instant::now();
    let r = a.acquire_timeout(&name, limit).await;
    let took = start.elapsed();
    let e = r.expect_err("no lock while cut off");
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection),
        "{e:?}"
    );
    assert!(took < limit + Duration::from_millis(1000), "took {took:?}");
    proxy.restore();
    // The client recovers (same or new session) and nothing was left queued.
    let g = a
        .acquire_timeout(&name, harness.session_timeout() * 2)
        .await
        .unwrap();
    assert_eq!(children(&a, &name).await.len(), 1);
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_wait_is_a_try() {
    let harness = ZkHarness::single();
    let (a, b) = (
        harness.zk_lock().await.unwrap(),
        harness.zk_lock().await.unwrap(),
    );
    let name = unique("zero");
    let zero = distlock_core::AcquireOptions::wait_up_to(Duration::ZERO);
    let g = a
        .acquire_opts(&name, &zero)
        .await
        .unwrap()
        .expect("free lock");
    let e = b.acquire_opts(&name, &zero).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    g.release().await.unwrap();
    assert!(children(&a, &name).await.is_empty());
}

/// A silent partition (no reset: the client notices only by its read timeout, about 2/5 of
/// the session timeout after it last heard from the server, rounded up to the crate's tick)
/// must still report the loss clearly before the server expires the session and hands the
/// lock to someone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_partition_reports_the_loss_well_before_the_takeover() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let b = harness.zk_lock().await.unwrap();
    let name = unique("silent");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let timeout = harness.session_timeout();
    let waiter = {
        let (b, name) = (b.clone(), name.clone());
        tokio::spawn(async move {
            let g = b.acquire_timeout(&name, timeout * 3).await;
            (Instant::now(), g)
        })
    };
    while children(&a, &name).await.len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let silenced = Instant::now();
    proxy.freeze();
    let lost = tokio::time::timeout(timeout * 2, g.lost())
        .await
        .expect("the holder is told");
    let told = Instant::now();
    assert_eq!(lost.kind(), ErrorKind::Lost);
    let (taken, next) = tokio::time::timeout(timeout * 3, waiter)
        .await
        .expect("the waiter finished")
        .unwrap();
    let next = next.expect("the waiter takes the lock once the session expired");
    eprintln!(
        "holder told after {:?}, lock taken over after {:?}",
        told - silenced,
        taken - silenced
    );
    // The server expires the session a session timeout after it last heard from the
    // holder; the holder must be told with a real margin, not a hair before.
    let margin = taken.saturating_duration_since(told);
    assert!(
        margin >= timeout / 10,
        "the loss was reported only {margin:?} before the takeover (session timeout {timeout:?})"
    );
    proxy.restore();
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
    next.release().await.unwrap();
}

/// A release during a partition cannot delete the node; once the hold is known to be lost
/// (the grace ran out) it must say so, not hang until the client crate gives the session up
/// (7/5 of the session timeout after the last reply).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_during_a_partition_returns_once_the_hold_is_lost() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let name = unique("release-cut");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let mut lost = g.lost_signal();
    let timeout = harness.session_timeout();

    proxy.cut();
    let start = Instant::now();
    let released = tokio::time::timeout(timeout * 3, g.release())
        .await
        .expect("the release returned");
    let took = start.elapsed();
    eprintln!("release during the partition returned after {took:?}: {released:?}");
    let e = released.expect_err("a release that could not reach the server succeeded");
    assert!(
        matches!(e.kind(), ErrorKind::NotHeld | ErrorKind::Lost),
        "{e:?}"
    );
    assert!(
        took < timeout * 2 / 5 + Duration::from_millis(1500),
        "the release hung for {took:?} (session timeout {timeout:?})"
    );
    // A release is not a loss for the signal's watchers.
    assert!(lost.wait().await.is_none());
    proxy.restore();
    // The node went with the session: the lock is free again.
    let b = harness.zk_lock().await.unwrap();
    let g = b
        .acquire_timeout(&name, timeout * 3)
        .await
        .expect("the lock is freed by the session's end");
    g.release().await.unwrap();
}

/// `Duration::MAX` is a natural way to say "as long as it takes": no overflow panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_limit_too_large_for_the_clock_waits_as_long_as_it_takes() {
    let harness = ZkHarness::single();
    let (a, b) = (
        harness.zk_lock().await.unwrap(),
        harness.zk_lock().await.unwrap(),
    );
    let name = unique("huge-wait");
    let g = a
        .acquire_timeout(&name, Duration::MAX)
        .await
        .expect("a free lock is taken");
    let waiter = {
        let name = name.clone();
        tokio::spawn(async move { b.acquire_timeout(&name, Duration::MAX).await })
    };
    while children(&a, &name).await.len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    g.release().await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter was served")
        .unwrap()
        .expect("the waiter got the lock");
    next.release().await.unwrap();
}

/// Any non-empty name is valid, also one whose escaped path would not fit in a ZooKeeper
/// request (the server closes the connection on a packet over `jute.maxbuffer`, 1 MiB by
/// default): such names are hashed, and they stay distinct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_too_long_for_a_zookeeper_path_still_locks() {
    let harness = ZkHarness::single();
    let (a, b) = (
        harness.zk_lock().await.unwrap(),
        harness.zk_lock().await.unwrap(),
    );
    let long = "/".repeat(400_000);
    let other = format!("{long}x");
    let start = Instant::now();
    let g = tokio::time::timeout(Duration::from_secs(20), a.try_acquire(&long))
        .await
        .expect("the acquire finished")
        .expect("a long name is a valid name")
        .expect("free lock");
    eprintln!("acquired after {:?}", start.elapsed());
    assert!(b.try_acquire(&long).await.unwrap().is_none());
    let h = b
        .try_acquire(&other)
        .await
        .unwrap()
        .expect("another long name is another lock");
    assert!(a.lock_path(&LockName::new(&*long).unwrap()).len() < 4096);
    g.release().await.unwrap();
    h.release().await.unwrap();
}
