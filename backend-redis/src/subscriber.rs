//! The release-channel subscriber a client shares among all its waiters.
//!
//! One task per *source* keeps one pub/sub connection and multiplexes every channel some
//! waiter of this client is interested in. A single server or a cluster is one source (a
//! cluster broadcasts `PUBLISH` to every node, so any node will do, and a channel needs no
//! hash tag; the task moves to the next node when one fails); a Redlock has one source per
//! server. A message names the waiter it wakes (the head of a lock's queue): only that
//! waiter's counter is bumped, so one release wakes one task; a message `"<id> <seq>
//! <fence>"` also hands that waiter the [`Grant`] the release made to it; the message `1`
//! wakes every waiter of the channel (Redlock). After every (re)connect all counters are
//! bumped, since messages (grants included) may have been lost while no connection was
//! subscribed. The connection is opened lazily, on the first wait.
//!
//! Queued waiters (single server, cluster) all listen on the client's own wake channel,
//! which their queue entries name, so a grant is written to this client's connection only,
//! not to every client with a waiter on the lock. It is subscribed once, on the first wait,
//! and stays subscribed for the client's life (when the subscription never succeeded — no
//! channel permissions — it lingers and goes like any idle channel, so the source stops
//! redialling). Redlock waiters listen on the lock's channel,
//! which stays subscribed for [`LINGER`] after its last waiter left (at most [`MAX_IDLE`]
//! such channels), so repeated waits on a hot name neither `SUBSCRIBE` nor wait for a
//! confirmation again.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use distlock_core::backend::Backoff;
use distlock_core::RetryPolicy;
use futures::StreamExt;
use rand::Rng;
use redis::Client;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

/// How long a channel without waiters stays subscribed.
const LINGER: Duration = Duration::from_secs(5);

/// At most this many channels without waiters stay subscribed (the oldest go first).
const MAX_IDLE: usize = 256;

/// The payload that wakes every waiter of a channel.
const WAKE_ALL: &str = "1";

enum Command {
    Subscribe(String, mpsc::Sender<()>),
    Unsubscribe(String),
}

/// What a grant message tells the waiter it names: the store set the lock to the wait's
/// grant token, after the wait's attempt `seq` had refreshed its queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The wait's attempt that last refreshed the entry before the grant.
    pub seq: u64,
    /// The fencing token the grant advanced the counter to.
    pub fence: u64,
}

/// What a waiter is woken with: a counter bumped per wake-up, and the latest grant.
#[derive(Clone, Copy, Debug, Default)]
struct Wakes {
    count: u64,
    grant: Option<Grant>,
}

struct Waiter {
    id: Option<String>,
    wake: watch::Sender<Wakes>,
}

#[derive(Default)]
struct Channel {
    waiters: HashMap<u64, Waiter>,
    /// The waiters with an id, by id: the client's wake channel carries the waiters of every
    /// lock, and a message must not cost a scan of them all.
    by_id: HashMap<String, u64>,
    /// Some source confirmed the subscription, and no connection broke since.
    confirmed: bool,
    /// When the last waiter left (the channel lingers), `None` while someone waits.
    idle_since: Option<Instant>,
}

#[derive(Default)]
struct State {
    channels: HashMap<String, Channel>,
    /// Lingering channels, oldest first (may hold names that got waiters again since).
    idle: VecDeque<String>,
    next_id: u64,
}

#[derive(Default)]
struct Registry {
    state: Mutex<State>,
}

fn bump(wake: &watch::Sender<Wakes>, grant: Option<Grant>) {
    wake.send_modify(|w| {
        w.count = w.count.wrapping_add(1);
        if grant.is_some() {
            w.grant = grant;
        }
    });
}

/// Splits a message into the waiter id it names and the grant it carries, if any (a bare id
/// is a wake-up without a grant, as older clients publish it).
fn parse(payload: &[u8]) -> (&[u8], Option<Grant>) {
    let mut parts = payload.splitn(3, |b| *b == b' ');
    let id = parts.next().unwrap_or_default();
    let number = |p: Option<&[u8]>| std::str::from_utf8(p?).ok()?.parse::<u64>().ok();
    let (seq, fence) = (number(parts.next()), number(parts.next()));
    (id, seq.zip(fence).map(|(seq, fence)| Grant { seq, fence }))
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the waiter a message names, with its grant (or all of the channel's, for
    /// [`WAKE_ALL`]).
    fn route(&self, channel: &str, payload: &[u8]) {
        let state = self.lock();
        let Some(c) = state.channels.get(channel) else {
            return;
        };
        if payload == WAKE_ALL.as_bytes() {
            for w in c.waiters.values() {
                bump(&w.wake, None);
            }
            return;
        }
        let (id, grant) = parse(payload);
        let named = std::str::from_utf8(id)
            .ok()
            .and_then(|id| c.by_id.get(id))
            .and_then(|key| c.waiters.get(key));
        if let Some(w) = named {
            bump(&w.wake, grant);
        }
    }

    /// After a (re)subscribe: every subscription is confirmed again, and every waiter may
    /// have missed a message.
    fn resubscribed(&self, names: &[String]) {
        let mut state = self.lock();
        for name in names {
            if let Some(c) = state.channels.get_mut(name) {
                c.confirmed = true;
            }
        }
        for c in state.channels.values() {
            for w in c.waiters.values() {
                bump(&w.wake, None);
            }
        }
    }

    fn confirm(&self, channel: &str) {
        if let Some(c) = self.lock().channels.get_mut(channel) {
            c.confirmed = true;
        }
    }

    fn disconnected(&self) {
        for c in self.lock().channels.values_mut() {
            c.confirmed = false;
        }
    }

    fn names(&self) -> Vec<String> {
        self.lock().channels.keys().cloned().collect()
    }
}

/// Cheap to clone; the tasks end when the last clone (and every interest) is gone.
#[derive(Clone)]
pub(crate) struct Subscriber {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    /// The client's own wake channel (single server, cluster), which never lingers.
    own: Option<String>,
    sources: Vec<mpsc::UnboundedSender<Command>>,
    /// Wakes the sweeper of lingering channels (a channel went idle, or the client is gone).
    sweep: Arc<Notify>,
}

impl Inner {
    /// Forgets `name` and tells every source to unsubscribe. Called under the registry lock,
    /// so the tasks see subscribe/unsubscribe in map order.
    fn unsubscribe(&self, state: &mut State, name: &str) {
        state.channels.remove(name);
        for source in &self.sources {
            let _ = source.send(Command::Unsubscribe(name.to_string()));
        }
    }

    /// Unsubscribes lingering channels idle since before `cutoff`, and the oldest beyond
    /// [`MAX_IDLE`]; returns when the next one is due.
    fn sweep(&self, cutoff: Instant) -> Option<Instant> {
        let mut state = self.registry.lock();
        loop {
            let name = state.idle.front().cloned()?;
            let since = state.channels.get(&name).and_then(|c| c.idle_since);
            match since {
                // It has waiters again or is gone: no longer lingering.
                None => {
                    state.idle.pop_front();
                }
                Some(since) if since <= cutoff || state.idle.len() > MAX_IDLE => {
                    state.idle.pop_front();
                    self.unsubscribe(&mut state, &name);
                }
                Some(since) => return Some(since + LINGER),
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.sweep.notify_one();
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("sources", &self.inner.sources.len())
            .finish_non_exhaustive()
    }
}

/// A waiter's registration on one channel; the channel lingers when the last one is dropped.
pub(crate) struct Interest {
    inner: Arc<Inner>,
    channel: String,
    key: u64,
    wake: watch::Receiver<Wakes>,
    acks: mpsc::Receiver<()>,
    /// The subscription was already confirmed when this interest was registered.
    ready: bool,
}

impl Subscriber {
    /// Starts one task per source (each a list of interchangeable servers); `own` is the
    /// client's wake channel (see [`wake_channel`]) when its waiters queue. Must be called
    /// inside a Tokio runtime.
    pub(crate) fn start(sources: Vec<Vec<Client>>, timeout: Duration, own: Option<String>) -> Self {
        let registry = Arc::new(Registry::default());
        let senders = sources
            .into_iter()
            .map(|clients| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_source(clients, Arc::downgrade(&registry), rx, timeout));
                tx
            })
            .collect();
        let sweep = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            registry,
            own,
            sources: senders,
            sweep: sweep.clone(),
        });
        tokio::spawn(run_sweeper(Arc::downgrade(&inner), sweep));
        Subscriber { inner }
    }

    /// Registers interest in `channel` for the waiter `id` (woken by messages naming it, and
    /// by [`WAKE_ALL`]; `None`: only by the latter). Unless [`Interest::ready`], await
    /// [`Interest::subscribed`] before the attempt whose failure you will wait on, so a
    /// release right after it cannot go unnoticed.
    pub(crate) fn interest(&self, channel: &str, id: Option<&str>) -> Interest {
        let (ack_tx, acks) = mpsc::channel(self.inner.sources.len().max(1));
        let mut state = self.inner.registry.lock();
        let key = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        let entry = state.channels.entry(channel.to_string()).or_default();
        entry.idle_since = None;
        let (wake, rx) = watch::channel(Wakes::default());
        if let Some(id) = id {
            entry.by_id.insert(id.to_string(), key);
        }
        entry.waiters.insert(
            key,
            Waiter {
                id: id.map(str::to_string),
                wake,
            },
        );
        let ready = entry.confirmed;
        if !ready {
            // Sent under the registry lock, so the tasks see subscribe/unsubscribe in map
            // order. Subscribing again to a channel being subscribed is harmless.
            for source in &self.inner.sources {
                let _ = source.send(Command::Subscribe(channel.to_string(), ack_tx.clone()));
            }
        }
        drop(state);
        Interest {
            inner: self.inner.clone(),
            channel: channel.to_string(),
            key,
            wake: rx,
            acks,
            ready,
        }
    }

    /// The client's own wake channel, if its waiters queue.
    pub(crate) fn own_channel(&self) -> Option<&str> {
        self.inner.own.as_deref()
    }

    /// Whether `channel` is subscribed and confirmed now (it is the client's own, or some
    /// waiter of this client waits on it, or did within [`LINGER`]).
    pub(crate) fn is_ready(&self, channel: &str) -> bool {
        let state = self.inner.registry.lock();
        state.channels.get(channel).is_some_and(|c| c.confirmed)
    }
}

impl Interest {
    /// Whether the subscription was confirmed when this interest was registered: messages
    /// from then on reach it (or a reconnect bumps it), so no confirmation needs awaiting.
    pub(crate) fn ready(&self) -> bool {
        self.ready
    }

    /// Resolves once some source confirmed the subscription (at once when [`Self::ready`];
    /// pending forever if no source can; callers bound it).
    pub(crate) async fn subscribed(&mut self) {
        if self.ready {
            return;
        }
        if self.acks.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when a message woke this waiter (or one may have been missed) since the last
    /// call.
    pub(crate) async fn notified(&mut self) {
        if self.wake.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Forgets notifications that arrived so far (not the grant: see [`Self::grant`]).
    pub(crate) fn mark_seen(&mut self) {
        self.wake.borrow_and_update();
    }

    /// The latest grant a message handed this waiter, if any; the waiter judges whether it
    /// is still current (see [`Grant::seq`]).
    pub(crate) fn grant(&self) -> Option<Grant> {
        self.wake.borrow().grant
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut state = self.inner.registry.lock();
        let idle = match state.channels.get_mut(&self.channel) {
            Some(c) => {
                if let Some(w) = c.waiters.remove(&self.key) {
                    if let Some(id) = w.id {
                        c.by_id.remove(&id);
                    }
                }
                // The client's own channel stays subscribed: every wait uses it. Unless it is
                // not (a user without channel permissions): kept, it would have the source
                // redial and fail to subscribe about once a second for the client's life.
                let own = self.inner.own.as_ref() == Some(&self.channel);
                if c.waiters.is_empty() && (!own || !c.confirmed) {
                    c.idle_since = Some(Instant::now());
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if idle {
            state.idle.push_back(self.channel.clone());
            drop(state);
            self.inner.sweep.notify_one();
        }
    }
}

/// A fresh wake channel for one client: under the key prefix (so the ACL channel pattern
/// `&<prefix>*` covers it) and unique, so its messages reach that client's connection alone.
pub(crate) fn wake_channel(prefix: &str) -> String {
    format!("{prefix}wake:{:032x}", rand::rng().random::<u128>())
}

/// Unsubscribes channels that lingered long enough; ends with the subscriber.
async fn run_sweeper(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = match inner.upgrade() {
            Some(inner) => inner.sweep(Instant::now() - LINGER),
            None => return,
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// Waits for the next command while disconnected; `None` when the subscriber is gone.
async fn next_command(
    rx: &mut mpsc::UnboundedReceiver<Command>,
    acks: &mut Vec<mpsc::Sender<()>>,
) -> Option<()> {
    match rx.recv().await? {
        Command::Subscribe(_, ack) => {
            // A source that keeps failing (no channel permissions) may never drain them:
            // keep only the acks of waiters still waiting.
            acks.retain(|a| !a.is_closed());
            acks.push(ack);
        }
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
        match registry.upgrade() {
            Some(reg) => reg.resubscribed(&names),
            None => return,
        }
        for ack in acks.drain(..) {
            let _ = ack.try_send(());
        }
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    match registry.upgrade() {
                        Some(reg) => reg.route(msg.get_channel_name(), msg.get_payload_bytes()),
                        None => return,
                    }
                }
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Command::Subscribe(channel, ack)) => {
                        match tokio::time::timeout(timeout, sink.subscribe(&channel)).await {
                            Ok(Ok(())) => {
                                match registry.upgrade() {
                                    Some(reg) => reg.confirm(&channel),
                                    None => return,
                                }
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
        // after the backoff (reset once a subscription succeeds). Until then new waiters
        // must not count on a subscription.
        match registry.upgrade() {
            Some(reg) => reg.disconnected(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_into_the_waiter_and_its_grant() {
        assert_eq!(parse(b"abc"), (&b"abc"[..], None));
        assert_eq!(
            parse(b"abc 7 1700000000000001"),
            (
                &b"abc"[..],
                Some(Grant {
                    seq: 7,
                    fence: 1_700_000_000_000_001
                })
            )
        );
        assert_eq!(parse(b"abc 7 x"), (&b"abc"[..], None));
        assert_eq!(parse(b"abc 7"), (&b"abc"[..], None));
    }

    /// On the client's wake channel, which carries the waiters of every lock, a message wakes
    /// the waiter it names and no other; `1` wakes them all; the channel never lingers (it
    /// is never unsubscribed once subscribed).
    #[tokio::test]
    async fn a_message_on_the_wake_channel_wakes_the_named_waiter_alone() {
        let sub = Subscriber::start(Vec::new(), Duration::from_secs(1), Some("own".into()));
        let mut a = sub.interest("own", Some("a"));
        let mut b = sub.interest("own", Some("b"));
        // As a source does once it subscribed.
        sub.inner.registry.confirm("own");
        sub.inner.registry.route("own", b"a 3 17");
        assert_eq!(a.grant(), Some(Grant { seq: 3, fence: 17 }));
        assert!(a.wake.has_changed().unwrap());
        assert!(!b.wake.has_changed().unwrap());
        assert_eq!(b.grant(), None);
        a.mark_seen();
        sub.inner.registry.route("own", WAKE_ALL.as_bytes());
        assert!(a.wake.has_changed().unwrap() && b.wake.has_changed().unwrap());
        b.mark_seen();
        drop(a);
        sub.inner.registry.route("own", b"a 4 18");
        assert!(!b.wake.has_changed().unwrap());
        drop(b);
        let state = sub.inner.registry.lock();
        assert!(state.idle.is_empty());
        assert!(state.channels["own"].by_id.is_empty());
    }

    /// A source that cannot subscribe (a user without channel permissions) keeps the acks of
    /// subscriptions asked for meanwhile; those of waiters that gave up must not pile up, one
    /// per contended acquire, for the life of the client.
    #[tokio::test]
    async fn acks_of_waiters_that_left_are_not_kept_while_disconnected() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut acks = Vec::new();
        for _ in 0..1000 {
            let (ack, gone) = mpsc::channel(1);
            drop(gone);
            tx.send(Command::Subscribe("c".to_string(), ack)).unwrap();
            assert!(next_command(&mut rx, &mut acks).await.is_some());
        }
        let (ack, _waiting) = mpsc::channel(1);
        tx.send(Command::Subscribe("c".to_string(), ack)).unwrap();
        assert!(next_command(&mut rx, &mut acks).await.is_some());
        assert_eq!(acks.len(), 1, "only the waiting one's ack is kept");
    }
}
