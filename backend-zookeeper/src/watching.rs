//! A hold's watch that costs no task until something happens: the future that watches a
//! held node (see [`watch_node`](crate::hold::watch_node)) is parked and spawned only when
//! one of its watches fires, or a reply comes in, while the hold stands. An uncontended
//! cycle then spawns nothing: the event its own release's `delete` fires is only recorded,
//! and a confirmed release drops the parked watch unrun.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};

use distlock_core::backend::spawn_background;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

type WatchTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The watch of one hold (see [`watch_node`](crate::hold::watch_node)). Dropped with the hold: a parked watch is
/// dropped at once (which removes its watches), a spawned one ends on `_stop`.
pub(crate) struct Watching {
    parked: Arc<Parked>,
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for Watching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watching").finish_non_exhaustive()
    }
}

impl Watching {
    /// Polls `task` once, then parks it until it is woken. `stop` is the task's: dropped with
    /// the hold, it ends `task` once spawned.
    pub(crate) fn start(
        task: impl Future<Output = ()> + Send + 'static,
        stop: oneshot::Sender<()>,
    ) -> Self {
        let parked = Arc::new(Parked {
            runtime: Handle::try_current().ok(),
            slot: Mutex::new(Slot {
                stage: Stage::Polling,
                woken: false,
                releasing: 0,
            }),
        });
        // Unconstrained: out of the coop budget, the `stop` receiver would wake the watch at
        // once just to be polled again, spawning a task for nothing. It only ever awaits
        // events.
        let mut task: WatchTask = Box::pin(tokio::task::unconstrained(task));
        // One poll here sends the `exists` now if needed: parked, the watch might run only
        // after the caller released. Its wake-ups come to `parked`.
        let waker = Waker::from(parked.clone());
        if task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            parked.park(task);
        }
        Watching {
            parked,
            _stop: stop,
        }
    }

    /// Marks a release under way until the returned mark is confirmed or dropped: the
    /// event our own `delete` fires must not spawn the watch just to see it exit.
    pub(crate) fn releasing(&self) -> ReleaseMark<'_> {
        self.parked.lock().releasing += 1;
        ReleaseMark {
            parked: &self.parked,
            confirmed: false,
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // Taken out first: the future's watches hold our waker, a cycle only this breaks.
        // Dropped outside the lock, as dropping watches talks to the connection.
        let task = self.parked.lock().take();
        drop(task);
    }
}

/// A hold's watch future with what decides whether it runs: parked until woken, spawned
/// on a wake-up unless a release is under way (then the wake-up waits for its outcome).
struct Parked {
    /// The runtime the hold was acquired on, captured because a wake-up may come from any
    /// thread (a watch event is delivered by the connection's task).
    runtime: Option<Handle>,
    slot: Mutex<Slot>,
}

struct Slot {
    stage: Stage,
    /// A wake-up came while the watch could not be spawned (being polled, or releasing).
    woken: bool,
    /// Releases under way (a cancelled release's background retry may overlap it).
    releasing: usize,
}

enum Stage {
    /// In its first poll, inside [`watch_node`].
    Polling,
    Parked(WatchTask),
    /// Spawned, or dropped: wake-ups are the task's business, or nobody's.
    Gone,
}

impl Parked {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // The slot stays consistent whatever panicked: each change is one assignment.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks the future after its first poll, or spawns it if already woken.
    fn park(&self, task: WatchTask) {
        let run = {
            let mut slot = self.lock();
            if slot.woken && slot.releasing == 0 {
                slot.stage = Stage::Gone;
                Some(task)
            } else {
                slot.stage = Stage::Parked(task);
                None
            }
        };
        if let Some(task) = run {
            self.spawn(task);
        }
    }

    fn spawn(&self, task: WatchTask) {
        match &self.runtime {
            Some(runtime) => drop(runtime.spawn(task)),
            None => {
                spawn_background(task);
            }
        }
    }
}

impl Slot {
    fn take(&mut self) -> Option<WatchTask> {
        match std::mem::replace(&mut self.stage, Stage::Gone) {
            Stage::Parked(task) => Some(task),
            other => {
                self.stage = other;
                None
            }
        }
    }
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let run = {
            let mut slot = self.lock();
            slot.woken = true;
            if slot.releasing > 0 {
                None
            } else {
                slot.take()
            }
        };
        if let Some(task) = run {
            self.spawn(task);
        }
    }
}

/// A release under way (see [`Watching::releasing`]).
pub(crate) struct ReleaseMark<'a> {
    parked: &'a Parked,
    confirmed: bool,
}

impl ReleaseMark<'_> {
    /// The node is deleted: the parked watch has nothing left to notice.
    pub(crate) fn confirmed(mut self) {
        self.confirmed = true;
        let task = {
            let mut slot = self.parked.lock();
            slot.releasing = slot.releasing.saturating_sub(1);
            slot.take()
        };
        if let Some(mut task) = task {
            // The deletion's event came in before the delete's reply: one poll takes it,
            // so the fired watch is dropped without a word to the connection's task. The
            // hold is marked released before its release, so the watch then ends.
            let _ = task.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        }
    }
}

impl Drop for ReleaseMark<'_> {
    fn drop(&mut self) {
        if self.confirmed {
            return;
        }
        // The release failed or was cancelled: the node may still be ours, so a wake-up
        // it held back (a foreign delete among them) is acted on now.
        let run = {
            let mut slot = self.parked.lock();
            slot.releasing = slot.releasing.saturating_sub(1);
            if slot.releasing == 0 && slot.woken {
                slot.take()
            } else {
                None
            }
        };
        if let Some(task) = run {
            self.parked.spawn(task);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// What happened to a watch future: its polls, whether it saw its event, whether it was
    /// dropped.
    #[derive(Default)]
    struct Seen {
        polls: AtomicUsize,
        event: AtomicBool,
        dropped: AtomicBool,
    }

    struct Probe(Arc<Seen>);

    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.dropped.store(true, Ordering::SeqCst);
        }
    }

    /// A stand-in for the watch: waits for `event` (the watch firing), counting its polls.
    fn watched() -> (Watching, oneshot::Sender<()>, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let (fire, mut event) = oneshot::channel::<()>();
        let probe = Probe(seen.clone());
        let task = std::future::poll_fn(move |cx| {
            let seen = &probe.0;
            seen.polls.fetch_add(1, Ordering::SeqCst);
            match Pin::new(&mut event).poll(cx) {
                std::task::Poll::Ready(_) => {
                    seen.event.store(true, Ordering::SeqCst);
                    std::task::Poll::Ready(())
                }
                std::task::Poll::Pending => std::task::Poll::Pending,
            }
        });
        let (stop, _) = oneshot::channel();
        (Watching::start(task, stop), fire, seen)
    }

    async fn let_tasks_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_parked_watch_runs_only_once_woken() {
        let (_watching, fire, seen) = watched();
        let_tasks_run().await;
        assert_eq!(seen.polls.load(Ordering::SeqCst), 1, "only the first poll");
        fire.send(()).unwrap();
        let_tasks_run().await;
        assert!(seen.event.load(Ordering::SeqCst), "spawned on its wake-up");
    }

    #[tokio::test]
    async fn a_confirmed_release_drops_the_watch_unrun() {
        let (watching, fire, seen) = watched();
        let mark = watching.releasing();
        fire.send(()).unwrap();
        let_tasks_run().await;
        assert_eq!(
            seen.polls.load(Ordering::SeqCst),
            1,
            "held back while releasing"
        );
        mark.confirmed();
        // The one poll that takes the fired event, inline.
        assert_eq!(seen.polls.load(Ordering::SeqCst), 2);
        assert!(seen.dropped.load(Ordering::SeqCst));
        let_tasks_run().await;
        assert_eq!(seen.polls.load(Ordering::SeqCst), 2, "never spawned");
    }

    #[tokio::test]
    async fn a_failed_or_cancelled_release_acts_on_the_wake_up_it_held_back() {
        let (watching, fire, seen) = watched();
        let mark = watching.releasing();
        fire.send(()).unwrap();
        let_tasks_run().await;
        assert!(!seen.event.load(Ordering::SeqCst));
        drop(mark);
        let_tasks_run().await;
        assert!(
            seen.event.load(Ordering::SeqCst),
            "spawned once the release failed"
        );
    }

    #[tokio::test]
    async fn overlapping_releases_hold_the_wake_up_until_the_last_ends() {
        let (watching, fire, seen) = watched();
        let (first, second) = (watching.releasing(), watching.releasing());
        fire.send(()).unwrap();
        drop(first);
        let_tasks_run().await;
        assert!(
            !seen.event.load(Ordering::SeqCst),
            "one release still under way"
        );
        drop(second);
        let_tasks_run().await;
        assert!(seen.event.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_failed_release_without_a_wake_up_leaves_the_watch_parked() {
        let (watching, fire, seen) = watched();
        drop(watching.releasing());
        let_tasks_run().await;
        assert_eq!(seen.polls.load(Ordering::SeqCst), 1);
        fire.send(()).unwrap();
        let_tasks_run().await;
        assert!(seen.event.load(Ordering::SeqCst), "still watching");
    }

    #[tokio::test]
    async fn dropping_the_hold_drops_a_parked_watch_at_once() {
        let (watching, _fire, seen) = watched();
        drop(watching);
        assert!(seen.dropped.load(Ordering::SeqCst));
        assert_eq!(seen.polls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_wake_up_during_the_first_poll_spawns_the_watch() {
        let seen = Arc::new(Seen::default());
        let probe = Probe(seen.clone());
        let mut first = true;
        let task = std::future::poll_fn(move |cx| {
            probe.0.polls.fetch_add(1, Ordering::SeqCst);
            if std::mem::take(&mut first) {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            } else {
                probe.0.event.store(true, Ordering::SeqCst);
                std::task::Poll::Ready(())
            }
        });
        let (stop, _) = oneshot::channel();
        let _watching = Watching::start(task, stop);
        let_tasks_run().await;
        assert!(seen.event.load(Ordering::SeqCst));
    }
}
