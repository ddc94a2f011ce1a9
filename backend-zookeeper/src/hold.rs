//! One held lock: its node, its session, and the clean-up of acquires that did not finish.

use std::sync::Arc;

use async_trait::async_trait;
use distlock_core::backend::{Armed, Hold, HoldStatus, Undo};
use distlock_core::observe::LossReason;
use distlock_core::{LockError, Result};
use tokio::sync::oneshot;
use zookeeper_client::{Error as ZkError, EventType};

use crate::error::zk_error;
use crate::recipe::{delete_by_token, delete_node, reply_lost, retry, Watches, RETRIES};
use crate::session::Session;
use crate::watching::Watching;

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
