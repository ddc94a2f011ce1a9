//! The client users hold: one session shared by every lock, replaced when it ends.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use distlock_core::backend::{Armed, ConnectionRetry, Deadline, GuardParts, HoldStatus};
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, ErrorKind, LockError, LockGuard, LockName,
    Result,
};
use tokio::sync::Mutex;
use zookeeper_client::{Acls, Client};

use crate::config::ZkConfig;
use crate::hold::{delete_now, watch_node, PendingNode, ZkHold};
use crate::recipe::{Layout, Turn};
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
        deadline: &Deadline,
    ) -> Result<Option<LockGuard>> {
        let client = session.client()?;
        let token = distlock_core::backend::new_owner_token();
        let parent = self.lock_path(name);
        let base = self.inner.config.base_path();
        let layout = Layout {
            base: &base,
            parent: &parent,
            acls: self.acls(),
        };
        // Armed before the create is sent: whatever happens next, a node left behind is
        // found by token and deleted.
        let mut pending = Armed::new(PendingNode {
            session: session.clone(),
            parent: parent.clone(),
            token: token.clone(),
            path: None,
        });
        // The whole create-and-wait runs under the deadline, so a connection that hangs a
        // request cannot stretch a limited wait.
        let work = async {
            let (path, czxid, listed) = layout.create_node(&client, &token).await?;
            pending.state_mut().path = Some(path.clone());
            let turn = layout
                .wait_turn(&client, &session, &path, &token, !deadline.is_try(), listed)
                .await?;
            Ok::<_, LockError>(match turn {
                Turn::Held(watches) => Ok((path, czxid, watches)),
                Turn::Ahead(watches) => Err(Some(watches)),
            })
        };
        let outcome = deadline.run(work).await.unwrap_or(Ok(Err(None)))?;
        let (path, czxid, watches) = match outcome {
            Ok(held) => held,
            Err(watches) => {
                delete_now(&mut pending).await;
                // Only now: the deletion fired the children watch, and a fired watch goes
                // without a `RemoveWatches` request.
                if let Some(watches) = watches {
                    watches.finish();
                }
                return Ok(None);
            }
        };

        let status = HoldStatus::new();
        let Some(registration) = session.register(&status) else {
            return Err(LockError::connection(
                "the ZooKeeper session ended just as the lock was granted",
            ));
        };
        pending.disarm();
        let watching = watch_node(session.clone(), path.clone(), status.clone(), watches);
        let hold = Arc::new(ZkHold {
            session,
            path,
            registration,
            watching,
        });
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
    /// are retried as `options.retry` says (core's [`RetryPolicy`](distlock_core::RetryPolicy),
    /// the same on every backend). A try reports a connection failure at once. A retry
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
        // A zero wait would time out before its first look: `Deadline` makes it a try.
        let deadline = Deadline::start(options.wait);
        let mut retry = ConnectionRetry::new(options.retry);
        // A session that turns out to be over gets one replacement per acquire, even a try.
        let mut replaced = false;
        loop {
            let session = deadline.run(self.session()).await.unwrap_or_else(|| {
                Err(LockError::connection(
                    "no ZooKeeper session within the wait",
                ))
            });
            let outcome = match session {
                Ok(session) => {
                    let outcome = self.acquire_on(session.clone(), name, &deadline).await;
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
                // The core's policy: a waiting acquire rides out a leader election or a
                // reconnect; a try reports the failure at once.
                Err(e) if e.kind() == ErrorKind::Connection => match retry.after_failure(&deadline)
                {
                    Some(pause) => {
                        tracing::debug!(error = %e, ?pause, "ZooKeeper unreachable; retrying the acquire");
                        tokio::time::sleep(pause).await;
                    }
                    None => return Err(e),
                },
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
