//! Mutual exclusion under stress, inside one process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use distlock_core::LockExt;
use rand::Rng;

use super::{ok, within, Ctx};

const CLIENTS: usize = 8;
const ROUNDS: u64 = 12;

pub(crate) async fn stress(ctx: &Ctx) {
    let name = ctx.name("hot");
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicU64::new(0));
    // Updated with a separate load and store, so two holders at once lose updates.
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = ctx.client().await;
        let (name, inside, overlaps, counter) = (
            name.clone(),
            inside.clone(),
            overlaps.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let guard = ok(
                    client.acquire_timeout(&name, Duration::from_secs(60)).await,
                    "contended acquire",
                );
                if inside.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                let seen = counter.load(Ordering::SeqCst);
                let pause = rand::rng().random_range(0..800u64);
                tokio::time::sleep(Duration::from_micros(pause)).await;
                counter.store(seen + 1, Ordering::SeqCst);
                inside.store(false, Ordering::SeqCst);
                ok(guard.release().await, "release");
            }
        }));
    }
    within(Duration::from_secs(120), "the stress run", async {
        for t in tasks {
            t.await.expect("a stress client panicked");
        }
    })
    .await;
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two holders were inside the critical section at once"
    );
    assert_eq!(
        counter.load(Ordering::SeqCst),
        CLIENTS as u64 * ROUNDS,
        "updates were lost: the lock did not exclude"
    );
}
