//! The spans and events of `distlock_core::observe`, captured by a small `tracing` layer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock_core::memory::MemoryStore;
use distlock_core::observe::{self, Config, NameLabel};
use distlock_core::{Inspect, LockExt, LockName};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// What happened, as text: `span <name> <field=value …>` (fields as they end up) and
/// `event <message> in <span> <fields>`.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

#[derive(Default)]
struct Fields(Vec<String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={:?}", field.name(), value));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Log {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let parent = ctx
            .event_span(event)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .push(format!("event in {parent}: {}", fields.0.join(" ")));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let fields = span
                .extensions()
                .get::<Fields>()
                .map(|f| f.0.join(" "))
                .unwrap_or_default();
            self.0
                .lock()
                .unwrap()
                .push(format!("span {} {fields}", span.name()));
        }
    }
}

impl Log {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn traced(scenario: impl AsyncFnOnce()) -> Vec<String> {
    traced_at(LevelFilter::TRACE, scenario)
}

/// Runs `scenario` with a subscriber that keeps what `level` lets through.
fn traced_at(level: LevelFilter, scenario: impl AsyncFnOnce()) -> Vec<String> {
    // One at a time: a test changes the process-wide name setting, and the global maximum
    // level follows the subscribers alive.
    static SERIAL: Mutex<()> = Mutex::new(());
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let log = Log::default();
    let subscriber = tracing_subscriber::registry().with(log.clone().with_filter(level));
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), scenario())
                    .await
                    .unwrap()
            })
    });
    log.lines()
}

#[test]
fn spans_per_acquire_and_hold_and_events_for_loss_and_forced_release() {
    let lines = traced(async || {
        let store = MemoryStore::new();
        let (a, b) = (store.client(), store.client());
        let g = a.acquire("orders/42").await.unwrap();
        assert!(b.try_acquire("orders/42").await.unwrap().is_none());
        b.break_lock(&LockName::new("orders/42").unwrap())
            .await
            .unwrap();
        g.lost().await;
        drop(g);
        a.acquire("orders/43")
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    });
    let has = |needle: &[&str]| lines.iter().any(|l| needle.iter().all(|n| l.contains(n)));
    let acquires: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("span distlock.acquire"))
        .collect();
    assert_eq!(acquires.len(), 3, "{lines:#?}");
    assert!(
        has(&[
            "span distlock.acquire",
            "backend=\"memory\"",
            "lock=\"orders/42\"",
            "outcome=\"acquired\"",
            "fencing_token="
        ]),
        "{lines:#?}"
    );
    assert!(
        has(&["span distlock.acquire", "outcome=\"contended\""]),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("span distlock.hold"))
            .count(),
        2,
        "{lines:#?}"
    );
    assert!(
        has(&["event in distlock.hold", "reason=\"broken\"", "lock lost"]),
        "{lines:#?}"
    );
    assert!(
        has(&["event in : ", "forced release", "backend=\"memory\""]),
        "{lines:#?}"
    );
    assert!(
        has(&["event in distlock.hold", "lock released"]),
        "{lines:#?}"
    );
}

#[test]
fn names_can_be_hashed_in_traces() {
    let lines = traced(async || {
        observe::configure(Config::default().names_in_traces(NameLabel::Hashed));
        let a = MemoryStore::new().client();
        a.acquire("patient/1234")
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
        observe::configure(Config::default());
    });
    let text = lines.join("\n");
    assert!(!text.contains("patient/1234"), "{text}");
    assert!(text.contains(&observe::name_hash("patient/1234")), "{text}");
}

#[test]
fn a_warnings_only_subscriber_gets_no_spans_but_still_the_loss() {
    // The CLI's default: its holds skip the spans (the cost of `distlock bench` stays that
    // of no subscriber) and must still report a loss.
    let lines = traced_at(LevelFilter::WARN, async || {
        let store = MemoryStore::new();
        let (a, b) = (store.client(), store.client());
        let g = a.acquire("orders/44").await.unwrap();
        b.break_lock(&LockName::new("orders/44").unwrap())
            .await
            .unwrap();
        g.lost().await;
    });
    assert!(!lines.iter().any(|l| l.starts_with("span ")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("event in : ")
            && l.contains("reason=\"broken\"")
            && l.contains("lock lost")),
        "{lines:#?}"
    );
}
