//! The probe task that notices lost holds survives the runtime it ran on being shut down:
//! a client used on one runtime and then on another still notices its holds' losses.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Instant;

use distlock_core::LockExt;
use distlock_mysql::Mode;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The first runtime is shut down while its probe task sleeps with a hold enrolled (a
/// test's runtime ending, an application's runtime restarted). A hold taken afterwards on
/// another runtime must still be probed: its killed session is reported lost.
fn probe_task_restarts_after_its_runtime_shut_down(mode: Mode) {
    let base = common::shared_url();
    let locks = common::client(&base, mode);
    let prefix = format!(
        "prober/{mode:?}/{}/{:?}",
        std::process::id(),
        Instant::now()
    );

    let first = runtime();
    // Held while the runtime goes away, so its probe task is dropped mid-sleep.
    let old = first
        .block_on(locks.acquire(&format!("{prefix}/old")))
        .unwrap();
    drop(first);

    let second = runtime();
    second.block_on(async {
        let guard = locks.acquire(&format!("{prefix}/new")).await.unwrap();
        common::kill_holder(&base, mode, &guard).await.unwrap();
        tokio::time::timeout(common::PROBE * 4 + common::PROBE_TIMEOUT, guard.lost())
            .await
            .expect("the killed hold was noticed: a probe task runs on the new runtime");
    });
    drop(old);
    drop(second);
}

#[test]
fn probe_task_restarts_after_its_runtime_shut_down_get_lock() {
    probe_task_restarts_after_its_runtime_shut_down(Mode::GetLock);
}

#[test]
fn probe_task_restarts_after_its_runtime_shut_down_row_lock() {
    probe_task_restarts_after_its_runtime_shut_down(Mode::RowLock);
}
