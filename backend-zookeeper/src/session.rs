//! One ZooKeeper session, shared by every lock of a client, and the watcher that turns
//! its end into lost signals.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use distlock_core::backend::HoldStatus;
use distlock_core::observe::LossReason;
use distlock_core::{LockError, Result};
use tokio::sync::watch;
use zookeeper_client::{Client, SessionState, StateWatcher};

use crate::config::ZkConfig;
use crate::error::zk_error;

/// A live session. Holds register their status here; when the session ends (expired,
/// closed, auth failed, or disconnected past the grace period) every registered hold is
/// marked lost and the session is never used again.
pub(crate) struct Session {
    client: Mutex<Option<Client>>,
    ended: watch::Sender<Option<LockError>>,
    holds: Mutex<HashMap<u64, HoldStatus>>,
    next_hold: AtomicU64,
    /// Negotiated by the server.
    timeout: Duration,
    id: i64,
    // Dropped with the session, which stops its monitor.
    _alive: watch::Sender<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &format_args!("{:#x}", self.id))
            .field("timeout", &self.timeout)
            .field("alive", &self.is_alive())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Session {
    /// Connects a new session (bounded by the config's connect timeout).
    pub(crate) async fn connect(config: &ZkConfig) -> Result<Arc<Session>> {
        let mut connector = Client::connector().with_session_timeout(config.session_timeout);
        if let Some(creds) = &config.credentials {
            connector = connector.with_auth("digest", &creds.auth_bytes());
        }
        let limit = config.connect_timeout();
        let connecting = tokio::time::timeout(limit, connector.connect(&config.hosts));
        let outcome = tokio::select! {
            outcome = connecting => outcome,
            refused = crate::refused::all_refused(&config.hosts) => return Err(refused),
        };
        let client = match outcome {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(zk_error(e, "connecting to ZooKeeper")),
            Err(_) => {
                return Err(LockError::connection(format!(
                    "no ZooKeeper session with {} within {limit:?}",
                    config.hosts
                )))
            }
        };
        let (alive_tx, alive_rx) = watch::channel(());
        let (ended, _) = watch::channel(None);
        let watcher = client.state_watcher();
        let session = Arc::new(Session {
            timeout: client.session_timeout(),
            id: client.session_id().0,
            client: Mutex::new(Some(client)),
            ended,
            holds: Mutex::new(HashMap::new()),
            next_hold: AtomicU64::new(1),
            _alive: alive_tx,
        });
        tokio::spawn(monitor(Arc::downgrade(&session), watcher, alive_rx));
        Ok(session)
    }

    /// The session id (as the server knows it).
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// How long a disconnection may last before holds are declared lost. The server may
    /// expire the session `timeout` after it last heard from us. The client crate notices a
    /// silent connection when nothing arrived for 2/5 of the timeout, checked every 1/20 of
    /// it: up to 9/20 of the timeout after the last reply. A grace of 2/5 then reports the
    /// loss by 17/20 of the timeout, leaving 3/20 (1.5 s of a 10 s session) for timer and
    /// scheduling delays before anyone else can be granted the lock. (Half the timeout left
    /// 1/20, and a silent partition measured under 0.1 of the timeout.)
    pub(crate) fn grace(&self) -> Duration {
        self.timeout * 2 / 5
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.ended.borrow().is_none()
    }

    /// Why the session ended, if it did.
    pub(crate) fn end_reason(&self) -> Option<LockError> {
        self.ended.borrow().clone()
    }

    /// A client handle on this session, unless it ended.
    pub(crate) fn client(&self) -> Result<Client> {
        if let Some(why) = self.end_reason() {
            return Err(LockError::connection(format!(
                "the ZooKeeper session ended: {}",
                why.message()
            )));
        }
        lock(&self.client)
            .clone()
            .ok_or_else(|| LockError::connection("the ZooKeeper session ended"))
    }

    /// Resolves when the session ends, with the reason.
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes state.
    pub(crate) async fn ended(&self) -> LockError {
        let mut rx = self.ended.subscribe();
        let seen = rx.wait_for(|e| e.is_some()).await.map(|e| e.clone());
        match seen {
            Ok(e) => e.unwrap_or_else(|| LockError::lost("the ZooKeeper session ended")),
            // The sender lives in `self`.
            Err(_) => std::future::pending().await,
        }
    }

    /// Ends the session if the client crate already knows it is over (an operation may
    /// fail with "session expired" a moment before the state change reaches the monitor).
    /// Returns whether the session is over.
    pub(crate) fn check_ended(&self) -> bool {
        let state = lock(&self.client).as_ref().map(|c| c.state());
        match state {
            None => true,
            Some(state) if state.is_terminated() => {
                self.end(LockError::lost(format!(
                    "the ZooKeeper session ended ({state})"
                )));
                true
            }
            Some(_) => !self.is_alive(),
        }
    }

    /// Registers a hold so that the session's end marks it lost. Returns `None` (and marks
    /// the status lost) when the session already ended.
    pub(crate) fn register(&self, status: &HoldStatus) -> Option<u64> {
        let id = self.next_hold.fetch_add(1, Ordering::Relaxed);
        lock(&self.holds).insert(id, status.clone());
        // Checked after inserting, so an end racing with the insert is never missed.
        if let Some(why) = self.end_reason() {
            lock(&self.holds).remove(&id);
            status.mark_lost_because(LossReason::SessionExpired, why);
            return None;
        }
        Some(id)
    }

    pub(crate) fn unregister(&self, id: u64) {
        lock(&self.holds).remove(&id);
    }

    /// Ends the session for good: every hold is lost, and the client handle is dropped so
    /// the session closes (taking its ephemeral nodes) once no operation uses it any more.
    pub(crate) fn end(&self, why: LockError) {
        let changed = self.ended.send_if_modified(|e| {
            if e.is_none() {
                *e = Some(why.clone());
                true
            } else {
                false
            }
        });
        if !changed {
            return;
        }
        tracing::warn!(session = %format_args!("{:#x}", self.id), reason = %why, "ZooKeeper session ended; its holds are lost");
        let holds: Vec<HoldStatus> = lock(&self.holds).drain().map(|(_, s)| s).collect();
        for status in holds {
            status.mark_lost_because(LossReason::SessionExpired, why.clone());
        }
        lock(&self.client).take();
    }
}

/// Watches the session's state until it ends or the session object is dropped.
async fn monitor(
    session: Weak<Session>,
    mut watcher: StateWatcher,
    mut alive: watch::Receiver<()>,
) {
    let mut state = watcher.state();
    loop {
        let grace = match session.upgrade() {
            Some(s) => s.grace(),
            None => return,
        };
        let ended = match state {
            SessionState::Expired => Some(LockError::lost("the ZooKeeper session expired")),
            SessionState::Closed => Some(LockError::lost("the ZooKeeper session was closed")),
            SessionState::AuthFailed => Some(LockError::lost(
                "ZooKeeper authentication failed for the session",
            )),
            _ => None,
        };
        if let Some(why) = ended {
            if let Some(s) = session.upgrade() {
                s.end(why);
            }
            return;
        }
        let disconnected = state == SessionState::Disconnected;
        let timer = async {
            if disconnected {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            next = watcher.changed() => state = next,
            _ = alive.changed() => return,
            _ = timer => {
                if let Some(s) = session.upgrade() {
                    s.end(LockError::lost(format!(
                        "disconnected from ZooKeeper for longer than {grace:?} (2/5 of the session timeout); the session may have expired"
                    )));
                }
                return;
            }
        }
    }
}
