//! A leased guard knows its hold is over at `valid_until`, even when the runtime that
//! would run its watchdog is stalled (a blocking section on a current-thread runtime).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::SingleHarness;
use distlock_conformance::Harness;
use distlock_core::{AcquireOptions, ErrorKind, LockExt};
use distlock_redis::RedisLock;

#[test]
fn is_held_is_false_past_valid_until_while_the_runtime_is_stalled() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let harness = SingleHarness::new();
        let url = harness.child_env().remove(0).1;
        let a = harness.client().await.unwrap();
        let name = format!(
            "stalled/{}",
            &distlock_core::backend::new_owner_token()[..12]
        );
        let options = AcquireOptions::try_once().with_ttl(Duration::from_millis(500));
        let g = a
            .acquire_opts(&name, &options)
            .await
            .unwrap()
            .expect("free lock");
        assert!(g.is_held());
        let until = g.valid_until().expect("a leased guard");

        // The stall: this thread, the runtime's only one, blocks past the lease, so the
        // watchdog can neither renew nor report. Meanwhile another client, on its own
        // thread and runtime, takes the lock once the server expired the key.
        let other = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let b = RedisLock::connect_with(common::config(&url)).await.unwrap();
                let got = b
                    .acquire_timeout(&name, Duration::from_secs(10))
                    .await
                    .expect("the other client takes the expired lock");
                got.leak(); // its lease keeps it held for the rest of the test
            })
        });
        other.join().unwrap();
        let now = tokio::time::Instant::now();
        assert!(
            now > until,
            "the other client got the lock before valid_until"
        );

        // Still inside the stall (no await since): the guard must already know.
        assert!(
            !g.is_held(),
            "is_held() was true {:?} after valid_until while another client held the lock",
            now - until
        );
        assert!(g.lost_signal().is_lost());
        let err = g.extend(Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotHeld, "{err}");
    });
}
