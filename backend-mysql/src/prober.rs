//! The prober that notices lost holds: one task per client for all its holds, not one per
//! hold (a task per hold costs a spawn and a cross-thread wake-up on every acquire and
//! release, which an uncontended cycle of two statements feels).

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::hold::MySqlHold;

/// The holds of one client that are probed every `interval`. Cheap to clone: the client
/// and each of its holds keep a clone, so holds outliving their client are still probed.
#[derive(Clone, Debug)]
pub(crate) struct Prober {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    interval: Duration,
    state: Mutex<State>,
    /// Shared with the task, which holds `Inner` only weakly: dropping the last clone (the
    /// client and its holds are gone) wakes it to end at once, not at its next tick (a
    /// process waiting for its background tasks would wait a whole interval).
    gone: Arc<Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.gone.notify_one();
    }
}

#[derive(Debug, Default)]
struct State {
    holds: Vec<Weak<MySqlHold>>,
    /// Upgradable while a task is probing: the task owns the `Arc`, so a task its runtime
    /// dropped (shut down, even before its first poll) no longer counts. It ends when it
    /// finds no hold left (clearing this first), and the next enrolment starts another.
    task: Weak<()>,
}

impl Prober {
    pub(crate) fn new(interval: Duration) -> Self {
        Prober {
            inner: Arc::new(Inner {
                interval,
                state: Mutex::new(State::default()),
                gone: Arc::new(Notify::new()),
            }),
        }
    }

    /// Probes `hold` every interval from now on, until it is released, lost or dropped.
    /// Without a Tokio runtime nothing probes (the lost signal then never fires, as with
    /// every background duty of a guard; see `distlock_core::backend::spawn_background`).
    pub(crate) fn enrol(&self, hold: &Arc<MySqlHold>) {
        let mut state = self.inner.state();
        state.holds.push(Arc::downgrade(hold));
        if state.task.upgrade().is_none() {
            let task = Arc::new(());
            state.task = Arc::downgrade(&task);
            // Not spawned (no runtime), the future is dropped with `task`, which leaves
            // none running.
            let probing = probe(Arc::downgrade(&self.inner), self.inner.gone.clone(), task);
            distlock_core::backend::spawn_background(probing);
        }
    }
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The holds still held (dropping the others from the list), or `None` when there are
    /// none left, in which case the task must end (decided under the lock, so an
    /// enrolment either sees the task running or starts a new one).
    fn live(&self) -> Option<Vec<Arc<MySqlHold>>> {
        let mut state = self.state();
        let mut live = Vec::with_capacity(state.holds.len());
        state.holds.retain(|weak| match weak.upgrade() {
            Some(hold) if hold.is_held() => {
                live.push(hold);
                true
            }
            _ => false,
        });
        if live.is_empty() {
            state.task = Weak::new();
            return None;
        }
        Some(live)
    }
}

/// `_task` marks the task alive in the prober's state for as long as this future exists.
async fn probe(inner: Weak<Inner>, gone: Arc<Notify>, _task: Arc<()>) {
    let Some(interval) = inner.upgrade().map(|i| i.interval) else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = gone.notified() => {}
        }
        let Some(holds) = inner.upgrade().and_then(|inner| inner.live()) else {
            return;
        };
        // Each hold has its own session: probe them side by side, each bounded by its
        // probe timeout, so one stuck session cannot delay the others' loss.
        futures::future::join_all(holds.iter().map(|hold| hold.check())).await;
    }
}
