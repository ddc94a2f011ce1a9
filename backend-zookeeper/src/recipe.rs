//! The lock recipe on the wire: node names, creating a contender node (and finding it again
//! when the reply was lost), and waiting for its turn by watching only the predecessor
//! (and our own node).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use distlock_core::{LockError, LockName, Result};
use futures::FutureExt;
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError, EventType, WatchedEvent};

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

/// A watch on a node, as the future of its one event (dropping it before the event removes
/// the watch, which costs a request).
pub(crate) type NodeWatch = Pin<Box<dyn Future<Output = WatchedEvent> + Send>>;

/// The watches a contender holds on the wire. Each is kept until it fires: dropping an
/// unfired one costs a `RemoveWatches` request.
#[derive(Default)]
pub(crate) struct Watches {
    /// An `exists` watch on our own node (set while waiting).
    pub own: Option<NodeWatch>,
    /// The children watch on the parent that the first listing set. It fires on the first
    /// change among the contenders, which includes a deletion of our node.
    pub children: Option<NodeWatch>,
}

impl Watches {
    /// Drops the watches, taking an event that already came in first: a fired watch taken
    /// goes without a word to the connection's task, an unfired one costs a
    /// `RemoveWatches` request.
    pub(crate) fn finish(self) {
        for mut watch in [self.own, self.children].into_iter().flatten() {
            let _ = watch.as_mut().now_or_never();
        }
    }
}

/// The outcome of [`Layout::wait_turn`].
pub(crate) enum Turn {
    /// Our node is the lowest, with the watches set meanwhile (the hold keeps them to
    /// notice a foreign delete).
    Held(Watches),
    /// Someone is ahead and the caller did not want to wait. The caller deletes the node
    /// before dropping the watches: the deletion fires the children watch, and a fired
    /// watch is dropped without a request.
    Ahead(Watches),
}

/// The parent's children listed right after our create, and the children watch that
/// listing set.
pub(crate) type Listing = (Vec<String>, NodeWatch);

/// A created contender node: its path, its czxid (the fencing token), and the listing
/// taken right after the create, when it came back.
pub(crate) type Created = (String, i64, Option<Listing>);

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

    /// Creates `token`'s EPHEMERAL_SEQUENTIAL contender node and returns its path, czxid and
    /// (usually) the parent's children. The listing is sent right behind the create, without
    /// waiting for its reply: one session's requests are served in order, so it already
    /// shows our node, and the lowest check costs no round trip of its own. The listing
    /// also sets a children watch on the parent: while nobody else comes or goes it is the
    /// held node's watch, so an uncontended hold needs no request of its own to notice a
    /// foreign delete. A reply lost to a connection loss is recovered by finding the node by
    /// its token.
    pub(crate) async fn create_node(&self, client: &Client, token: &str) -> Result<Created> {
        let prefix = format!("{}/{}", self.parent, node_prefix(token));
        let mode = CreateMode::EphemeralSequential.with_acls(self.acls);
        let mut parent_went = false;
        for attempt in 0..RETRIES {
            let outcome = if attempt == 0 {
                let created = client.create(&prefix, &[], &mode);
                let listed = client.list_and_watch_children(self.parent);
                let (created, listed) = futures::join!(created, listed);
                let listed = listed
                    .ok()
                    .map(|(c, w)| (c, Box::pin(w.changed()) as NodeWatch));
                created.map(|c| (c, listed))
            } else {
                client.create(&prefix, &[], &mode).await.map(|c| (c, None))
            };
            match outcome {
                Ok(((stat, seq), listed)) => {
                    return Ok((format!("{prefix}{seq}"), stat.czxid, listed))
                }
                Err(ZkError::NoNode) => {
                    parent_went = true;
                    self.make_parents(client).await?
                }
                Err(e) if reply_lost(&e) => {
                    parent_went = false;
                    if let Some((path, czxid)) = self.find_node(client, token).await? {
                        return Ok((path, czxid, None));
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

    /// Waits until `path` is the lowest contender (`Turn::Held`), or with `wait == false`
    /// checks once (`Turn::Ahead` when someone is ahead). `listed` is a listing taken after
    /// our create, if the caller has one. Watches only the immediate predecessor, and our own
    /// node (to notice it vanishing while we wait; the hold keeps that watch, and the
    /// listing's children watch).
    ///
    /// When the predecessor was the lowest and its deletion is seen, we are the lowest
    /// without listing again: sequence numbers only grow while our node exists (it keeps the
    /// parent alive), so nobody can have come in ahead, and our own node still exists, or its
    /// deletion (an earlier transaction) would have been delivered first on this connection.
    /// That holds only while the connection stayed up (watches re-registered after a
    /// reconnect report in no particular order), so any session state change re-lists.
    pub(crate) async fn wait_turn(
        &self,
        client: &Client,
        session: &Session,
        path: &str,
        token: &str,
        wait: bool,
        listed: Option<Listing>,
    ) -> Result<Turn> {
        let own = path.rsplit('/').next().unwrap_or(path);
        if sequence_of(own).is_none() {
            return Err(LockError::backend(format!(
                "unexpected lock node name {own:?}"
            )));
        }
        let head = node_prefix(token);
        let (mut listed, children_watch) = match listed {
            Some((children, watch)) => (Some(children), Some(watch)),
            None => (None, None),
        };
        let mut own_watch: Option<NodeWatch> = None;
        loop {
            let children = match listed.take() {
                Some(c) => c,
                None => match retry(|| client.list_children(self.parent)).await {
                    Ok(c) => c,
                    Err(ZkError::NoNode) => Vec::new(),
                    Err(e) => return Err(zk_error(e, "listing the lock's contenders")),
                },
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
                return Ok(Turn::Held(Watches {
                    own: own_watch,
                    children: children_watch,
                }));
            }
            if !wait {
                return Ok(Turn::Ahead(Watches {
                    own: own_watch,
                    children: children_watch,
                }));
            }
            let predecessor = format!("{}/{}", self.parent, queue[me - 1].1);
            let mut states = client.state_watcher();
            states.state();
            // Both requests go out before either reply is awaited: one round trip.
            let pred = client.check_and_watch_stat(&predecessor);
            let mine = if own_watch.is_none() {
                Some(client.check_and_watch_stat(path))
            } else {
                None
            };
            let (pred, mine) = futures::join!(pred, async {
                match mine {
                    Some(mine) => Some(mine.await),
                    None => None,
                }
            });
            match mine {
                None => {}
                Some(Ok((Some(_), watcher))) => own_watch = Some(Box::pin(watcher.changed())),
                // Gone: the listing says so, with the reason.
                Some(Ok((None, _))) => continue,
                Some(Err(e)) if reply_lost(&e) => continue,
                Some(Err(e)) => return Err(zk_error(e, "watching the lock node")),
            }
            let undisturbed = |states: &mut zookeeper_client::StateWatcher,
                               own_watch: &mut Option<NodeWatch>| {
                states.changed().now_or_never().is_none() && pending(own_watch)
            };
            let watcher = match pred {
                Ok((None, _)) if me == 1 && undisturbed(&mut states, &mut own_watch) => {
                    return Ok(Turn::Held(Watches {
                        own: own_watch,
                        children: children_watch,
                    }));
                }
                Ok((None, _)) => continue,
                Ok((Some(_), watcher)) => watcher,
                Err(e) if reply_lost(&e) => continue,
                Err(e) => return Err(zk_error(e, "watching the predecessor")),
            };
            let mut own_changed = false;
            let event = {
                let own_event = async {
                    match own_watch.as_mut() {
                        Some(w) => w.as_mut().await,
                        None => std::future::pending().await,
                    }
                };
                // Biased: when both our node's and the predecessor's events are in, ours
                // came first on the connection, and re-listing must win.
                tokio::select! {
                    biased;
                    _ = own_event => {
                        own_changed = true;
                        None
                    }
                    why = session.ended() => {
                        return Err(LockError::connection(format!(
                            "the ZooKeeper session ended while waiting: {}",
                            why.message()
                        )));
                    }
                    event = watcher.changed() => Some(event),
                }
            };
            if own_changed {
                // Our node changed or vanished: the listing tells which; a new watch follows.
                own_watch = None;
                continue;
            }
            if matches!(&event, Some(e) if e.event_type == EventType::NodeDeleted)
                && me == 1
                && undisturbed(&mut states, &mut own_watch)
            {
                return Ok(Turn::Held(Watches {
                    own: own_watch,
                    children: children_watch,
                }));
            }
        }
    }
}

/// Whether `watch` is set and has not fired (a fired one is cleared).
fn pending(watch: &mut Option<NodeWatch>) -> bool {
    let fired = match watch.as_mut() {
        Some(w) => w.as_mut().now_or_never().is_some(),
        None => return false,
    };
    if fired {
        *watch = None;
    }
    !fired
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
