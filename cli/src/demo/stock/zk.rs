//! The stock in a ZooKeeper node's data, `"<items> <newest fence token>"`; a fenced write
//! is a compare-and-set on the node's version, checked with [`distlock::fence::admit`].

use std::time::Duration;

use distlock::{fence, LockError, Result};
use zookeeper_client::{Acls, Client, CreateMode};

pub(crate) struct ZkStock {
    client: Client,
    path: String,
}

impl ZkStock {
    pub(crate) async fn open(url: &str, run: &str) -> Result<Self> {
        // hosts[/chroot] without the user part: the node is open to anyone (a demo).
        let rest = super::without_query(url)
            .split_once("://")
            .map_or("", |(_, r)| r);
        let cluster = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let client = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(cluster.trim_end_matches('/'))
            .await
            .map_err(failure)?;
        Ok(ZkStock {
            client,
            path: format!("/distlock-demo-{run}-stock"),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("ZooKeeper node {}", self.path)
    }

    pub(crate) async fn reset(&mut self, items: u64) -> Result<()> {
        let data = format!("{items} 0");
        let mode = CreateMode::Persistent.with_acls(Acls::anyone_all());
        match self.client.create(&self.path, data.as_bytes(), &mode).await {
            Ok(_) => Ok(()),
            Err(zookeeper_client::Error::NodeExists) => self.write(items, None).await,
            Err(e) => Err(failure(e)),
        }
    }

    async fn load(&self) -> Result<(u64, Option<u64>, i32)> {
        let (data, stat) = self.client.get_data(&self.path).await.map_err(failure)?;
        let text = String::from_utf8_lossy(&data);
        let mut fields = text.split_whitespace();
        let items = super::parse_items(fields.next().unwrap_or(""), &self.describe())?;
        let newest = fields
            .next()
            .and_then(|t| t.parse().ok())
            .filter(|&t| t > 0);
        Ok((items, newest, stat.version))
    }

    pub(crate) async fn read(&mut self) -> Result<u64> {
        Ok(self.load().await?.0)
    }

    pub(crate) async fn write(&mut self, items: u64, token: Option<u64>) -> Result<()> {
        loop {
            let (_, newest, version) = self.load().await?;
            let (stored, expected) = match token {
                // Unfenced: a blind overwrite (keeps the token), like act 1's buyers.
                None => (newest.unwrap_or(0), None),
                Some(_) => (
                    fence::admit(&self.describe(), newest, token)?,
                    Some(version),
                ),
            };
            let data = format!("{items} {stored}");
            match self
                .client
                .set_data(&self.path, data.as_bytes(), expected)
                .await
            {
                Ok(_) => return Ok(()),
                // Someone wrote between our read and our set: check again.
                Err(zookeeper_client::Error::BadVersion) => continue,
                Err(e) => return Err(failure(e)),
            }
        }
    }

    pub(crate) async fn remove(&mut self) -> Result<()> {
        match self.client.delete(&self.path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
            Err(e) => Err(failure(e)),
        }
    }
}

fn failure(e: zookeeper_client::Error) -> LockError {
    LockError::connection(format!("the demo's ZooKeeper stock: {e}"))
}
