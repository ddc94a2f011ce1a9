//! The runner itself: a failing case ends its test promptly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::{Duration, Instant};

use async_trait::async_trait;
use distlock_conformance::Harness;
use distlock_core::{DistributedLock, LockError, Result};

/// A harness whose client leaves a blocking task stuck behind, then fails.
struct Stuck;

#[async_trait]
impl Harness for Stuck {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        drop(tokio::task::spawn_blocking(|| {
            std::thread::sleep(Duration::from_secs(60))
        }));
        Err(LockError::connection("the store is unreachable"))
    }
}

#[test]
fn a_failing_case_does_not_wait_for_stuck_blocking_tasks() {
    let start = Instant::now();
    let failed = std::panic::catch_unwind(|| {
        distlock_conformance::run_test("acquire_release_reacquire", module_path!(), || Stuck)
    });
    assert!(failed.is_err(), "a case without a client passed");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the failed case took {:?} to end",
        start.elapsed()
    );
}
