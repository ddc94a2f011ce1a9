//! Tracing spans and [`metrics`] for every backend, written once here.
//!
//! distlock emits through the `tracing` and `metrics` facades and installs nothing. Install
//! any `tracing` subscriber to see the spans and events. Metrics are **opt-in**: install any
//! `metrics` recorder (Prometheus, StatsD, …) and call [`enable_metrics`] once at start-up
//! (the `metrics` facade cannot tell whether a recorder is installed, and timing every
//! acquire and hold for nobody is most of the instrumentation's cost).
//!
//! With metrics not enabled and no `tracing` subscriber that wants `INFO` (none at all, or
//! one that keeps warnings only), an acquire goes straight to the backend: no span, no
//! clock read, nothing attached to the guard (two atomic loads). Such a hold's `WARN`
//! events ("lease renewal failed", "lock lost") still come, outside any span. A guard
//! acquired then stays unobserved even if a subscriber is installed later.
//!
//! # Spans and events
//!
//! | span / event | level | fields |
//! |---|---|---|
//! | span `distlock.acquire`, one per acquire | `INFO` | `backend`, `lock`, `wait`, `outcome`, `fencing_token` |
//! | span `distlock.hold`, from acquire to release or loss | `INFO` | `backend`, `lock`, `fencing_token` |
//! | event "lease renewal failed" (in the hold span) | `WARN` | `error`, `slack_ms` |
//! | event "lock lost" (in the hold span) | `WARN` | `reason`, `error` |
//! | event "lock released" (in the hold span) | `DEBUG` | `held_ms` |
//! | event "forced release" (on the breaking side, see [`crate::Inspect`]) | `WARN` | `backend`, `lock` |
//!
//! # Metrics
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`ACQUIRE_WAIT`] `distlock_acquire_wait_seconds` | histogram | `backend`, `outcome` = `acquired`/`contended`/`timeout`/`error` |
//! | [`ACQUIRES`] `distlock_acquires_total` | counter | `backend`, `outcome` |
//! | [`CONTENDED`] `distlock_contended_total` | counter | `backend`: acquires that ended without the lock because it stayed held elsewhere (a `try` that found it held, a wait that timed out) |
//! | [`HOLD_DURATION`] `distlock_hold_seconds` | histogram | `backend`, `outcome` = `released`/`lost` |
//! | [`LOSSES`] `distlock_losses_total` | counter | `backend`, `reason` (see [`LossReason`]) |
//! | [`RENEWALS`] `distlock_renewals_total` | counter | `backend`, `outcome` = `ok`/`failed`/`rejected` |
//! | [`LEASE_SLACK`] `distlock_lease_slack_seconds` | histogram | `backend`: time left before the guard's local deadline when a renewal was confirmed. It shrinks before a loss happens: alert on its low quantiles |
//! | [`FORCED_RELEASES`] `distlock_forced_releases_total` | counter | `backend` |
//!
//! Lock names are labels only when [`Config::names_in_metrics`] says so (each name is a
//! time series: mind the cardinality). Spans carry the name, hashed if
//! [`Config::names_in_traces`] says so.
//!
//! **Handoff latency** (a release until the next holder has the lock) cannot be measured
//! generically: the releasing and the acquiring side are usually different processes. The
//! wait histogram of contended acquires bounds it from above; `distlock bench` measures it
//! per backend.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::error::{ErrorKind, Result};
use crate::guard::LockGuard;
use crate::lock::DistributedLock;
use crate::name::LockName;
use crate::options::{AcquireOptions, Wait};

/// Histogram: how long acquires took, by `backend` and `outcome`.
pub const ACQUIRE_WAIT: &str = "distlock_acquire_wait_seconds";
/// Counter: acquires by `backend` and `outcome`.
pub const ACQUIRES: &str = "distlock_acquires_total";
/// Counter: acquires that ended without the lock because it stayed held elsewhere.
pub const CONTENDED: &str = "distlock_contended_total";
/// Histogram: how long locks were held, by `backend` and `outcome` (`released`, `lost`).
pub const HOLD_DURATION: &str = "distlock_hold_seconds";
/// Counter: lost holds by `backend` and `reason`.
pub const LOSSES: &str = "distlock_losses_total";
/// Counter: lease renewals by `backend` and `outcome` (`ok`, `failed`, `rejected`).
pub const RENEWALS: &str = "distlock_renewals_total";
/// Histogram: time left before the local lease deadline at each confirmed renewal.
pub const LEASE_SLACK: &str = "distlock_lease_slack_seconds";
/// Counter: holds broken by [`crate::Inspect::break_lock`], by `backend`.
pub const FORCED_RELEASES: &str = "distlock_forced_releases_total";

/// How a lock name appears in spans or metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameLabel {
    /// Left out.
    Omit,
    /// As it is.
    Plain,
    /// The first 16 hex digits of its SHA-256: stable across processes, not readable.
    Hashed,
}

/// What the instrumentation records about lock names, set once per process by
/// [`configure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The `lock` field of spans. Default [`NameLabel::Plain`].
    pub names_in_traces: NameLabel,
    /// The `lock` label of metrics. Default [`NameLabel::Omit`] (cardinality).
    pub names_in_metrics: NameLabel,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            names_in_traces: NameLabel::Plain,
            names_in_metrics: NameLabel::Omit,
        }
    }
}

impl Config {
    /// Sets [`Config::names_in_traces`].
    pub fn names_in_traces(mut self, how: NameLabel) -> Self {
        self.names_in_traces = how;
        self
    }

    /// Sets [`Config::names_in_metrics`].
    pub fn names_in_metrics(mut self, how: NameLabel) -> Self {
        self.names_in_metrics = how;
        self
    }
}

static TRACE_NAMES: AtomicU8 = AtomicU8::new(1);
static METRIC_NAMES: AtomicU8 = AtomicU8::new(0);

fn to_u8(how: NameLabel) -> u8 {
    match how {
        NameLabel::Omit => 0,
        NameLabel::Plain => 1,
        NameLabel::Hashed => 2,
    }
}

fn from_u8(raw: u8) -> NameLabel {
    match raw {
        1 => NameLabel::Plain,
        2 => NameLabel::Hashed,
        _ => NameLabel::Omit,
    }
}

/// Sets how lock names appear in spans and metrics, for the whole process.
///
/// ```
/// use distlock_core::observe::{configure, Config, NameLabel};
/// configure(Config::default().names_in_traces(NameLabel::Hashed));
/// ```
pub fn configure(config: Config) {
    TRACE_NAMES.store(to_u8(config.names_in_traces), Ordering::Relaxed);
    METRIC_NAMES.store(to_u8(config.names_in_metrics), Ordering::Relaxed);
}

static METRICS: AtomicBool = AtomicBool::new(false);

/// Turns on the metrics of this module for the whole process (they are off by default):
/// call it once where you install your `metrics` recorder. There is no way back: metrics
/// are meant to stay on for the life of a process.
///
/// ```
/// // metrics::set_global_recorder(my_recorder)?;
/// distlock_core::observe::enable_metrics();
/// assert!(distlock_core::observe::metrics_enabled());
/// ```
pub fn enable_metrics() {
    METRICS.store(true, Ordering::Relaxed);
}

/// Whether [`enable_metrics`] was called.
pub fn metrics_enabled() -> bool {
    METRICS.load(Ordering::Relaxed)
}

/// The configuration in force.
pub fn config() -> Config {
    Config {
        names_in_traces: from_u8(TRACE_NAMES.load(Ordering::Relaxed)),
        names_in_metrics: from_u8(METRIC_NAMES.load(Ordering::Relaxed)),
    }
}

/// The first 16 hex digits of the SHA-256 of `name`: how [`NameLabel::Hashed`] shows it.
pub fn name_hash(name: &str) -> String {
    Sha256::digest(name.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn shown(name: &LockName, how: NameLabel) -> Option<String> {
    match how {
        NameLabel::Omit => None,
        NameLabel::Plain => Some(name.as_str().to_string()),
        NameLabel::Hashed => Some(name_hash(name.as_str())),
    }
}

/// Why a hold was lost: the `reason` label of [`LOSSES`] and the `reason` field of the
/// "lock lost" event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossReason {
    /// The local lease deadline passed without a confirmed renewal.
    LeaseExpired,
    /// A renewal found the lock gone or owned by someone else.
    RenewalRejected,
    /// A user's `extend` found the lock gone or owned by someone else.
    ExtendRejected,
    /// The session that owned the hold expired (ZooKeeper).
    SessionExpired,
    /// The connection that owned the hold died (MySQL).
    ConnectionLost,
    /// The lock node or entry was deleted by someone else (a forced release).
    Broken,
    /// Anything a backend reports without a more precise reason.
    Backend,
}

impl LossReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::LeaseExpired => "lease_expired",
            LossReason::RenewalRejected => "renewal_rejected",
            LossReason::ExtendRejected => "extend_rejected",
            LossReason::SessionExpired => "session_expired",
            LossReason::ConnectionLost => "connection_lost",
            LossReason::Broken => "broken",
            LossReason::Backend => "backend",
        }
    }
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Emits one metric with labels `backend`, one more `key = value`, and the opted-in
/// `lock` label. Without a lock label the whole [`metrics::Key`] (hashed once) is a leaked
/// `&'static`, made once per combination (metrics × backends × outcomes: a few dozen), so
/// emitting allocates and hashes nothing: with no recorder installed the instrumentation
/// stays in the noise of an in-memory acquire.
fn emit(
    name: &'static str,
    backend: &'static str,
    extra: Option<(&'static str, &'static str)>,
    lock: &Option<Arc<str>>,
    apply: impl FnOnce(&dyn metrics::Recorder, &metrics::Key),
) {
    match lock {
        None => {
            let key = static_key((name, backend, extra));
            metrics::with_recorder(|recorder| apply(recorder, key));
        }
        Some(lock) => {
            let mut labels = static_key((name, backend, extra))
                .labels()
                .cloned()
                .collect::<Vec<_>>();
            labels.push(metrics::Label::new("lock", lock.to_string()));
            let key = metrics::Key::from_parts(name, labels);
            metrics::with_recorder(|recorder| apply(recorder, &key));
        }
    }
}

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn count(
    name: &'static str,
    backend: &'static str,
    extra: Option<(&'static str, &'static str)>,
    lock: &Option<Arc<str>>,
) {
    emit(name, backend, extra, lock, |r, key| {
        r.register_counter(key, &METADATA).increment(1)
    });
}

fn record(
    name: &'static str,
    backend: &'static str,
    extra: Option<(&'static str, &'static str)>,
    lock: &Option<Arc<str>>,
    value: Duration,
) {
    emit(name, backend, extra, lock, |r, key| {
        r.register_histogram(key, &METADATA)
            .record(value.as_secs_f64())
    });
}

type KeyParts = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

/// The same static strings (compared by address: cheap, and a duplicate entry for equal
/// strings at different addresses is harmless).
fn same(a: &KeyParts, b: &KeyParts) -> bool {
    fn s(x: &str, y: &str) -> bool {
        std::ptr::eq(x, y)
    }
    s(a.0, b.0)
        && s(a.1, b.1)
        && match (a.2, b.2) {
            (None, None) => true,
            (Some((k, v)), Some((l, w))) => s(k, l) && s(v, w),
            _ => false,
        }
}

fn static_key(wanted: KeyParts) -> &'static metrics::Key {
    // The process-wide cache owns the leaked keys (one per combination); each thread
    // keeps references to those it used, so the common path takes no lock.
    static CACHE: RwLock<Vec<(KeyParts, &'static metrics::Key)>> = RwLock::new(Vec::new());
    thread_local! {
        static SEEN: std::cell::RefCell<Vec<(KeyParts, &'static metrics::Key)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let seen = SEEN.with_borrow(|seen| {
        seen.iter()
            .find(|(k, _)| same(k, &wanted))
            .map(|(_, key)| *key)
    });
    if let Some(key) = seen {
        return key;
    }
    let key = shared_key(&CACHE, wanted);
    SEEN.with_borrow_mut(|seen| seen.push((wanted, key)));
    key
}

fn shared_key(
    cache: &RwLock<Vec<(KeyParts, &'static metrics::Key)>>,
    wanted: KeyParts,
) -> &'static metrics::Key {
    let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, key)) = cache.iter().find(|(k, _)| same(k, &wanted)) {
        return key;
    }
    let (name, backend, extra) = wanted;
    let mut labels = vec![metrics::Label::from_static_parts("backend", backend)];
    if let Some((k, v)) = extra {
        labels.push(metrics::Label::from_static_parts(k, v));
    }
    let key: &'static metrics::Key = Box::leak(Box::new(metrics::Key::from_parts(name, labels)));
    cache.push((wanted, key));
    key
}

/// What the hold side of the instrumentation needs, shared by a guard's status clones.
#[derive(Debug)]
pub(crate) struct HoldObserver {
    backend: &'static str,
    lock: Option<Arc<str>>,
    span: Span,
    /// When the hold began; `None` when nothing wants durations (metrics off and the
    /// "lock released" event disabled): reading the clock is a cost worth skipping.
    started: Option<Instant>,
    metrics: bool,
}

impl HoldObserver {
    fn held_for(&self) -> Duration {
        self.started.map(|t| t.elapsed()).unwrap_or_default()
    }

    pub(crate) fn released(&self) {
        let held = self.held_for();
        if self.metrics {
            let outcome = Some(("outcome", "released"));
            record(HOLD_DURATION, self.backend, outcome, &self.lock, held);
        }
        tracing::debug!(parent: &self.span, held_ms = held.as_millis() as u64, "lock released");
    }

    pub(crate) fn lost(&self, reason: LossReason, error: &crate::LockError) {
        if self.metrics {
            let held = self.held_for();
            let outcome = Some(("outcome", "lost"));
            record(HOLD_DURATION, self.backend, outcome, &self.lock, held);
            count(
                LOSSES,
                self.backend,
                Some(("reason", reason.as_str())),
                &self.lock,
            );
        }
        tracing::warn!(parent: &self.span, reason = reason.as_str(), error = %error, "lock lost");
    }

    pub(crate) fn renewed(&self, slack: Duration) {
        if self.metrics {
            count(RENEWALS, self.backend, Some(("outcome", "ok")), &self.lock);
            record(LEASE_SLACK, self.backend, None, &self.lock, slack);
        }
    }

    pub(crate) fn renewal_failed(&self, rejected: bool, slack: Duration, error: &dyn fmt::Display) {
        if self.metrics {
            let outcome = if rejected { "rejected" } else { "failed" };
            count(
                RENEWALS,
                self.backend,
                Some(("outcome", outcome)),
                &self.lock,
            );
        }
        tracing::warn!(
            parent: &self.span,
            error = %error,
            slack_ms = slack.as_millis() as u64,
            "lease renewal failed"
        );
    }
}

/// Runs one acquire of `lock` inside a `distlock.acquire` span, records its wait and
/// outcome, and attaches the hold's observer to the guard it returns.
pub(crate) async fn acquire<L: DistributedLock + ?Sized>(
    lock: &L,
    name: &LockName,
    options: &AcquireOptions,
) -> Result<Option<LockGuard>> {
    let metrics = metrics_enabled();
    // Nobody wants spans, durations or metrics (no subscriber, or one that keeps warnings
    // only, as the CLI's default): skip spans, clocks and the guard's observer altogether.
    // The hold's warnings still come, unparented (see `unobserved_loss`). `level_enabled!`
    // reads the global maximum level, which every subscriber (scoped ones too) updates.
    if !metrics && !tracing::level_enabled!(tracing::Level::INFO) {
        return lock.acquire_with(name, options).await;
    }
    // Boxed, so the state of the unobserved path stays small: the spans and clocks of this
    // one would otherwise be carried (and moved) by every acquire's future.
    Box::pin(observed(lock, name, options, metrics)).await
}

async fn observed<L: DistributedLock + ?Sized>(
    lock: &L,
    name: &LockName,
    options: &AcquireOptions,
    metrics: bool,
) -> Result<Option<LockGuard>> {
    let backend = lock.backend_name();
    let span = tracing::info_span!(
        "distlock.acquire",
        backend,
        lock = Empty,
        wait = Empty,
        outcome = Empty,
        fencing_token = Empty
    );
    let traced = !span.is_disabled();
    if traced {
        if let Some(shown) = shown(name, config().names_in_traces) {
            span.record("lock", shown);
        }
        span.record("wait", tracing::field::debug(&options.wait));
    }
    let started = metrics.then(Instant::now);
    let result = if traced {
        lock.acquire_with(name, options)
            .instrument(span.clone())
            .await
    } else {
        lock.acquire_with(name, options).await
    };
    let outcome = match (&result, options.wait) {
        (Ok(Some(_)), _) => "acquired",
        (Ok(None), Wait::Try) => "contended",
        (Ok(None), _) => "timeout",
        (Err(e), _) if e.kind() == ErrorKind::Timeout => "timeout",
        (Err(_), _) => "error",
    };
    let mut done = None;
    let mut metric_name = None;
    if let Some(started) = started {
        let now = Instant::now();
        done = Some(now);
        metric_name = shown(name, config().names_in_metrics).map(Arc::<str>::from);
        let waited = now.saturating_duration_since(started);
        let labelled = Some(("outcome", outcome));
        record(ACQUIRE_WAIT, backend, labelled, &metric_name, waited);
        count(ACQUIRES, backend, labelled, &metric_name);
        if matches!(outcome, "contended" | "timeout") {
            count(CONTENDED, backend, None, &metric_name);
        }
    }
    if traced {
        span.record("outcome", outcome);
    }
    let guard = result?;
    Ok(guard.inspect(|guard| {
        let fencing = guard.fencing_token();
        if traced {
            if let Some(token) = fencing {
                span.record("fencing_token", token);
            }
        }
        let hold_span = tracing::info_span!(
            parent: None,
            "distlock.hold",
            backend,
            lock = Empty,
            fencing_token = Empty
        );
        let hold_traced = !hold_span.is_disabled();
        if hold_traced {
            hold_span.follows_from(&span);
            if let Some(shown) = shown(name, config().names_in_traces) {
                hold_span.record("lock", shown);
            }
            if let Some(token) = fencing {
                hold_span.record("fencing_token", token);
            }
        }
        // The "lock released" event reports the time held.
        let timed = done.is_some() || hold_traced || tracing::enabled!(tracing::Level::DEBUG);
        guard.observe(HoldObserver {
            backend,
            lock: metric_name,
            span: hold_span,
            started: done.or_else(|| timed.then(Instant::now)),
            metrics,
        });
    }))
}

/// The "lock lost" event of a hold acquired while nothing wanted its span.
pub(crate) fn unobserved_loss(reason: LossReason, error: &crate::LockError) {
    tracing::warn!(reason = reason.as_str(), error = %error, "lock lost");
}

/// A failed renewal: through the hold's observer, or as a bare "lease renewal failed"
/// warning for a hold acquired while nothing wanted its span.
pub(crate) fn renewal_failed(
    observer: Option<&HoldObserver>,
    rejected: bool,
    slack: Duration,
    error: &dyn fmt::Display,
) {
    match observer {
        Some(o) => o.renewal_failed(rejected, slack, error),
        None => tracing::warn!(
            error = %error,
            slack_ms = slack.as_millis() as u64,
            "lease renewal failed"
        ),
    }
}

/// Records a forced release made through [`crate::Inspect::break_lock`]: call it from the
/// breaking side once the store confirmed the break.
pub fn forced_release(backend: &'static str, name: &LockName) {
    if metrics_enabled() {
        let lock = shown(name, config().names_in_metrics).map(Arc::<str>::from);
        count(FORCED_RELEASES, backend, None, &lock);
    }
    let traced = shown(name, config().names_in_traces).unwrap_or_default();
    tracing::warn!(backend, lock = %traced, "forced release");
}
