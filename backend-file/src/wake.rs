//! Waking waiters when a lock file is released, in this process or another.
//!
//! A holder releases by unlocking and then closing its lock file, which it opened for
//! writing: on Linux that close is an inotify `IN_CLOSE_WRITE` event on the directory, seen
//! by every process watching it (a crashed holder's files are closed by the kernel, with the
//! same event). Waiters keep their own file open while they wait, so only releases, given-up
//! waits and one-off tries make such events, never a waiter's retry: a wake-up is one look
//! at the queue per waiter and a `try_lock` by the first, not a spin. Ticket files live in
//! subdirectories, which the (non-recursive) watch does not see. In-process releases also wake waiters directly.
//! Where no watcher can run (other systems, inotify limits reached), waiters fall back to
//! polling.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// The release wake-ups of one client (shared by its clones).
pub(crate) struct Wakeups {
    released: Arc<Notify>,
    /// Started on the first wait; `None` when no watcher could be started.
    watcher: OnceLock<Option<Watch>>,
}

impl Wakeups {
    pub(crate) fn new() -> Self {
        Wakeups {
            released: Arc::new(Notify::new()),
            watcher: OnceLock::new(),
        }
    }

    /// Starts watching `dir` for releases by other processes, once. Whether a watcher runs:
    /// without one, waiters must poll.
    pub(crate) fn watch(&self, dir: &Path) -> bool {
        self.watcher
            .get_or_init(|| Watch::start(dir, self.released.clone()))
            .is_some()
    }

    /// A future that completes at the next release seen after this call (even if it is
    /// polled later).
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.released.notified()
    }

    /// For the hold: the in-process wake-up handle.
    pub(crate) fn handle(&self) -> Arc<Notify> {
        self.released.clone()
    }
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeups")
            .field("watching", &self.watcher.get().map(Option::is_some))
            .finish()
    }
}

/// A running directory watcher; dropping it stops its thread.
#[cfg(target_os = "linux")]
struct Watch(#[allow(dead_code)] notify::RecommendedWatcher);

#[cfg(target_os = "linux")]
impl Watch {
    fn start(dir: &Path, released: Arc<Notify>) -> Option<Self> {
        use notify::event::{AccessKind, AccessMode, EventKind};
        use notify::{RecursiveMode, Watcher};
        let started = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let closed = matches!(
                event.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
            );
            let lock_file = event
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "lock"));
            if closed && lock_file {
                released.notify_waiters();
            }
        })
        .and_then(|mut watcher| {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
        match started {
            Ok(watcher) => Some(Watch(watcher)),
            Err(e) => {
                tracing::debug!(error = %e, "no lock-file watcher: waiters poll");
                None
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
struct Watch;

#[cfg(not(target_os = "linux"))]
impl Watch {
    fn start(_dir: &Path, _released: Arc<Notify>) -> Option<Self> {
        None
    }
}
