//! The client users hold: one session shared by every lock, replaced when it ends.

use std::fmt;
use std::sync::Arc;

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
        // A session that turns out to be over gets one replacement per acquire.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let session = match deadline {
                Some(at) => tokio::time::timeout_at(at, self.session())
                    .await
                    .map_err(|_| LockError::connection("no ZooKeeper session within the wait"))??,
                None => self.session().await?,
            };
            match self.acquire_on(session.clone(), name, wait, deadline).await {
                Err(e)
                    if e.kind() == ErrorKind::Connection
                        && attempts < 2
                        && session.check_ended() =>
                {
                    tracing::debug!(error = %e, "retrying the acquire on a new session");
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
}
