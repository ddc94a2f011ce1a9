//! ZooKeeper backend for distlock: the classic lock recipe (ephemeral-sequential nodes,
//! watch the predecessor), fenced by the lock node's `czxid`, with session-aware lost
//! signals.
//!
//! ```no_run
//! use distlock_core::LockExt;
//! use distlock_zookeeper::ZkLock;
//!
//! # async fn demo() -> distlock_core::Result<()> {
//! let locks = ZkLock::from_url("zk://10.0.0.1:2181,10.0.0.2:2181/myapp?session_timeout=10s").await?;
//! let guard = locks.acquire("payments/order-42").await?;
//! let fence = guard.fencing_token(); // the lock node's czxid: hand it to the resource
//! # let _ = fence;
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! # The recipe
//!
//! Written here on top of the `zookeeper-client` crate's plain operations rather than its
//! own `Client::lock`: that recipe generates its own node id (so a node cannot carry
//! distlock's owner token), has no one-shot try mode, returns no `Stat` (the `czxid` would
//! cost another round trip) and knows nothing of hold-loss signalling. The semantics are
//! the same as Curator's `InterProcessMutex`:
//!
//! 1. Each lock name has a parent node `<chroot><root>/<escaped name>` (root `/distlock`
//!    by default; the name escaped with [`LockName::escaped`](distlock_core::LockName::escaped),
//!    so any UTF-8 name — `/` included — is one path segment and distinct names stay
//!    distinct; an escaped name longer than 1024 bytes is replaced by
//!    [`LockName::hashed`](distlock_core::LockName::hashed), a readable prefix and a 128-bit
//!    SHA-256 digest marked by a `.` that escaped names never contain, so that no request
//!    outgrows the server's 1 MiB `jute.maxbuffer`). The parent is a **container** node:
//!    the server deletes it once its last child is gone, so used-once names leave nothing
//!    behind. The root is persistent.
//! 2. A contender creates an `EPHEMERAL_SEQUENTIAL` child `_c_<owner token>-lock-<seq>`
//!    (Curator's naming). The owner token in the name lets a contender find its node again
//!    when the create's reply was lost to a connection loss (after a `sync`), so a lost
//!    reply never leaves an orphan queued ahead of everyone.
//! 3. It lists the children (the `getChildren` goes out right behind the create, without
//!    waiting for its reply: the session serves it after the create, so the listing shows
//!    our node, and the lowest check costs no round trip of its own); the lowest sequence
//!    holds the lock. Every other contender watches only its immediate predecessor (no
//!    herd effect), and its own node (to notice it vanishing). When the predecessor was
//!    the lowest and its deletion arrives, the waiter holds the lock without listing
//!    again: nobody can have come in ahead (sequence numbers only grow while its node keeps
//!    the parent alive), and its own node's deletion, had it happened, would have arrived
//!    first on the connection. After any session state change (a reconnection re-registers
//!    watches, whose events then come in no particular order), or when someone further
//!    ahead went, it re-lists.
//! 4. Release deletes the node. An uncontended acquire + release is 3 requests: create,
//!    getChildren, delete. The listing sets a children watch on the parent, and that watch
//!    is the held node's: any change among the contenders fires it, a deletion of our node
//!    included; when it fires while the lock is still held (someone came or went), an
//!    `exists` watch on our node takes over. A try that finds someone ahead, or a limited
//!    wait that runs out, deletes its node before returning (for at most 500 ms, then in the background;
//!    the whole create-and-wait runs under the wait limit, so a hung connection cannot
//!    stretch it).
//! 5. A dropped acquire future deletes its node in the background: by path, or — when the
//!    create's reply had not arrived yet — by listing the parent and deleting the child that
//!    carries its owner token (one session's requests are served in order, so the listing
//!    sees the create). Without a Tokio runtime the session's end removes it.
//!
//! Waiters are served in the order their nodes were created: the backend claims **FIFO**.
//!
//! It is **not reentrant**: a second acquire of a name by the same client is an ordinary
//! contender (a try returns `None`, a limited wait times out, a wait-forever acquire waits
//! for the first hold's release) and never disturbs the first hold.
//!
//! # Fencing
//!
//! The fencing token is the lock node's `czxid`, the zxid of the transaction that created
//! it. Zxids are totally ordered across the ensemble, and a holder's node was created after
//! the node of every earlier holder of that name (it was queued behind it), so tokens
//! strictly increase across holders and clients, including across session expiries and
//! the parent container being recreated.
//!
//! # Sessions
//!
//! A [`ZkLock`] opens one session and every lock it takes lives on it (clones share it).
//! Nodes are ephemeral, so the session is the backstop: a holder that crashes frees its
//! locks when the server expires its session, within about the session timeout.
//!
//! - A connection loss the client recovers from (another ensemble member, the same server
//!   back) within **2/5 of the session timeout** keeps every hold.
//! - When the session expires, is closed, fails authentication, or stays disconnected for
//!   longer than 2/5 of the session timeout, every hold of that session is marked lost (the
//!   guard's lost signal fires), the session is dropped (closing it, which deletes its
//!   nodes if it still lives), and the next acquire opens a new session. A lost hold is
//!   never re-acquired behind the user's back; releasing it returns `NotHeld`.
//!   2/5 of the timeout, because the client notices a silent connection only up to 9/20 of
//!   it after the last reply, while the server may expire the session a full timeout after
//!   it last heard from us: the loss is reported by 17/20 of the timeout, with 3/20 to spare.
//! - A hold also watches its own node: if someone with the rights deletes it, the hold is
//!   reported lost.
//! - An acquire (a try or a wait) whose session ends before it is granted is retried once
//!   on a new session, within the same wait limit, at the back of the queue (its node went
//!   with the session). A *waiting* acquire goes further, as Curator's retry policy does: it
//!   rides out a leader election or an outage by retrying connection failures as
//!   `AcquireOptions::retry` says (core's `RetryPolicy`, the same on every backend: jittered
//!   backoff until its deadline, giving up with the last retryable `Connection` error after
//!   a run of failures of 15 s by default, also under `Wait::Forever`, so that an outage
//!   surfaces). A try fails at once. A release or `extend` during a disconnection returns
//!   `NotHeld` as soon as the session is declared over.
//! - A request whose reply is lost to a broken connection is treated as "outcome unknown":
//!   a create is looked up by owner token before it is sent again, a delete that then finds
//!   nothing counts as done.
//!
//! # Security
//!
//! [`ZkConfig::with_digest`] (or `user:password@` in the URL) authenticates sessions with the
//! `digest` scheme. [`ZkConfig::with_creator_only_acl`] (`?acl=creator`) creates the root,
//! the parents and the lock nodes with a creator-only ACL, so a client without the same
//! credentials can neither list nor create nor delete lock nodes (deleting a node needs the
//! DELETE permission on its parent). Passwords never appear in `Debug`, errors or logs.
//!
//! # What is and is not guaranteed
//!
//! - Mutual exclusion holds as long as ZooKeeper's own guarantees hold (a quorum is up).
//! - A holder learns of a partition no later than 2/5 of the session timeout after it
//!   noticed it. It notices a silent connection within 9/20 of the timeout, but a holder
//!   connected to a server that is itself cut off from the quorum hears nothing amiss until
//!   that server gives up (`syncLimit` × `tickTime`), possibly after its session expired at
//!   the leader. And a process that is paused (GC, SIGSTOP) past its session timeout may
//!   act after its hold was taken over. Use the fencing token at the protected resource.
//! - `extend` does nothing but check the node still exists (holds have no lease), and
//!   returns `NotHeld` when it does not.
//! - `options.ttl` and `options.renew` are ignored: the backstop is the session timeout,
//!   set per client ([`ZkConfig::with_session_timeout`], `?session_timeout=`).
//! - The server clamps the session timeout to 2–20 ticks; the negotiated value is the one
//!   that counts.
#![warn(missing_docs)]

mod config;
mod error;
mod hold;
mod inspect;
mod lock;
mod recipe;
mod refused;
mod session;
mod url;
mod watching;

pub use config::{Credentials, ZkConfig, DEFAULT_ROOT, DEFAULT_SESSION_TIMEOUT};
pub use lock::ZkLock;
pub use url::SCHEMES;
pub use zookeeper_client;
