//! Queued waiters are told on their client's own wake channel: a grant is written to the
//! granted client's subscriber connection alone (not to every client with a waiter on the
//! lock), and a client subscribes once, however many names it waits on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{calls, client, queue_len, until_queued, SingleHarness};
use distlock_core::{AcquireOptions, ErrorKind, LockExt};
use futures::StreamExt;
use redis::aio::MultiplexedConnection;

const TTL: Duration = Duration::from_secs(60);

/// How many connections are subscribed to `channel`.
async fn subscribers(side: &mut MultiplexedConnection, channel: &str) -> u64 {
    let (_, n): (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(side)
        .await
        .unwrap();
    n
}

/// Two clients wait on one lock. Every channel a client listens on has exactly one
/// subscriber connection, and the release publishes one message, on such a channel: the
/// granted client's connection reads it, the other waiting client's does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_written_to_the_granted_client_alone() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, a, b) = (client(&h).await, client(&h).await, client(&h).await);
    let options = AcquireOptions::wait_up_to(Duration::from_secs(20)).with_ttl(TTL);
    let g = holder.try_acquire("shared").await.unwrap().unwrap();

    let first = {
        let options = options.clone();
        // Each task keeps its client (and so its subscriber) alive past the acquire.
        tokio::spawn(async move {
            let g = a.acquire_opts("shared", &options).await.unwrap();
            (a, g)
        })
    };
    until_queued(&mut side, "shared", 1).await;
    let second = tokio::spawn(async move {
        let g = b.acquire_opts("shared", &options).await.unwrap();
        (b, g)
    });
    until_queued(&mut side, "shared", 2).await;

    // Both waiters' subscriptions are up once each has waited for its confirmation; a
    // waiter re-checks within 250 ms of it, so poll until both listen.
    let limit = Instant::now() + Duration::from_secs(10);
    let channels = loop {
        let channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg("test:*")
            .query_async(&mut side)
            .await
            .unwrap();
        let mut listeners = 0;
        for c in &channels {
            listeners += subscribers(&mut side, c).await;
        }
        if listeners >= 2 {
            break channels;
        }
        assert!(Instant::now() < limit, "the waiters never subscribed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    for c in &channels {
        assert_eq!(
            subscribers(&mut side, c).await,
            1,
            "{c} is read by several client connections: each message on it wakes them all"
        );
    }

    // Every message published from now on.
    let mut watch = redis::Client::open(h.server().url().as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    watch.psubscribe("test:*").await.unwrap();
    let mut messages = watch.into_on_message();

    g.release().await.unwrap();
    let (_a, got) = tokio::time::timeout(Duration::from_secs(15), first)
        .await
        .expect("the first waiter")
        .unwrap();
    let got = got.expect("the first waiter was granted the lock");
    let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .expect("the release published nothing")
        .unwrap();
    let channel = message.get_channel_name().to_string();
    assert_eq!(
        subscribers(&mut side, &channel).await,
        1,
        "the grant on {channel} was written to more than the granted client"
    );
    assert_eq!(
        queue_len(&mut side, "shared").await,
        1,
        "the second waits on"
    );
    assert!(!second.is_finished(), "the second waiter got the lock too");

    got.release().await.unwrap();
    let (_b, g2) = tokio::time::timeout(Duration::from_secs(15), second)
        .await
        .expect("the second waiter")
        .unwrap();
    g2.expect("the second waiter was granted the lock next")
        .release()
        .await
        .unwrap();
}

/// A client that waits on many names subscribes once: its waiters share one wake channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_on_many_names_subscribe_once() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let (holder, waiter) = (client(&h).await, client(&h).await);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut side)
        .await
        .unwrap();
    let options = AcquireOptions::wait_up_to(Duration::from_millis(50));
    for i in 0..4 {
        let name = format!("many-{i}");
        let g = holder.try_acquire(&name).await.unwrap().unwrap();
        let waited = waiter.acquire_opts(&name, &options).await;
        assert_eq!(waited.unwrap_err().kind(), ErrorKind::Timeout);
        g.release().await.unwrap();
    }
    assert_eq!(calls(&mut side, "subscribe").await, 1);
}

/// A queue entry in the older form `"<seq> <ttl> <grant token>"` (written by a client of the
/// previous version, which listens on the lock's channel) is still granted the lock, and
/// told on the lock's channel, where that client listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_clients_entry_is_granted_on_the_locks_channel() {
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let holder = client(&h).await;
    let g = holder.try_acquire("older").await.unwrap().unwrap();
    let (secs, _): (u64, u64) = redis::cmd("TIME").query_async(&mut side).await.unwrap();
    let _: () = redis::pipe()
        .cmd("RPUSH")
        .arg("test:{older}:queue")
        .arg("old-waiter")
        .ignore()
        .cmd("ZADD")
        .arg("test:{older}:queue-expiry")
        .arg((secs + 60) * 1000)
        .arg("old-waiter")
        .ignore()
        .cmd("HSET")
        .arg("test:{older}:queue-grant")
        .arg("old-waiter")
        .arg("3 60000 old-grant-token")
        .ignore()
        .query_async(&mut side)
        .await
        .unwrap();
    let mut watch = redis::Client::open(h.server().url().as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    watch.subscribe("test:{older}:released").await.unwrap();
    let mut messages = watch.into_on_message();

    let fence = g.fencing_token().unwrap();
    g.release().await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .expect("the grant was not told on the lock's channel")
        .unwrap();
    let payload: String = message.get_payload().unwrap();
    let mut parts = payload.split(' ');
    assert_eq!(parts.next(), Some("old-waiter"));
    assert_eq!(parts.next(), Some("3"));
    assert!(parts.next().unwrap().parse::<u64>().unwrap() > fence);
    let lock: Option<String> = redis::cmd("GET")
        .arg("test:{older}:lock")
        .query_async(&mut side)
        .await
        .unwrap();
    assert_eq!(lock.as_deref(), Some("old-grant-token"));
    let _: () = redis::cmd("DEL")
        .arg("test:{older}:lock")
        .query_async(&mut side)
        .await
        .unwrap();
}
