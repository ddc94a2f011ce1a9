//! The core's metrics on a real backend: renewals, lease slack, a loss by a forced release,
//! read back with `metrics-util`'s debugging recorder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use distlock_core::{observe, AcquireOptions, DistributedLock, LockExt, LockName};
use distlock_redis::RedisLock;
use distlock_testkit::redis::RedisServer;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn renewals_slack_contention_and_a_break_are_measured() {
    let server = RedisServer::start().unwrap();
    // Metrics are opt-in.
    observe::enable_metrics();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // A thread-local recorder on a current-thread runtime: the watchdog runs on this thread.
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(20), async {
                    let a = RedisLock::connect(&server.url()).await.unwrap();
                    let b = RedisLock::connect(&server.url()).await.unwrap();
                    let ttl = Duration::from_millis(600);
                    let opts = AcquireOptions::try_once().with_ttl(ttl);
                    let g = a.acquire_opts("metered", &opts).await.unwrap().unwrap();
                    assert!(b.try_acquire("metered").await.unwrap().is_none());
                    // Two renewal periods (TTL/3) and some.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let name = LockName::new("metered").unwrap();
                    b.inspect()
                        .unwrap()
                        .break_lock(&name)
                        .await
                        .unwrap()
                        .unwrap();
                    g.lost().await;
                })
                .await
                .unwrap()
            })
    });

    let mut counters = Vec::new();
    let mut slack = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key().clone();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        assert!(labels.contains(&"backend=redis".to_string()), "{key:?}");
        match value {
            DebugValue::Counter(n) => counters.push((key.name().to_string(), labels, n)),
            DebugValue::Histogram(v) if key.name() == observe::LEASE_SLACK => {
                slack.extend(v.into_iter().map(|f| f.0))
            }
            _ => {}
        }
    }
    let count = |name: &str, label: &str| -> u64 {
        counters
            .iter()
            .filter(|(n, l, _)| n == name && (label.is_empty() || l.iter().any(|x| x == label)))
            .map(|(_, _, c)| *c)
            .sum()
    };
    assert_eq!(count(observe::CONTENDED, ""), 1, "{counters:?}");
    let renewed = count(observe::RENEWALS, "outcome=ok");
    assert!(
        (1..=4).contains(&renewed),
        "{renewed} renewals: {counters:?}"
    );
    assert_eq!(slack.len() as u64, renewed);
    assert!(slack.iter().all(|s| *s > 0.0 && *s < 0.6), "{slack:?}");
    assert_eq!(
        count(observe::RENEWALS, "outcome=rejected"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count(observe::LOSSES, "reason=renewal_rejected"),
        1,
        "{counters:?}"
    );
    assert_eq!(count(observe::FORCED_RELEASES, ""), 1, "{counters:?}");
}
