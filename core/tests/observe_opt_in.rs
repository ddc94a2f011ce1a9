//! Metrics are off until `observe::enable_metrics` (a process-wide switch, hence a test
//! binary of its own): before it nothing reaches an installed recorder, after it every
//! acquire and hold does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use distlock_core::memory::MemoryStore;
use distlock_core::observe;
use distlock_core::LockExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// (metric name, value) of everything recorded since the last reading.
fn names(snapshotter: &Snapshotter) -> Vec<(String, DebugValue)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(_, _, _, v)| match v {
            DebugValue::Counter(n) => *n > 0,
            DebugValue::Histogram(s) => !s.is_empty(),
            DebugValue::Gauge(_) => true,
        })
        .map(|(key, _, _, v)| (key.key().name().to_string(), v))
        .collect()
}

#[test]
fn metrics_are_emitted_only_once_enabled() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(20), async {
                    let locks = MemoryStore::new().client();
                    assert!(!observe::metrics_enabled(), "off by default");
                    let g = locks.try_acquire("quiet").await.unwrap().unwrap();
                    g.release().await.unwrap();
                    let before = names(&snapshotter);
                    assert!(before.is_empty(), "emitted while off: {before:?}");

                    observe::enable_metrics();
                    assert!(observe::metrics_enabled());
                    let g = locks.try_acquire("loud").await.unwrap().unwrap();
                    g.release().await.unwrap();
                    let after = names(&snapshotter);
                    let has = |name: &str| after.iter().any(|(n, _)| n == name);
                    assert!(has(observe::ACQUIRES), "{after:?}");
                    assert!(has(observe::ACQUIRE_WAIT), "{after:?}");
                    assert!(has(observe::HOLD_DURATION), "{after:?}");
                })
                .await
                .expect("the scenario took over 20 s");
            })
    });
}
