//! Cancelled acquires must leave nothing behind.

use std::time::{Duration, Instant};

use distlock_core::LockExt;
use rand::Rng;

use super::{ok, within, Ctx, SLACK};
use crate::case::Outcome;

const ROUNDS: usize = 15;

fn random_upto(limit: Duration) -> Duration {
    let micros = limit.as_micros().max(1) as u64;
    Duration::from_micros(rand::rng().random_range(0..micros))
}

pub(crate) async fn leaves_no_hold(ctx: &Ctx) -> Outcome {
    let (a, b, c) = (ctx.client().await, ctx.client().await, ctx.client().await);
    let limit = ctx.harness.cleanup();

    // How long an uncontended acquire takes here, so cancellations land inside one. The
    // median of a few, so a first acquire that also connects does not inflate it.
    let probe = ctx.name("probe");
    let mut samples = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let g = ok(b.acquire(&probe).await, "probe acquire");
        samples.push(start.elapsed());
        ok(g.release().await, "probe release");
    }
    samples.sort();
    let round_trip = samples[1].max(Duration::from_micros(200));

    // Waiters on a held lock, cancelled while queued.
    let contended = ctx.name("contended");
    let holder = ok(a.try_acquire(&contended).await, "holder").expect("free lock");
    for _ in 0..ROUNDS {
        let cut = random_upto(round_trip * 4 + Duration::from_millis(20));
        if let Ok(got) = tokio::time::timeout(cut, b.acquire(&contended)).await {
            panic!("a waiter acquired a held lock: {got:?}");
        }
    }

    // Waiters cancelled around the moment the holder releases, while the lock is being
    // handed to them (a notification, a watch, a server-side wait returning).
    let handoff = ctx.name("handoff");
    for round in 0..ROUNDS {
        let g = c.acquire_timeout(&handoff, limit).await.unwrap_or_else(|e| {
            panic!("round {round}: {handoff:?} was still held {limit:?} after a waiter was cancelled during a hand-off: {e}")
        });
        let delay = random_upto(round_trip * 2) + Duration::from_millis(1);
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            g.release().await
        });
        let cut = delay + random_upto(round_trip * 4 + Duration::from_millis(5));
        if let Ok(got) = tokio::time::timeout(cut, b.acquire(&handoff)).await {
            ok(ok(got, "acquire at a hand-off").release().await, "release");
        }
        ok(
            within(SLACK * 2, "the release before a hand-off", releaser)
                .await
                .expect("releaser task"),
            "release before a hand-off",
        );
    }

    // Acquires of free locks, cancelled at random points of their round trips.
    let mut free = Vec::new();
    for i in 0..ROUNDS {
        let name = ctx.name(&format!("free-{i}"));
        let cut = random_upto(round_trip * 2);
        match tokio::time::timeout(cut, b.acquire(&name)).await {
            Ok(got) => ok(ok(got, "acquire").release().await, "release"),
            Err(_cancelled) => {}
        }
        let cut = random_upto(round_trip * 2);
        if let Ok(got) = tokio::time::timeout(cut, b.try_acquire(&name)).await {
            if let Some(g) = ok(got, "try_acquire") {
                ok(g.release().await, "release");
            }
        }
        free.push(name);
    }

    ok(holder.release().await, "holder release");
    let names = [&contended, &handoff].into_iter().chain(free.iter());
    for name in names {
        let start = Instant::now();
        let g = c.acquire_timeout(name, limit).await.unwrap_or_else(|e| {
            panic!("{name:?} was still held {limit:?} after cancelled acquires: {e}")
        });
        assert!(start.elapsed() <= limit + SLACK);
        ok(g.release().await, "release");
    }
    Outcome::Passed
}
