//! Raw ZooKeeper: create an ephemeral node, delete it; a waiter watches the node and tries
//! again when it goes. One session per contender.

use std::time::Duration;

use async_trait::async_trait;
use distlock::{LockError, Result};
use zookeeper_client::{Acls, Client, CreateMode};

use crate::bench::subject::{Contender, Subject};
use crate::bench::target::Target;

pub(crate) struct RawZk {
    hosts: String,
    root: String,
}

impl RawZk {
    pub(crate) fn new(target: &Target) -> Self {
        let [_, raw_root] = target.zk_roots();
        RawZk {
            hosts: hosts(&target.url),
            root: raw_root,
        }
    }
}

/// `host:port,…` of a `zk://` URL (no chroot, no credentials, no query).
pub(crate) fn hosts(url: &str) -> String {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or("");
    rest.rsplit_once('@').map_or(rest, |(_, h)| h).to_string()
}

pub(crate) fn fail(e: zookeeper_client::Error) -> LockError {
    LockError::connection(format!("raw zookeeper: {e}"))
}

/// A session on `hosts`.
pub(crate) async fn session(hosts: &str) -> Result<Client> {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(hosts)
        .await
        .map_err(fail)
}

/// Creates `path` as a persistent node unless it exists.
pub(crate) async fn ensure(client: &Client, path: &str) -> Result<()> {
    let mode = CreateMode::Persistent.with_acls(Acls::anyone_all());
    match client.create(path, &[], &mode).await {
        Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

#[async_trait]
impl Subject for RawZk {
    fn label(&self) -> &'static str {
        "raw"
    }

    fn describe(&self) -> String {
        "create EPHEMERAL + delete on one session; waiters watch the node".into()
    }

    async fn contender(&self, name: &str) -> Result<Box<dyn Contender>> {
        let client = session(&self.hosts).await?;
        ensure(&client, &self.root).await?;
        Ok(Box::new(ZkContender {
            client,
            path: format!("{}/{}", self.root, super::flat(name)),
        }))
    }
}

struct ZkContender {
    client: Client,
    path: String,
}

#[async_trait]
impl Contender for ZkContender {
    async fn acquire(&mut self, limit: Duration) -> Result<()> {
        let wait = async {
            loop {
                if self.try_acquire().await? {
                    return Ok(());
                }
                let (stat, watcher) = self
                    .client
                    .check_and_watch_stat(&self.path)
                    .await
                    .map_err(fail)?;
                if stat.is_some() {
                    watcher.changed().await;
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| LockError::timeout("the raw ZooKeeper node stayed"))?
    }

    async fn try_acquire(&mut self) -> Result<bool> {
        let mode = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        match self.client.create(&self.path, &[], &mode).await {
            Ok(_) => Ok(true),
            Err(zookeeper_client::Error::NodeExists) => Ok(false),
            Err(e) => Err(fail(e)),
        }
    }

    async fn release(&mut self) -> Result<()> {
        self.client.delete(&self.path, None).await.map_err(fail)
    }
}
