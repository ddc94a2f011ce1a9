//! The release-channel subscriber a client shares among all its waiters.
//!
//! One task per *source* keeps one pub/sub connection and multiplexes every channel some
//! waiter of this client is interested in. A single server or a cluster is one source (a
//! cluster broadcasts `PUBLISH` to every node, so any node will do; the task moves to the
//! next node when one fails); a Redlock has one source per server. A message bumps the
//! channel's counter, which wakes its waiters. After every (re)connect all counters are
//! bumped too, since messages may have been lost while no connection was subscribed.
//! The connection is opened lazily, on the first wait.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use distlock_core::backend::Backoff;
use distlock_core::RetryPolicy;
use futures::StreamExt;
use redis::Client;
use tokio::sync::{mpsc, watch};

enum Command {
    Subscribe(String, mpsc::Sender<()>),
    Unsubscribe(String),
}

struct Channel {
    refs: usize,
    wake: watch::Sender<u64>,
}

#[derive(Default)]
struct Registry {
    channels: Mutex<HashMap<String, Channel>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self, channel: &str) {
        if let Some(c) = self.lock().get(channel) {
            c.wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn bump_all(&self) {
        for c in self.lock().values() {
            c.wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// Cheap to clone; the tasks end when the last clone (and every interest) is gone.
#[derive(Clone)]
pub(crate) struct Subscriber {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    sources: Vec<mpsc::UnboundedSender<Command>>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("sources", &self.inner.sources.len())
            .finish_non_exhaustive()
    }
}

/// A waiter's registration on one channel; unsubscribes when the last one is dropped.
pub(crate) struct Interest {
    inner: Arc<Inner>,
    channel: String,
    wake: watch::Receiver<u64>,
    acks: mpsc::Receiver<()>,
}

impl Subscriber {
    /// Starts one task per source (each a list of interchangeable servers). Must be called
    /// inside a Tokio runtime.
    pub(crate) fn start(sources: Vec<Vec<Client>>, timeout: Duration) -> Self {
        let registry = Arc::new(Registry::default());
        let senders = sources
            .into_iter()
            .map(|clients| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_source(clients, Arc::downgrade(&registry), rx, timeout));
                tx
            })
            .collect();
        Subscriber {
            inner: Arc::new(Inner {
                registry,
                sources: senders,
            }),
        }
    }

    /// Registers interest in `channel`. Await [`Interest::subscribed`] before the attempt
    /// whose failure you will wait on, so a release right after it cannot go unnoticed.
    pub(crate) fn interest(&self, channel: &str) -> Interest {
        let (ack_tx, acks) = mpsc::channel(self.inner.sources.len().max(1));
        let mut channels = self.inner.registry.lock();
        let entry = channels
            .entry(channel.to_string())
            .or_insert_with(|| Channel {
                refs: 0,
                wake: watch::channel(0).0,
            });
        entry.refs += 1;
        let wake = entry.wake.subscribe();
        // Sent under the registry lock, so the tasks see subscribe/unsubscribe in map order.
        for source in &self.inner.sources {
            let _ = source.send(Command::Subscribe(channel.to_string(), ack_tx.clone()));
        }
        drop(channels);
        Interest {
            inner: self.inner.clone(),
            channel: channel.to_string(),
            wake,
            acks,
        }
    }
}

impl Interest {
    /// Resolves once some source confirmed the subscription (pending forever if none can;
    /// callers bound it).
    pub(crate) async fn subscribed(&mut self) {
        if self.acks.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when a release was published on the channel (or may have been missed)
    /// since the last call.
    pub(crate) async fn notified(&mut self) {
        if self.wake.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Forgets notifications that arrived so far.
    pub(crate) fn mark_seen(&mut self) {
        self.wake.borrow_and_update();
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut channels = self.inner.registry.lock();
        let last = match channels.get_mut(&self.channel) {
            Some(entry) => {
                entry.refs = entry.refs.saturating_sub(1);
                entry.refs == 0
            }
            None => false,
        };
        if last {
            channels.remove(&self.channel);
            for source in &self.inner.sources {
                let _ = source.send(Command::Unsubscribe(self.channel.clone()));
            }
        }
    }
}

/// Waits for the next command while disconnected; `None` when the subscriber is gone.
async fn next_command(
    rx: &mut mpsc::UnboundedReceiver<Command>,
    acks: &mut Vec<mpsc::Sender<()>>,
) -> Option<()> {
    match rx.recv().await? {
        Command::Subscribe(_, ack) => acks.push(ack),
        Command::Unsubscribe(_) => {}
    }
    Some(())
}

async fn run_source(
    clients: Vec<Client>,
    registry: Weak<Registry>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    timeout: Duration,
) {
    if clients.is_empty() {
        return;
    }
    // Acks of subscriptions asked for while no connection was up.
    let mut acks: Vec<mpsc::Sender<()>> = Vec::new();
    // Connect lazily: nothing to do until somebody waits.
    if next_command(&mut rx, &mut acks).await.is_none() {
        return;
    }
    let mut next = 0usize;
    // Core's backoff (50 ms doubling to 1 s, jittered), reset once a subscription succeeds.
    let mut backoff = Backoff::new(&RetryPolicy::default());
    // Every failure to connect *or to subscribe* waits before the next try: a server that
    // accepts connections but refuses SUBSCRIBE (an ACL user without channel permissions)
    // must not be re-dialled in a tight loop.
    let mut failed = false;
    loop {
        if failed {
            next += 1;
            let pause = tokio::time::sleep(backoff.next_pause());
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    cmd = next_command(&mut rx, &mut acks) => if cmd.is_none() { return },
                }
            }
        }
        failed = true;
        let client = &clients[next % clients.len()];
        let connected = tokio::time::timeout(timeout, client.get_async_pubsub()).await;
        let Ok(Ok(pubsub)) = connected else {
            continue;
        };
        let (mut sink, mut stream) = pubsub.split();
        let Some(reg) = registry.upgrade() else {
            return;
        };
        let names = reg.names();
        drop(reg);
        if !names.is_empty()
            && !matches!(
                tokio::time::timeout(timeout, sink.subscribe(&names)).await,
                Ok(Ok(()))
            )
        {
            continue;
        }
        if !names.is_empty() {
            backoff.reset();
        }
        for ack in acks.drain(..) {
            let _ = ack.try_send(());
        }
        match registry.upgrade() {
            Some(reg) => reg.bump_all(),
            None => return,
        }
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    match registry.upgrade() {
                        Some(reg) => reg.bump(msg.get_channel_name()),
                        None => return,
                    }
                }
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Command::Subscribe(channel, ack)) => {
                        match tokio::time::timeout(timeout, sink.subscribe(&channel)).await {
                            Ok(Ok(())) => {
                                let _ = ack.try_send(());
                                // Only a connection that subscribes resets the backoff.
                                backoff.reset();
                            }
                            _ => { acks.push(ack); break; }
                        }
                    }
                    Some(Command::Unsubscribe(channel)) => {
                        if !matches!(tokio::time::timeout(timeout, sink.unsubscribe(&channel)).await, Ok(Ok(()))) {
                            break;
                        }
                    }
                },
            }
        }
        // The connection broke (or stopped answering): reconnect, to the next node if any,
        // after the backoff (reset once a subscription succeeds).
    }
}
