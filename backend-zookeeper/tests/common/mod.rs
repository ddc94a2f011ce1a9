//! The harness shared by the conformance and fault tests: throwaway servers in statics,
//! short sessions, and fault injection by expiring a holder's session.
#![allow(dead_code)]
// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use distlock_conformance::{Faults, Harness};
use distlock_core::{DistributedLock, LockError, LockGuard, Result};
use distlock_testkit::zookeeper::{ZkEnsemble, ZkServer};
use distlock_zookeeper::zookeeper_client::Client;
use distlock_zookeeper::{ZkConfig, ZkLock};

/// The conformance crate's fault kit: a TCP proxy per client.
pub use distlock_conformance::proxy::TcpProxy as Proxy;

/// Child processes of the cross-process cases reach the parent's server through this.
pub const URL_VAR: &str = "DISTLOCK_TEST_ZK_URL";

/// Session timeouts: a single server answers fast; an ensemble must also ride out a leader
/// election (about 0.7 s) within 2/5 of the session timeout.
pub const SINGLE_SESSION: Duration = Duration::from_secs(3);
pub const ENSEMBLE_SESSION: Duration = Duration::from_secs(4);

pub fn server() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| ZkServer::start().expect("start a throwaway ZooKeeper"))
}

pub fn ensemble() -> &'static ZkEnsemble {
    static ENSEMBLE: OnceLock<ZkEnsemble> = OnceLock::new();
    ENSEMBLE.get_or_init(|| ZkEnsemble::start().expect("start a throwaway ZooKeeper ensemble"))
}

enum Store {
    Single(&'static ZkServer),
    Ensemble(&'static ZkEnsemble),
    /// In a child process: the parent's store, no faults.
    Remote,
}

pub struct ZkHarness {
    store: Store,
    url: String,
    session_timeout: Duration,
    clients: Mutex<Vec<(ZkLock, Option<Proxy>)>>,
}

impl ZkHarness {
    pub fn single() -> Self {
        let (store, url) = match std::env::var(URL_VAR) {
            Ok(url) => (Store::Remote, url),
            Err(_) => (Store::Single(server()), server().url()),
        };
        Self::with(store, url, SINGLE_SESSION)
    }

    pub fn ensemble() -> Self {
        let (store, url) = match std::env::var(URL_VAR) {
            Ok(url) => (Store::Remote, url),
            Err(_) => (Store::Ensemble(ensemble()), ensemble().url()),
        };
        Self::with(store, url, ENSEMBLE_SESSION)
    }

    fn with(store: Store, url: String, session_timeout: Duration) -> Self {
        ZkHarness {
            store,
            url,
            session_timeout,
            clients: Mutex::new(Vec::new()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Straight to the servers.
    pub fn config(&self) -> ZkConfig {
        ZkConfig::from_url(&self.url)
            .expect("test URL")
            .with_session_timeout(self.session_timeout)
    }

    /// A client behind a proxy of its own (except in child processes, which need no faults).
    pub async fn zk_lock(&self) -> Result<ZkLock> {
        Ok(self.zk_lock_with_proxy().await?.0)
    }

    pub async fn zk_lock_with_proxy(&self) -> Result<(ZkLock, Option<Proxy>)> {
        let direct = self.config();
        let (config, proxy) = match self.store {
            Store::Remote => (direct, None),
            _ => {
                let proxy = Proxy::start(direct.hosts())
                    .await
                    .map_err(|e| LockError::backend(format!("proxy: {e}")))?;
                let config =
                    ZkConfig::new(proxy.hosts()).with_session_timeout(self.session_timeout);
                (config, Some(proxy))
            }
        };
        let lock = ZkLock::connect(config).await?;
        self.clients
            .lock()
            .unwrap()
            .push((lock.clone(), proxy.clone()));
        Ok((lock, proxy))
    }

    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    pub fn ensemble_store(&self) -> Option<&'static ZkEnsemble> {
        match self.store {
            Store::Ensemble(e) => Some(e),
            _ => None,
        }
    }

    /// An admin session straight to the servers.
    pub async fn admin(&self) -> Client {
        Client::connector()
            .with_session_timeout(self.session_timeout)
            .connect(self.config().hosts())
            .await
            .expect("admin client")
    }

    /// Expires the session that holds `guard`, at once: the holder's client is cut off,
    /// a second connection takes the session over with its id and password and closes it
    /// (its ephemeral nodes vanish), and the holder is let through again, to be told that
    /// its session expired.
    pub async fn expire_session_of(&self, guard: &LockGuard) -> Result<()> {
        let clients = self.clients.lock().unwrap().clone();
        let config = self.config();
        let admin = self.admin().await;
        // Every client of the harness has the same root: any of them knows the path.
        let parent = clients
            .first()
            .map(|(lock, _)| lock.lock_path(guard.name()))
            .ok_or_else(|| LockError::backend("this harness made no client"))?;
        let children = admin
            .list_children(&parent)
            .await
            .map_err(|e| LockError::backend(format!("listing {parent}: {e}")))?;
        let child = children
            .iter()
            .find(|c| c.contains(guard.owner_token()))
            .ok_or_else(|| LockError::backend("the guard's node is not there"))?;
        let node = format!("{parent}/{child}");
        let stat = admin
            .check_stat(&node)
            .await
            .map_err(|e| LockError::backend(e.to_string()))?
            .ok_or_else(|| LockError::backend("the guard's node vanished"))?;
        for (lock, proxy) in &clients {
            let Some(proxy) = proxy else { continue };
            let client = lock.zk_client().await?;
            if client.session_id().0 != stat.ephemeral_owner {
                continue;
            }
            let info = client.session().clone();
            drop(client);
            proxy.cut();
            let hijack = Client::connector()
                .with_session(info)
                .with_session_timeout(self.session_timeout)
                .connect(config.hosts())
                .await;
            // Dropping the only handle closes the session.
            drop(hijack.map_err(|e| LockError::backend(format!("taking the session over: {e}")))?);
            let start = std::time::Instant::now();
            while admin.check_stat(&node).await.ok().flatten().is_some() {
                if start.elapsed() > Duration::from_secs(5) {
                    proxy.restore();
                    return Err(LockError::backend("the closed session's node stayed"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            proxy.restore();
            return Ok(());
        }
        Err(LockError::backend(
            "no client of this harness owns the guard's session",
        ))
    }
}

#[async_trait]
impl Harness for ZkHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(self.zk_lock().await?))
    }

    fn faults(&self) -> Option<&dyn Faults> {
        match self.store {
            Store::Remote => None,
            _ => Some(self),
        }
    }

    fn child_env(&self) -> Vec<(String, String)> {
        vec![(URL_VAR.to_string(), self.url.clone())]
    }

    fn backstop(&self) -> Duration {
        // Session timeout, plus up to a tick for the server's expiry sweep.
        self.session_timeout + Duration::from_millis(500)
    }
}

#[async_trait]
impl Faults for ZkHarness {
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        self.expire_session_of(guard).await
    }

    async fn restart_server(&self) -> Result<()> {
        let restarted = match &self.store {
            Store::Single(s) => {
                let s: &'static ZkServer = s;
                blocking(move || s.restart()).await
            }
            // A rolling restart: a quorum serves throughout.
            Store::Ensemble(e) => {
                let e: &'static ZkEnsemble = e;
                blocking(move || (0..ZkEnsemble::SIZE).try_for_each(|i| e.restart(i))).await
            }
            Store::Remote => {
                return Err(LockError::unsupported("restart_server in a child process"))
            }
        };
        restarted.map_err(|e| LockError::backend(format!("restart: {e}")))
    }

    async fn pause_server(&self) -> Result<()> {
        match self.store {
            Store::Single(s) => s.pause(),
            Store::Ensemble(e) => (0..ZkEnsemble::SIZE).for_each(|i| e.pause(i)),
            Store::Remote => return Err(LockError::unsupported("pause_server in a child")),
        }
        Ok(())
    }

    async fn resume_server(&self) -> Result<()> {
        match self.store {
            Store::Single(s) => s.resume(),
            Store::Ensemble(e) => {
                (0..ZkEnsemble::SIZE).for_each(|i| e.resume(i));
                let e: &'static ZkEnsemble = e;
                // A thawed ensemble may re-elect, and later cases need it serving again.
                // Now and then (ZooKeeper 3.8.0, about one whole run in three) a thawed
                // ensemble reports a leader and followers but creates no session for many
                // seconds; the freeze is the fault under test, not that, so such an
                // ensemble is restarted (sessions and nodes survive on disk).
                let quorum = blocking(move || e.wait_quorum(Duration::from_secs(20))).await;
                if quorum.is_err() || !sessions_open_on_every_node(e).await {
                    eprintln!("resume_server: the thawed ensemble does not serve ({quorum:?}); restarting it");
                    blocking(move || e.restart_all()).await.map_err(|err| {
                        LockError::backend(format!("restarting the ensemble: {err}"))
                    })?;
                    if !sessions_open_on_every_node(e).await {
                        return Err(LockError::backend(
                            "the restarted ensemble opens no sessions",
                        ));
                    }
                }
            }
            Store::Remote => return Err(LockError::unsupported("resume_server in a child")),
        }
        Ok(())
    }
}

/// Runs a blocking testkit call (server start-up waits) off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// Whether a new session (a write through the leader) opens on each node within 10 s.
async fn sessions_open_on_every_node(e: &ZkEnsemble) -> bool {
    for i in 0..ZkEnsemble::SIZE {
        let host = format!("127.0.0.1:{}", e.port(i));
        let connect = Client::connector()
            .with_session_timeout(ENSEMBLE_SESSION)
            .connect(&host);
        match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(_client)) => {}
            other => {
                eprintln!("resume_server: no session on node {i}: {other:?}");
                return false;
            }
        }
    }
    true
}
