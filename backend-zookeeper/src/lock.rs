//! The client users hold: one session shared by every lock, replaced when it ends.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, ErrorKind, GuardParts, HoldStatus, LockError,
    LockGuard, LockName, Result, Wait,
};
use tokio::sync::Mutex;
use tokio::time::Instant;
use zookeeper_client::{Acls, Client};

use crate::config::ZkConfig;
use crate::hold::{Pending, ZkHold};
use crate::recipe::Layout;
use crate::session::Session;

/// A ZooKeeper lock client. Cheap to clone: clones share one session, which serves every
/// lock they take. When the session ends (expiry, close, or a disconnection longer than
/// 2/5 of the session timeout) every hold taken on it is reported lost, and the next
/// acquire opens a new session.
#[derive(Clone)]
pub struct ZkLock {
    inner: Arc<Inner>,
}

struct Inner {
    config: ZkConfig,
    current: Mutex<Option<Arc<Session>>>,
}

impl fmt::Debug for ZkLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let session = self
            .inner
            .current
            .try_lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| format!("{:#x}", s.id())));
        f.debug_struct("ZkLock")
            .field("config", &self.inner.config)
            .field("session", &session)
            .finish()
    }
}

impl ZkLock {
    /// Connects with `config` (establishing the first session now, so a bad address or
    /// credentials show at once).
    ///
    /// # Cancel safety
    /// Cancel safe: a session that was being established is dropped and closed.
    pub async fn connect(config: ZkConfig) -> Result<Self> {
        config.validate()?;
        let lock = ZkLock {
            inner: Arc::new(Inner {
                config,
                current: Mutex::new(None),
            }),
        };
        lock.session().await?;
        Ok(lock)
    }

    /// Connects to a `zk://` URL (see [`ZkConfig`] for its form).
    ///
    /// # Cancel safety
    /// Cancel safe, like [`ZkLock::connect`].
    pub async fn from_url(url: &str) -> Result<Self> {
        Self::connect(ZkConfig::from_url(url)?).await
    }

    /// The configuration.
    pub fn config(&self) -> &ZkConfig {
        &self.inner.config
    }

    /// The parent node of `name`'s lock: `<chroot><root>/<escaped name>` (hashed when the
    /// escaped name is longer than 1024 bytes). Its children are the contenders,
    /// `_c_<owner token>-lock-<sequence>`.
    pub fn lock_path(&self, name: &LockName) -> String {
        format!(
            "{}/{}",
            self.inner.config.base_path(),
            crate::recipe::segment(name)
        )
    }

    /// The client crate's handle on the current session (opening one if needed), for
    /// operations distlock does not offer. Closing or expiring this session loses every
    /// hold of this client. Do not keep the handle: once distlock declares the session over
    /// (after a long disconnection) it closes it by dropping its own handles, and a handle
    /// kept elsewhere would keep the session, and the nodes of its lost holds, alive.
    ///
    /// # Cancel safety
    /// Cancel safe, like [`ZkLock::connect`].
    pub async fn zk_client(&self) -> Result<Client> {
        self.session().await?.client()
    }

    fn acls(&self) -> Acls<'static> {
        if self.inner.config.creator_only {
            Acls::creator_all()
        } else {
            Acls::anyone_all()
        }
    }

    /// The live session, or a new one when the last one ended.
    async fn session(&self) -> Result<Arc<Session>> {
        let mut current = self.inner.current.lock().await;
        if let Some(session) = current.as_ref().filter(|s| s.is_alive()) {
            return Ok(session.clone());
        }
        let session = Session::connect(&self.inner.config).await?;
        *current = Some(session.clone());
        Ok(session)
    }

    async fn acquire_on(
        &self,
        session: Arc<Session>,
        name: &LockName,
        wait: Wait,
        deadline: Option<Instant>,
    ) -> Result<Option<LockGuard>> {
        let client = session.client()?;
        let token = distlock_core::new_owner_token();
        let parent = self.lock_path(name);
        let base = self.inner.config.base_path();
        let layout = Layout {
            base: &base,
            parent: &parent,
            acls: self.acls(),
        };
        // Armed before the create is sent: whatever happens next, a node left behind is
        // found by token and deleted.
        let mut pending = Pending {
            session: session.clone(),
            parent: parent.clone(),
            token: token.clone(),
            path: None,
            armed: true,
        };
        // The whole create-and-wait runs under the deadline, so a connection that hangs a
        // request cannot stretch a limited wait.
        let work = async {
            let (path, czxid) = layout.create_node(&client, &token).await?;
            pending.path = Some(path.clone());
            let granted = layout
                .wait_turn(&client, &session, &path, &token, wait != Wait::Try)
                .await?;
            Ok::<_, LockError>(granted.then_some((path, czxid)))
        };
        let outcome = match deadline {
            Some(at) => tokio::time::timeout_at(at, work).await.unwrap_or(Ok(None)),
            None => work.await,
        }?;
        let Some((path, czxid)) = outcome else {
            pending.delete_now().await;
            return Ok(None);
        };

        let status = HoldStatus::new();
        let Some(registration) = session.register(&status) else {
            return Err(LockError::connection(
                "the ZooKeeper session ended just as the lock was granted",
            ));
        };
        pending.armed = false;
        let hold = Arc::new(ZkHold {
            session,
            path,
            registration,
        });
        hold.watch_own_node(status.clone());
        Ok(Some(LockGuard::new(GuardParts {
            name: name.clone(),
            owner_token: token,
            fencing_token: Some(czxid as u64),
            hold,
            status,
            lease: None,
        })))
    }
}

#[async_trait]
impl DistributedLock for ZkLock {
    /// Creates an EPHEMERAL_SEQUENTIAL contender node and waits (per `options.wait`) until
    /// it is the lowest; `options.ttl` and `options.renew` are ignored (holds last as long
    /// as the session).
    ///
    /// A waiting acquire rides out a leader election or a reconnect: connection failures
    /// are retried with jittered backoff until the wait's deadline, but after twice the
    /// connect timeout of failures in a row the last one is returned (kind `Connection`),
    /// even under `Wait::Forever`. A try reports a connection failure at once. A retry
    /// starts a new contender node, so it queues behind those that arrived meanwhile.
    ///
    /// # Cancel safety
    /// Cancel safe: a dropped acquire deletes its node in the background (found by path, or
    /// by owner token if the create's reply had not arrived); without a runtime, the
    /// session's end removes it.
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        // A zero wait would time out before its first look: it is a try.
        let wait = match options.wait {
            Wait::Up(limit) if limit.is_zero() => Wait::Try,
            other => other,
        };
        // A limit beyond the clock's range (`Duration::MAX`) waits as long as it takes.
        let deadline = match wait {
            Wait::Up(limit) => Instant::now().checked_add(limit),
            _ => None,
        };
        let mut retry = ConnectionRetry::new(self.inner.config.connect_timeout() * 2);
        // A session that turns out to be over gets one replacement per acquire, even a try.
        let mut replaced = false;
        loop {
            let session = match deadline {
                Some(at) => tokio::time::timeout_at(at, self.session())
                    .await
                    .map_err(|_| LockError::connection("no ZooKeeper session within the wait"))?,
                None => self.session().await,
            };
            let outcome = match session {
                Ok(session) => {
                    let outcome = self.acquire_on(session.clone(), name, wait, deadline).await;
                    if matches!(&outcome, Err(e) if e.kind() == ErrorKind::Connection)
                        && !replaced
                        && session.check_ended()
                    {
                        replaced = true;
                        tracing::debug!("retrying the acquire on a new session");
                        continue;
                    }
                    outcome
                }
                Err(e) => Err(e),
            };
            match outcome {
                // A waiting acquire rides out a leader election or a reconnect, as Curator's
                // retry policy does; a try reports the failure at once.
                Err(e) if e.kind() == ErrorKind::Connection && wait != Wait::Try => {
                    match retry.pause(deadline) {
                        Some(pause) => {
                            tracing::debug!(error = %e, ?pause, "ZooKeeper unreachable; retrying the acquire");
                            tokio::time::sleep(pause).await;
                        }
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_fencing(true)
            .with_fifo(true)
            .with_lost_detection(true)
            .with_cross_process(true)
    }

    fn backend_name(&self) -> &'static str {
        "zookeeper"
    }

    /// Holders, breaking a hold and the doctor: see [`Inspect`](distlock_core::Inspect).
    fn inspect(&self) -> Option<&dyn distlock_core::Inspect> {
        Some(self)
    }
}

/// Backoff for a waiting acquire whose store is unreachable: retries until the caller's
/// deadline, but for no longer than `window` of failures in a row, so that an outage
/// surfaces as an error even under `Wait::Forever`.
struct ConnectionRetry {
    window: Duration,
    first_failure: Option<Instant>,
    last_failure: Option<Instant>,
    next_pause: Duration,
}

impl ConnectionRetry {
    const FIRST_PAUSE: Duration = Duration::from_millis(50);
    const MAX_PAUSE: Duration = Duration::from_secs(1);

    fn new(window: Duration) -> Self {
        ConnectionRetry {
            window,
            first_failure: None,
            last_failure: None,
            next_pause: Self::FIRST_PAUSE,
        }
    }

    /// How long to pause before the next attempt, or `None` to give up.
    fn pause(&mut self, deadline: Option<Instant>) -> Option<Duration> {
        let now = Instant::now();
        // A failing attempt ends within a connect timeout (half the window): one that took
        // longer got through and waited, so this failure starts a new run.
        if self
            .last_failure
            .is_some_and(|last| now.duration_since(last) > self.window)
        {
            self.first_failure = None;
            self.next_pause = Self::FIRST_PAUSE;
        }
        self.last_failure = Some(now);
        let first = *self.first_failure.get_or_insert(now);
        // Jittered so that clients cut off together do not come back in lockstep.
        let pause = self.next_pause.mul_f64(rand::random_range(0.5..=1.0));
        self.next_pause = (self.next_pause * 2).min(Self::MAX_PAUSE);
        let resume_at = now + pause;
        let within_window = resume_at.duration_since(first) < self.window;
        let within_wait = deadline.is_none_or(|at| resume_at < at);
        (within_window && within_wait).then_some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn connection_retry_gives_up_after_its_window_and_starts_over_after_progress() {
        let window = Duration::from_secs(4);
        let mut retry = ConnectionRetry::new(window);
        let mut failing = Duration::ZERO;
        while let Some(pause) = retry.pause(None) {
            assert!(pause <= ConnectionRetry::MAX_PAUSE);
            tokio::time::advance(pause).await;
            failing += pause;
        }
        assert!(failing < window && failing > window / 2, "{failing:?}");

        // An attempt that then waited for an hour made progress: a new run of failures.
        tokio::time::advance(Duration::from_secs(3600)).await;
        let pause = retry.pause(None).expect("a fresh run of retries");
        assert!(pause <= ConnectionRetry::FIRST_PAUSE);

        // The caller's deadline cuts the run short.
        let mut retry = ConnectionRetry::new(window);
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(retry.pause(Some(soon)), None);
    }
}
