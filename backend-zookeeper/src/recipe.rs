//! The lock recipe on the wire: node names, creating a contender node (and finding it again
//! when the reply was lost), and waiting for its turn by watching only the predecessor.

use std::future::Future;
use std::time::Duration;

use distlock_core::{LockError, LockName, Result};
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use crate::error::zk_error;
use crate::session::Session;

/// Curator's `InterProcessMutex` naming (`_c_<id>-lock-<sequence>`), with the owner token as
/// the id so a contender can always find its own node by name.
const NODE_HEAD: &str = "_c_";
const NODE_TAIL: &str = "-lock-";

/// Retries after a connection loss: the crate queues requests while it reconnects, and fails
/// them with a terminal error once the session is gone, so this ends.
pub(crate) const RETRIES: usize = 30;

/// Escaped names longer than this are hashed: a request carrying a path over the server's
/// `jute.maxbuffer` (1 MiB by default) makes it drop the connection, again on every retry.
const MAX_ESCAPED: usize = 1024;

/// The path segment of a lock name: escaped (`[A-Za-z0-9_-]` and `%XX`), or for very long
/// names a readable prefix, a `.` and a 128-bit SHA-256 digest. Escaped names never contain
/// a `.`, so the two forms cannot collide.
pub(crate) fn segment(name: &LockName) -> String {
    let escaped = name.escaped();
    if escaped.len() <= MAX_ESCAPED {
        escaped
    } else {
        name.hashed(96)
    }
}

/// The name prefix of `token`'s contender node (the server appends the sequence).
pub(crate) fn node_prefix(token: &str) -> String {
    format!("{NODE_HEAD}{token}{NODE_TAIL}")
}

/// The sequence number of a contender node's name, `None` for foreign children.
pub(crate) fn sequence_of(child: &str) -> Option<i64> {
    if !child.starts_with(NODE_HEAD) {
        return None;
    }
    let (_, seq) = child.rsplit_once(NODE_TAIL)?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok()
}

/// Whether `e` leaves the outcome of a request unknown: the connection broke before the
/// reply came. The crate reports that as `ConnectionLoss`, or with the connection's own
/// error ("no response from connection in …", an I/O error) for requests in flight.
pub(crate) fn reply_lost(e: &ZkError) -> bool {
    matches!(e, ZkError::ConnectionLoss | ZkError::Custom(_))
}

/// Runs `op` again while its reply is lost to a broken connection.
pub(crate) async fn retry<T, F, Fut>(mut op: F) -> std::result::Result<T, ZkError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, ZkError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if reply_lost(&e) && attempt < RETRIES => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
            }
            other => return other,
        }
    }
}

/// Where and how a lock's nodes are made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout<'a> {
    /// The root holding one parent per lock (chroot included).
    pub base: &'a str,
    /// The lock's parent node.
    pub parent: &'a str,
    pub acls: Acls<'static>,
}

impl Layout<'_> {
    /// Creates the root (persistent) and the lock's parent (a container, which the server
    /// removes once its last child is gone).
    async fn make_parents(&self, client: &Client) -> Result<()> {
        for _ in 0..5 {
            let made = retry(|| {
                client.create(
                    self.parent,
                    &[],
                    &CreateMode::Container.with_acls(self.acls),
                )
            })
            .await;
            match made {
                Ok(_) | Err(ZkError::NodeExists) => return Ok(()),
                Err(ZkError::NoNode) => {
                    let persistent = CreateMode::Persistent.with_acls(self.acls);
                    let root = retry(|| client.mkdir(self.base, &persistent)).await;
                    match root {
                        Ok(()) | Err(ZkError::NodeExists) => {}
                        Err(e) => return Err(zk_error(e, "creating the lock root")),
                    }
                }
                Err(e) => return Err(zk_error(e, "creating the lock's parent node")),
            }
        }
        Err(LockError::backend(
            "the lock's parent node kept disappearing while it was being created",
        ))
    }

    /// Creates `token`'s EPHEMERAL_SEQUENTIAL contender node and returns its path and czxid.
    /// A reply lost to a connection loss is recovered by finding the node by its token.
    pub(crate) async fn create_node(&self, client: &Client, token: &str) -> Result<(String, i64)> {
        let prefix = format!("{}/{}", self.parent, node_prefix(token));
        let mode = CreateMode::EphemeralSequential.with_acls(self.acls);
        let mut parent_went = false;
        for _ in 0..RETRIES {
            match client.create(&prefix, &[], &mode).await {
                Ok((stat, seq)) => return Ok((format!("{prefix}{seq}"), stat.czxid)),
                Err(ZkError::NoNode) => {
                    parent_went = true;
                    self.make_parents(client).await?
                }
                Err(e) if reply_lost(&e) => {
                    parent_went = false;
                    if let Some(found) = self.find_node(client, token).await? {
                        return Ok(found);
                    }
                }
                Err(e) => return Err(zk_error(e, "creating the lock node")),
            }
        }
        Err(if parent_went {
            LockError::backend(
                "could not create the lock node: its parent kept being deleted (by another client?)",
            )
        } else {
            LockError::connection("could not create the lock node: the connection kept failing")
        })
    }

    /// `token`'s node and czxid, if it exists (after a `sync`, so a create that reached the
    /// leader before the connection broke is seen).
    pub(crate) async fn find_node(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Option<(String, i64)>> {
        match retry(|| client.sync(self.parent)).await {
            Ok(()) | Err(ZkError::NoNode) => {}
            Err(e) => return Err(zk_error(e, "syncing the lock's parent node")),
        }
        let children = match retry(|| client.list_children(self.parent)).await {
            Ok(c) => c,
            Err(ZkError::NoNode) => return Ok(None),
            Err(e) => return Err(zk_error(e, "listing the lock's contenders")),
        };
        let head = node_prefix(token);
        let Some(child) = children.into_iter().find(|c| c.starts_with(&head)) else {
            return Ok(None);
        };
        let path = format!("{}/{child}", self.parent);
        match retry(|| client.check_stat(&path)).await {
            Ok(Some(stat)) => Ok(Some((path, stat.czxid))),
            Ok(None) => Ok(None),
            Err(e) => Err(zk_error(e, "reading the lock node")),
        }
    }

    /// Waits until `path` is the lowest contender (`Ok(true)`), or with `wait == false`
    /// checks once (`Ok(false)` when someone is ahead). Watches only the immediate
    /// predecessor and re-lists when it is already gone.
    pub(crate) async fn wait_turn(
        &self,
        client: &Client,
        session: &Session,
        path: &str,
        token: &str,
        wait: bool,
    ) -> Result<bool> {
        let own = path.rsplit('/').next().unwrap_or(path);
        if sequence_of(own).is_none() {
            return Err(LockError::backend(format!(
                "unexpected lock node name {own:?}"
            )));
        }
        let head = node_prefix(token);
        loop {
            let children = match retry(|| client.list_children(self.parent)).await {
                Ok(c) => c,
                Err(ZkError::NoNode) => Vec::new(),
                Err(e) => return Err(zk_error(e, "listing the lock's contenders")),
            };
            let mut queue: Vec<(i64, String)> = children
                .into_iter()
                .filter_map(|c| sequence_of(&c).map(|s| (s, c)))
                .collect();
            queue.sort_unstable();
            // A duplicate of ours (a create whose lost reply was retried) would block the
            // queue behind us forever: remove it.
            for (_, dup) in queue
                .iter()
                .filter(|(_, c)| c.starts_with(&head) && c != own)
            {
                let dup = format!("{}/{dup}", self.parent);
                let _ = client.delete(&dup, None).await;
            }
            queue.retain(|(_, c)| c == own || !c.starts_with(&head));
            // By name, not by sequence: once the parent container is recycled, sequence
            // numbers restart, and a node that took over our vanished node's number must
            // not be mistaken for ours.
            let Some(me) = queue.iter().position(|(_, c)| c == own) else {
                return Err(LockError::connection(match session.end_reason() {
                    Some(why) => format!("the lock node vanished: {}", why.message()),
                    None => "the lock node vanished while waiting (deleted by someone else?)"
                        .to_string(),
                }));
            };
            if me == 0 {
                return Ok(true);
            }
            if !wait {
                return Ok(false);
            }
            let predecessor = format!("{}/{}", self.parent, queue[me - 1].1);
            match retry(|| client.check_and_watch_stat(&predecessor)).await {
                Ok((None, _)) => continue,
                Ok((Some(_), watcher)) => {
                    tokio::select! {
                        _ = watcher.changed() => {}
                        why = session.ended() => {
                            return Err(LockError::connection(format!(
                                "the ZooKeeper session ended while waiting: {}",
                                why.message()
                            )));
                        }
                    }
                }
                Err(e) => return Err(zk_error(e, "watching the predecessor")),
            }
        }
    }
}

/// Deletes `path`, treating "already gone" as done.
pub(crate) async fn delete_node(client: &Client, path: &str) -> Result<()> {
    match retry(|| client.delete(path, None)).await {
        Ok(()) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(zk_error(e, "deleting the lock node")),
    }
}

/// Deletes every node of `token` under `parent` (for acquires cancelled before they knew
/// their node's name).
pub(crate) async fn delete_by_token(client: &Client, parent: &str, token: &str) -> Result<()> {
    // As in `find_node`: after a reconnection to another server, a create whose reply was
    // lost may not have reached that server yet; an orphan missed here would stay first
    // in line for as long as the session lives.
    match retry(|| client.sync(parent)).await {
        Ok(()) | Err(ZkError::NoNode) => {}
        Err(e) => return Err(zk_error(e, "syncing the lock's parent node")),
    }
    let children = match retry(|| client.list_children(parent)).await {
        Ok(c) => c,
        Err(ZkError::NoNode) => return Ok(()),
        Err(e) => return Err(zk_error(e, "listing the lock's contenders")),
    };
    let head = node_prefix(token);
    for child in children.iter().filter(|c| c.starts_with(&head)) {
        delete_node(client, &format!("{parent}/{child}")).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = format!("{}0000000042", node_prefix("abc123"));
        assert_eq!(sequence_of(&name), Some(42));
        assert!(name.starts_with(&node_prefix("abc123")));
        assert_eq!(sequence_of("lock-0001"), None);
        assert_eq!(sequence_of("_c_x-lock-"), None);
        assert_eq!(sequence_of("_c_x-lock-12a"), None);
    }

    #[test]
    fn long_names_are_hashed_and_stay_distinct() {
        let short = LockName::new("a/b").unwrap();
        assert_eq!(segment(&short), short.escaped());
        let edge = LockName::new("x".repeat(MAX_ESCAPED)).unwrap();
        assert_eq!(segment(&edge), edge.escaped());
        let long = LockName::new("x".repeat(MAX_ESCAPED + 1)).unwrap();
        let longer = LockName::new("x".repeat(MAX_ESCAPED + 2)).unwrap();
        assert!(segment(&long).contains('.') && segment(&long).len() <= 96);
        assert_ne!(segment(&long), segment(&longer));
        assert!(!short.escaped().contains('.'));
    }
}
