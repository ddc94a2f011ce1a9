//! One held lock: its node, its session, and the clean-up of acquires that did not finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};

use async_trait::async_trait;
use distlock_core::backend::{spawn_background, Armed, Hold, HoldStatus, Undo};
use distlock_core::observe::LossReason;
use distlock_core::{LockError, Result};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use zookeeper_client::{Error as ZkError, EventType};

use crate::error::zk_error;
use crate::recipe::{delete_by_token, delete_node, reply_lost, retry, Watches, RETRIES};
use crate::session::Session;

/// Which of a hold's watches fired, and how.
enum Fired {
    Own(EventType),
    Children(EventType),
}

/// A held lock node. Released by deleting the node; a hold whose session ended has no
/// node any more, so its release reports `NotHeld`.
#[derive(Debug)]
pub(crate) struct ZkHold {
    pub session: Arc<Session>,
    pub path: String,
    pub registration: u64,
    /// Dropped with the hold, which ends the watch on its node (see [`watch_node`]).
    pub watching: Watching,
}

impl ZkHold {
    fn gone(&self) -> LockError {
        match self.session.end_reason() {
            Some(why) => LockError::not_held(format!(
                "the lock's ZooKeeper session ended ({}); its node went with it",
                why.message()
            )),
            None => LockError::not_held("the lock node no longer exists"),
        }
    }
}

/// Watches a held node so that a deletion by anyone else (an operator, a client with the
/// rights) reads as a loss instead of passing unnoticed. Takes over the watches the acquire
/// set: the listing's children watch on the parent (it fires on any change among the
/// contenders, our node's deletion included) and the `exists` watch on our node when the
/// acquire waited. Only when neither is left does it send an `exists` on the node (before
/// returning when the acquire set none, so the session serves it before the release's
/// `delete`; the reply is awaited in the background). An uncontended hold thus costs no
/// request of its own: the release's `delete` fires the children watch, and a released
/// hold sets no new one. A write to the node fires the `exists` watch: it is set again. A
/// watch still set when the hold is dropped, e.g. after a failed release or a leak, is
/// removed then.
///
/// No task runs until something happens: the watch is parked (see [`Watching`]) and
/// spawned only when one of its watches fires, or a reply comes in, while the hold stands.
/// The event our own release's `delete` fires is only recorded, and a confirmed release
/// drops the parked watch unrun.
pub(crate) fn watch_node(
    session: Arc<Session>,
    path: String,
    status: HoldStatus,
    watches: Watches,
) -> Watching {
    let (stop_tx, mut stop) = oneshot::channel();
    let Watches {
        own: mut watch,
        mut children,
    } = watches;
    let held = status.clone();
    let deleted = move || {
        status.mark_lost_because(
            LossReason::Broken,
            LockError::lost("the lock node was deleted by someone else"),
        );
    };
    let task = async move {
        loop {
            if watch.is_none() && children.is_none() {
                // Released (or lost): nothing left to notice.
                if !held.is_held() {
                    return;
                }
                // An ended session: its monitor reports the loss.
                let Ok(client) = session.client() else { return };
                // A reply lost to a connection loss is asked again (the session survived
                // the reconnect, or the next request fails for good): without a watch, a
                // foreign delete would pass unnoticed.
                let checked = tokio::select! {
                    biased;
                    checked = retry(|| client.check_and_watch_stat(&path)) => checked,
                    _ = &mut stop => return,
                };
                match checked {
                    Ok((Some(_), watcher)) => watch = Some(Box::pin(watcher.changed())),
                    Ok((None, _)) => return deleted(),
                    // The session monitor reports session-level failures.
                    Err(_) => return,
                }
            }
            let fired = {
                let own = async {
                    match watch.as_mut() {
                        Some(w) => w.as_mut().await,
                        None => std::future::pending().await,
                    }
                };
                let siblings = async {
                    match children.as_mut() {
                        Some(w) => w.as_mut().await,
                        None => std::future::pending().await,
                    }
                };
                // Biased: after a release, the deletion's event came in before the delete's
                // reply, so taking it drops a fired watch, which costs no request.
                tokio::select! {
                    biased;
                    event = own => Fired::Own(event.event_type),
                    event = siblings => Fired::Children(event.event_type),
                    _ = &mut stop => return,
                }
            };
            match fired {
                Fired::Own(EventType::NodeDeleted) => return deleted(),
                // Set again next turn (unless the children watch still covers the node).
                Fired::Own(EventType::NodeDataChanged) => watch = None,
                // Someone came or went, perhaps our node: unless an `exists` watch is still
                // set, one is set next turn (if the hold still stands).
                Fired::Children(t) if t != EventType::Session => children = None,
                // The session ended: its monitor reports the loss.
                Fired::Own(_) | Fired::Children(_) => return,
            }
        }
    };
    Watching::start(task, stop_tx)
}

type WatchTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The watch of one hold (see [`watch_node`]). Dropped with the hold: a parked watch is
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
    fn start(task: impl Future<Output = ()> + Send + 'static, stop: oneshot::Sender<()>) -> Self {
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
    fn releasing(&self) -> ReleaseMark<'_> {
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
struct ReleaseMark<'a> {
    parked: &'a Parked,
    confirmed: bool,
}

impl ReleaseMark<'_> {
    /// The node is deleted: the parked watch has nothing left to notice.
    fn confirmed(mut self) {
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

#[async_trait]
impl Hold for ZkHold {
    async fn release(&self) -> Result<()> {
        let releasing = self.watching.releasing();
        let result = self.until_session_ends(self.delete()).await;
        if result.is_ok() {
            releasing.confirmed();
        }
        if !matches!(&result, Err(e) if e.kind() == distlock_core::ErrorKind::Connection) {
            self.session.unregister(self.registration);
        }
        result
    }

    /// ZooKeeper holds have no lease: they last as long as the session. As on every backend
    /// without leases, `extend` only checks that the hold is still ours (its node exists
    /// and its session is alive): `Ok(())`, or `NotHeld` once stale or lost.
    async fn extend(&self, _ttl: std::time::Duration) -> Result<()> {
        let client = self.session.client().map_err(|_| self.gone())?;
        let checked = self.until_session_ends(async {
            match retry(|| client.check_stat(&self.path)).await {
                Ok(Some(_)) if self.session.is_alive() => Ok(()),
                Ok(_) | Err(ZkError::SessionExpired | ZkError::ClientClosed) => Err(self.gone()),
                Err(e) => Err(zk_error(e, "checking the lock node")),
            }
        });
        checked.await
    }
}

impl ZkHold {
    /// Runs `op`, unless the session is declared over first: while disconnected the client
    /// crate queues requests until it reconnects or gives the session up (7/5 of the
    /// timeout), but once the grace ran out the hold is lost and there is nothing to wait
    /// for. A request left queued is still sent if the connection comes back.
    async fn until_session_ends(
        &self,
        op: impl std::future::Future<Output = Result<()>>,
    ) -> Result<()> {
        tokio::select! {
            biased;
            result = op => result,
            _ = self.session.ended() => Err(self.gone()),
        }
    }

    async fn delete(&self) -> Result<()> {
        let client = self.session.client().map_err(|_| self.gone())?;
        let mut lost_reply = false;
        for _ in 0..RETRIES {
            match client.delete(&self.path, None).await {
                Ok(()) => return Ok(()),
                // An earlier attempt whose reply was lost did delete it.
                Err(ZkError::NoNode) if lost_reply && self.session.is_alive() => return Ok(()),
                Err(ZkError::NoNode | ZkError::SessionExpired | ZkError::ClientClosed) => {
                    return Err(self.gone())
                }
                Err(e) if reply_lost(&e) => lost_reply = true,
                Err(e) => return Err(zk_error(e, "deleting the lock node")),
            }
        }
        Err(LockError::connection(
            "could not delete the lock node: the connection kept failing",
        ))
    }
}

/// How long an acquire that gave up waits for its node's deletion before leaving it to
/// the background (a wait limit must be honoured even when the connection hangs).
const DELETE_NOW_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Cleans up after an acquire that did not finish (cancelled, timed out, failed): deletes
/// its node, found by path or, when the create's reply never came, by owner token. Kept in
/// an [`Armed`] by the acquire, so it runs in the background on drop; with no runtime the
/// session's end is the backstop.
#[derive(Debug)]
pub(crate) struct PendingNode {
    pub session: Arc<Session>,
    pub parent: String,
    pub token: String,
    pub path: Option<String>,
}

impl Undo for PendingNode {
    fn undo(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let client = self.session.client().ok();
        let (parent, token, path) = (
            std::mem::take(&mut self.parent),
            std::mem::take(&mut self.token),
            self.path.take(),
        );
        async move {
            let Some(client) = client else {
                return;
            };
            // Requests of one session are served in order, so this listing sees a create
            // that was sent before the acquire was dropped.
            if let Some(path) = path {
                let _ = delete_node(&client, &path).await;
            }
            if let Err(e) = delete_by_token(&client, &parent, &token).await {
                tracing::debug!(error = %e, "background clean-up of a cancelled acquire failed");
            }
        }
    }
}

/// Deletes the pending node now (an acquire that gave up must not stay queued ahead of the
/// next contender), for at most [`DELETE_NOW_LIMIT`]. If that runs out, fails, is
/// cancelled, or the node's name is not known yet, the drop cleans up in the background.
pub(crate) async fn delete_now(pending: &mut Armed<PendingNode>) {
    let state = pending.state();
    let (Some(path), Ok(client)) = (&state.path, state.session.client()) else {
        return;
    };
    let deleted = tokio::time::timeout(DELETE_NOW_LIMIT, delete_node(&client, path)).await;
    if matches!(deleted, Ok(Ok(()))) {
        pending.disarm();
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
