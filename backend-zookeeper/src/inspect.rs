//! [`Inspect`] for ZooKeeper: holders from the lock parents' children (the lowest contender
//! holds; its `ctime` gives the age, its `czxid` the fencing token, its ephemeral owner the
//! session), breaking a hold by deleting the holder's node (the holder watches its node,
//! so its lost signal fires at once), and the doctor's session-timeout check.
//!
//! Holder metadata (host, pid, label) travels in the owner token, part of the node's name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use distlock_core::{Finding, Holder, Inspect, LockError, LockName, Result};
use zookeeper_client::{Client, Error as ZkError};

use crate::error::zk_error;
use crate::lock::ZkLock;
use crate::recipe::{retry, sequence_of};

/// The lowest contender of `parent`: its node name, and the owner token in that name.
async fn holder_node(client: &Client, parent: &str) -> Result<Option<String>> {
    let children = match retry(|| client.list_children(parent)).await {
        Ok(c) => c,
        Err(ZkError::NoNode) => return Ok(None),
        Err(e) => return Err(zk_error(e, "listing a lock's contenders")),
    };
    Ok(children
        .into_iter()
        .filter_map(|c| sequence_of(&c).map(|s| (s, c)))
        .min()
        .map(|(_, c)| c))
}

fn token_of(node: &str) -> Option<&str> {
    node.strip_prefix("_c_")?
        .rsplit_once("-lock-")
        .map(|(t, _)| t)
}

/// The lock name a parent segment stands for: escaped names decode back; hashed (very
/// long) names are shown as their segment.
fn name_of(segment: &str) -> String {
    distlock_core::settings::percent_decode("lock name", segment)
        .ok()
        .unwrap_or_else(|| segment.to_string())
}

impl ZkLock {
    async fn holder_at(
        &self,
        client: &Client,
        name: String,
        parent: &str,
    ) -> Result<Option<Holder>> {
        let Some(node) = holder_node(client, parent).await? else {
            return Ok(None);
        };
        let path = format!("{parent}/{node}");
        let stat = match retry(|| client.check_stat(&path)).await {
            Ok(Some(stat)) => stat,
            Ok(None) => return Ok(None),
            Err(e) => return Err(zk_error(e, "reading a lock node")),
        };
        let mut holder = Holder::new(name);
        if let Some(token) = token_of(&node) {
            holder = holder.with_owner_token(token);
        }
        holder.fencing_token = u64::try_from(stat.czxid).ok();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        holder.age = u64::try_from(stat.ctime)
            .ok()
            .map(|ms| now.saturating_sub(Duration::from_millis(ms)));
        holder.session = Some(format!("{:#x}", stat.ephemeral_owner));
        Ok(Some(holder))
    }
}

#[async_trait]
impl Inspect for ZkLock {
    async fn holders(&self, prefix: &str) -> Result<Vec<Holder>> {
        let client = self.zk_client().await?;
        let base = self.config().base_path();
        let parents = match retry(|| client.list_children(&base)).await {
            Ok(c) => c,
            Err(ZkError::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(zk_error(e, "listing the locks")),
        };
        let mut found = Vec::new();
        for segment in parents {
            let name = name_of(&segment);
            if !name.starts_with(prefix) {
                continue;
            }
            let parent = format!("{base}/{segment}");
            if let Some(holder) = self.holder_at(&client, name, &parent).await? {
                found.push(holder);
            }
        }
        Ok(found)
    }

    async fn break_lock(&self, name: &LockName) -> Result<Option<Holder>> {
        let client = self.zk_client().await?;
        let parent = self.lock_path(name);
        for _ in 0..3 {
            let Some(holder) = self
                .holder_at(&client, name.as_str().to_string(), &parent)
                .await?
            else {
                return Ok(None);
            };
            let Some(node) = holder_node(&client, &parent).await? else {
                return Ok(None);
            };
            match retry(|| client.delete(&format!("{parent}/{node}"), None)).await {
                Ok(()) => {
                    distlock_core::observe::forced_release("zookeeper", name);
                    return Ok(Some(holder));
                }
                Err(ZkError::NoNode) => continue,
                Err(e) => return Err(zk_error(e, "deleting the holder's node")),
            }
        }
        Err(LockError::backend(format!(
            "{name:?} changed hands three times while breaking it; try again"
        )))
    }

    async fn doctor(&self) -> Result<Vec<Finding>> {
        const CHECK: &str = "session timeout";
        let client = self.zk_client().await?;
        let asked = self.config().session_timeout();
        let got = client.session_timeout();
        let finding = if got == asked {
            Finding::pass(CHECK, format!("the server granted the requested {asked:?}"))
        } else {
            Finding::warn(
                CHECK,
                format!(
                    "requested {asked:?}, the server granted {got:?} (its minSessionTimeout / \
                     maxSessionTimeout clamp it): a lost holder is noticed after {got:?}"
                ),
                format!(
                    "ask for a session_timeout within the server's bounds (now {got:?}), or \
                     change minSessionTimeout/maxSessionTimeout (default 2–20 × tickTime) in zoo.cfg"
                ),
            )
        };
        Ok(vec![finding])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_give_back_tokens_and_segments_names() {
        assert_eq!(
            token_of("_c_ab12~7~h.x-lock-0000000003"),
            Some("ab12~7~h.x")
        );
        assert_eq!(token_of("other"), None);
        let name = LockName::new("a/b ü").unwrap();
        assert_eq!(name_of(&name.escaped()), "a/b ü");
    }
}
