//! A waiter is woken by a release in another client (another process, as far as the
//! in-process wake-ups go), not by its backstop retry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::time::{Duration, Instant};

use distlock_core::LockExt;
use distlock_file::FileLock;

fn dir(label: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}-{}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_by_another_client_wakes_a_parked_waiter() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = dir("handoff");
        // Two clients share no in-process wake-ups: only the directory watcher links them.
        let (holder, waiter) = (FileLock::new(&dir).unwrap(), FileLock::new(&dir).unwrap());
        let mut took = Vec::new();
        for _ in 0..9 {
            let g = holder.try_acquire("handoff").await.unwrap().expect("free");
            let waiter = waiter.clone();
            let (parked_tx, parked_rx) = tokio::sync::oneshot::channel();
            let wait = tokio::spawn(async move {
                let _ = parked_tx.send(());
                let g = waiter
                    .acquire_timeout("handoff", Duration::from_secs(10))
                    .await
                    .unwrap();
                let at = Instant::now();
                g.release().await.unwrap();
                at
            });
            parked_rx.await.unwrap();
            // Time is the subject: the waiter's back-off grows to its backstop (250 ms)
            // while the lock stays held, so only a wake-up makes the handoff quick.
            tokio::time::sleep(Duration::from_millis(600)).await;
            let released = Instant::now();
            g.release().await.unwrap();
            took.push(wait.await.unwrap().saturating_duration_since(released));
        }
        took.sort();
        let median = took[took.len() / 2];
        // The backstop alone gives a median near 90 ms (seen: 36–133 ms); a wake-up, about
        // 0.3 ms here. Slack for a loaded machine.
        assert!(
            median < Duration::from_millis(20),
            "handoff median {median:?} (all: {took:?})"
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test took too long");
}
