//! A client cut off from every server (its own proxy closes and refuses connections): a
//! waiting acquire rides out a short outage, as after a leader election, and reports a
//! lasting one; a try reports it at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::ZkHarness;
use distlock_core::{AcquireOptions, ErrorKind, LockExt, RetryPolicy};

fn unique(label: &str) -> String {
    format!(
        "outages/{label}/{}",
        &distlock_core::backend::new_owner_token()[..12]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_acquire_rides_out_a_short_outage() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.expect("a proxied client");
    let other = harness.zk_lock().await.unwrap();
    let name = unique("short");

    proxy.cut();
    let start = Instant::now();
    let waiter = {
        let (a, name) = (a.clone(), name.clone());
        tokio::spawn(async move { a.acquire_timeout(&name, Duration::from_secs(30)).await })
    };
    // Long enough for the client to give its session up (2/5 of the session timeout) and
    // then fail to connect a new one (each try lasts one session timeout here).
    let outage = harness.session_timeout() * 2;
    tokio::time::sleep(outage).await;
    assert!(!waiter.is_finished(), "the acquire ended during the outage");
    proxy.restore();

    let g = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the acquire finished after the outage")
        .unwrap()
        .unwrap_or_else(|e| panic!("a waiting acquire failed on a {outage:?} outage: {e}"));
    eprintln!("acquired {:?} after the outage began", start.elapsed());
    assert!(g.is_held());
    assert!(
        other.try_acquire(&name).await.unwrap().is_none(),
        "the lock taken after the outage does not exclude"
    );
    g.release().await.unwrap();
    let after = other
        .try_acquire(&name)
        .await
        .unwrap()
        .expect("free after release");
    after.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lasting_outage_fails_a_waiting_acquire_with_a_connection_error() {
    let harness = ZkHarness::single();
    let (a, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.expect("a proxied client");
    let name = unique("lasting");

    proxy.cut();
    let start = Instant::now();
    // Wait::Forever: the user waits for the lock, not for a store that is gone. The run of
    // failures it rides out is the core's retry policy, here twice the connect timeout.
    let connect = harness.session_timeout();
    let options = AcquireOptions::wait_forever()
        .with_retry(RetryPolicy::default().with_give_up_after(connect * 2));
    let err = tokio::time::timeout(Duration::from_secs(60), a.acquire_opts(&name, &options))
        .await
        .expect("the acquire gave up on a lasting outage")
        .unwrap_err();
    let took = start.elapsed();
    eprintln!("gave up after {took:?}: {err}");
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    // The first attempt waits on the old session until it is given up (under one session
    // timeout); failures are then retried for twice the connect timeout (= the session
    // timeout here), and the last attempt may start just inside that and take one connect
    // timeout: 4 connect timeouts; one more is slack for a loaded machine.
    assert!(
        took >= connect * 2,
        "gave up after {took:?}, before retrying"
    );
    assert!(
        took <= connect * 5 + Duration::from_secs(2),
        "took {took:?} to give up"
    );

    // A try does not retry.
    let start = Instant::now();
    let err = a.try_acquire(&name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(
        start.elapsed() <= connect + Duration::from_secs(2),
        "a try took {:?}",
        start.elapsed()
    );

    proxy.restore();
    let g = a
        .try_acquire(&name)
        .await
        .unwrap()
        .expect("free once the store is back");
    g.release().await.unwrap();
}
