//! The floor under a Redis handoff on this machine: the fastest push-based handoff a client
//! of the same `redis` crate can have (the holder frees the key and publishes in one
//! script; the waiter is parked on a subscription and done when the message arrives),
//! beside distlock's handoff, in alternating rounds in one process on the bench's runtime:
//!
//! ```text
//! handoff_push redis://127.0.0.1:PORT/ [ROUNDS]
//! ```
//!
//! As in `distlock bench`, the holder keeps the lock a random 20–220 ms so that the waiter
//! is parked, and a handoff is timed from the holder's release call to the waiter being
//! done. Prints both medians and p99s.

use std::time::{Duration, Instant};

use distlock::LockExt;
use futures::StreamExt;
use rand::Rng;

const FREE_AND_TELL: &str = "redis.call('del', KEYS[1]) return redis.call('publish', KEYS[2], '1')";

fn die(what: impl std::fmt::Display) -> ! {
    eprintln!("handoff_push: {what}");
    std::process::exit(1)
}

async fn parked() {
    let hold = rand::rng().random_range(20..=220);
    tokio::time::sleep(Duration::from_millis(hold)).await;
}

/// One handoff between two distlock clients: the waiter's `acquire` is parked, the holder
/// releases.
async fn distlock_round(url: &str) -> Duration {
    let holder = distlock::connect(url).await.unwrap_or_else(|e| die(e));
    let waiter = distlock::connect(url).await.unwrap_or_else(|e| die(e));
    let held = holder
        .acquire("handoff-push")
        .await
        .unwrap_or_else(|e| die(e));
    let waiting = tokio::spawn(async move {
        let guard = waiter
            .acquire("handoff-push")
            .await
            .unwrap_or_else(|e| die(e));
        let done = Instant::now();
        guard.release().await.unwrap_or_else(|e| die(e));
        done
    });
    parked().await;
    let start = Instant::now();
    held.release().await.unwrap_or_else(|e| die(e));
    let done = waiting.await.unwrap_or_else(|e| die(e));
    done.saturating_duration_since(start)
}

/// One push handoff on bare connections: `SET`, a waiter subscribed, then `DEL` + `PUBLISH`.
async fn push_round(url: &str) -> Duration {
    let client = redis::Client::open(url).unwrap_or_else(|e| die(e));
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| die(e));
    let mut pubsub = client.get_async_pubsub().await.unwrap_or_else(|e| die(e));
    pubsub
        .subscribe("handoff-push:released")
        .await
        .unwrap_or_else(|e| die(e));
    let _: () = redis::cmd("SET")
        .arg("handoff-push:raw")
        .arg("holder")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| die(e));
    let waiting = tokio::spawn(async move {
        let mut messages = pubsub.on_message();
        if messages.next().await.is_none() {
            die("the subscription ended");
        }
        Instant::now()
    });
    parked().await;
    let start = Instant::now();
    let _: i64 = redis::Script::new(FREE_AND_TELL)
        .key("handoff-push:raw")
        .key("handoff-push:released")
        .invoke_async(&mut conn)
        .await
        .unwrap_or_else(|e| die(e));
    let done = waiting.await.unwrap_or_else(|e| die(e));
    done.saturating_duration_since(start)
}

async fn run(url: &str, rounds: usize) {
    let (mut ours, mut push) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        if i % 2 == 0 {
            ours.push(distlock_round(url).await);
            push.push(push_round(url).await);
        } else {
            push.push(push_round(url).await);
            ours.push(distlock_round(url).await);
        }
    }
    ours.sort();
    push.sort();
    let q = |v: &[Duration], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    println!(
        "{rounds} handoffs each: distlock p50 {:?} p99 {:?}; DEL+PUBLISH to a subscriber p50 {:?} p99 {:?}",
        q(&ours, 0.5),
        q(&ours, 0.99),
        q(&push, 0.5),
        q(&push, 0.99),
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| die("usage: handoff_push redis://… [ROUNDS]"));
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(60);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(e));
    runtime.block_on(run(&url, rounds.max(1)));
}
