//! The metrics of `distlock_core::observe`, in scripted scenarios on the memory backend,
//! read back with `metrics-util`'s debugging recorder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use distlock_core::memory::MemoryStore;
use distlock_core::observe::{self, Config, NameLabel};
use distlock_core::{AcquireOptions, ErrorKind, Inspect, LockExt, LockName};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// One reading: (name, labels, value) for counters, and the recorded samples for histograms.
type Labels = Vec<(String, String)>;

struct Reading(Vec<(String, Labels, DebugValue)>);

impl Reading {
    fn take(snapshotter: &Snapshotter) -> Self {
        Reading(
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| {
                    let (_, key) = key.into_parts();
                    let labels = key
                        .labels()
                        .map(|l| (l.key().to_string(), l.value().to_string()))
                        .collect();
                    (key.name().to_string(), labels, value)
                })
                .collect(),
        )
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a DebugValue> + 'a {
        self.0.iter().filter_map(move |(n, have, value)| {
            let all = labels
                .iter()
                .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v));
            (n == name && all).then_some(value)
        })
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(name, labels)
            .map(|v| match v {
                DebugValue::Counter(c) => *c,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.matching(name, labels)
            .flat_map(|v| match v {
                DebugValue::Histogram(h) => h.iter().map(|f| f.0).collect::<Vec<_>>(),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .collect()
    }

    fn has_label(&self, key: &str) -> bool {
        self.0
            .iter()
            .any(|(_, labels, _)| labels.iter().any(|(k, _)| k == key))
    }
}

/// Runs `scenario` on a current-thread runtime with a thread-local debugging recorder, so
/// tests in this binary do not see each other's metrics (the watchdog runs on the same thread).
fn with_recorder(scenario: impl AsyncFnOnce(&Snapshotter)) {
    // One at a time: one test changes the process-wide name setting.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Metrics are opt-in (see `observe::enable_metrics`).
    distlock_core::observe::enable_metrics();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(20), scenario(&snapshotter))
                    .await
                    .expect("the scenario took over 20 s");
            })
    });
}

const MEMORY: (&str, &str) = ("backend", "memory");

#[test]
fn acquire_contention_timeout_and_hold_are_counted() {
    with_recorder(async |snap| {
        let store = MemoryStore::new();
        let (a, b) = (store.client(), store.client());
        let g = a.acquire("job").await.unwrap();
        assert!(b.try_acquire("job").await.unwrap().is_none());
        let err = b
            .acquire_timeout("job", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        tokio::time::sleep(Duration::from_millis(30)).await;
        g.release().await.unwrap();

        let m = Reading::take(snap);
        assert_eq!(
            m.counter(observe::ACQUIRES, &[MEMORY, ("outcome", "acquired")]),
            1
        );
        assert_eq!(
            m.counter(observe::ACQUIRES, &[MEMORY, ("outcome", "contended")]),
            1
        );
        assert_eq!(
            m.counter(observe::ACQUIRES, &[MEMORY, ("outcome", "timeout")]),
            1
        );
        assert_eq!(m.counter(observe::CONTENDED, &[MEMORY]), 2);
        let timeout_wait = m.samples(observe::ACQUIRE_WAIT, &[("outcome", "timeout")]);
        assert_eq!(timeout_wait.len(), 1);
        assert!(
            (0.045..2.0).contains(&timeout_wait[0]),
            "a 50 ms wait recorded as {timeout_wait:?} s"
        );
        let held = m.samples(observe::HOLD_DURATION, &[MEMORY, ("outcome", "released")]);
        assert_eq!(held.len(), 1);
        assert!(held[0] >= 0.075, "held ≥ 80 ms, recorded {held:?}");
        assert_eq!(m.counter(observe::LOSSES, &[]), 0);
        assert!(!m.has_label("lock"), "lock names are labels only on opt-in");
    });
}

#[test]
fn renewals_record_lease_slack_and_a_break_counts_as_a_loss() {
    with_recorder(async |snap| {
        let store = MemoryStore::new();
        let (a, b) = (store.client(), store.client());
        let ttl = Duration::from_millis(300);
        let opts = AcquireOptions::try_once().with_ttl(ttl);
        let g = a.acquire_opts("lease", &opts).await.unwrap().unwrap();
        // Three renewal periods (TTL/3 each) and some.
        tokio::time::sleep(Duration::from_millis(450)).await;
        let broken = b
            .break_lock(&LockName::new("lease").unwrap())
            .await
            .unwrap();
        assert_eq!(broken.and_then(|h| h.fencing_token), g.fencing_token());
        let lost = g.lost().await;
        assert_eq!(lost.kind(), ErrorKind::Lost);
        assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);

        let m = Reading::take(snap);
        let ok = m.counter(observe::RENEWALS, &[MEMORY, ("outcome", "ok")]);
        assert!(
            (2..=6).contains(&ok),
            "{ok} renewals in 450 ms at TTL/3 = 100 ms"
        );
        let slack = m.samples(observe::LEASE_SLACK, &[MEMORY]);
        assert_eq!(slack.len() as u64, ok);
        assert!(
            slack.iter().all(|s| *s > 0.0 && *s <= ttl.as_secs_f64()),
            "slack within the lease: {slack:?}"
        );
        assert_eq!(
            m.counter(observe::LOSSES, &[MEMORY, ("reason", "broken")]),
            1
        );
        assert_eq!(m.counter(observe::LOSSES, &[]), 1, "one loss, counted once");
        assert_eq!(m.counter(observe::FORCED_RELEASES, &[MEMORY]), 1);
        assert_eq!(
            m.samples(observe::HOLD_DURATION, &[("outcome", "lost")])
                .len(),
            1
        );
        assert!(m
            .samples(observe::HOLD_DURATION, &[("outcome", "released")])
            .is_empty());
    });
}

#[test]
fn a_lapsed_lease_is_a_loss_by_expiry() {
    with_recorder(async |snap| {
        let store = MemoryStore::new();
        let a = store.client();
        let opts = AcquireOptions::try_once()
            .with_ttl(Duration::from_millis(100))
            .with_renewal(false);
        let g = a.acquire_opts("short", &opts).await.unwrap().unwrap();
        g.lost().await;
        let m = Reading::take(snap);
        assert_eq!(
            m.counter(observe::LOSSES, &[MEMORY, ("reason", "lease_expired")]),
            1
        );
        assert_eq!(m.counter(observe::RENEWALS, &[]), 0);
    });
}

#[test]
fn lock_names_become_labels_only_when_asked_and_can_be_hashed() {
    with_recorder(async |snap| {
        let a = MemoryStore::new().client();
        observe::configure(Config::default().names_in_metrics(NameLabel::Hashed));
        a.acquire("secret-order-42")
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
        observe::configure(Config::default());
        let m = Reading::take(snap);
        let hash = observe::name_hash("secret-order-42");
        assert_eq!(m.counter(observe::ACQUIRES, &[("lock", hash.as_str())]), 1);
        assert!(!format!("{:?}", m.0).contains("secret-order-42"));
    });
}
