//! What an uncontended cycle costs the server, counted by the server (`INFO commandstats`):
//! the scripts' fast paths must stay fast, since every command a script runs costs about as
//! much server time as the script's own call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, command_calls, SingleHarness};
use distlock_core::LockExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontended_cycle_is_two_scripts_of_eight_commands() {
    const CYCLES: u64 = 200;
    let h = SingleHarness::new();
    let mut side = h.side_connection().await;
    let c = client(&h).await;
    // Loads the scripts and creates the fencing counter.
    c.try_acquire("work")
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut side)
        .await
        .unwrap();
    let mut last = 0;
    for _ in 0..CYCLES {
        let g = c.try_acquire("work").await.unwrap().unwrap();
        let fence = g.fencing_token().unwrap();
        assert!(
            fence > last,
            "fencing tokens must increase: {fence} after {last}"
        );
        last = fence;
        g.release().await.unwrap();
    }
    let calls = command_calls(&mut side).await;
    let evalsha = calls.get("evalsha").copied().unwrap_or(0);
    let inside: u64 = calls
        .iter()
        .filter(|(name, _)| name.as_str() != "evalsha")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        evalsha,
        2 * CYCLES,
        "one script to acquire, one to release: {calls:?}"
    );
    // Acquire: LINDEX (nobody queues), SET NX PX, TIME, INCR and SET of the fence.
    // Release: GET, DEL, EXISTS (nobody to grant it to).
    assert!(
        inside <= 8 * CYCLES,
        "{} commands per cycle inside the scripts, at most 8 expected: {calls:?}",
        inside as f64 / CYCLES as f64
    );
}
