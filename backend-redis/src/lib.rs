//! Redis backend for distlock: one server ([`RedisLock::connect`]), a Redis Cluster
//! ([`RedisLock::connect_cluster`]) or a Redlock quorum over independent servers
//! ([`Redlock`]). Pick one by URL with [`connect`]:
//!
//! | URL | client |
//! |---|---|
//! | `redis://[user:password@]host:port/db` (`rediss://` for TLS, feature `tls`) | [`RedisLock`], one server |
//! | `redis+cluster://[user:password@]host1:port1,host2:port2/` | [`RedisLock`] on a cluster (hosts are seeds) |
//! | `redis+redlock://[user:password@]host1:port1,host2:port2,host3:port3/db` | [`Redlock`] |
//!
//! Query parameters `prefix=<key prefix>` (default `distlock:`) and `ttl=<default lease>`
//! (default `30s`; durations carry a unit) apply to every form; [`RedisConfig::builder`]
//! sets the same in code. Schemes ([`SCHEMES`]) are case-insensitive.
//!
//! `rediss://` needs the crate's `tls` feature (rustls through the redis crate, with the
//! webpki roots); the application must install a rustls `CryptoProvider` before connecting.
//! Without the feature a `rediss://` URL is a [`Config`](distlock_core::ErrorKind::Config)
//! error. TLS is not exercised by this crate's tests.
//!
//! Connection errors (kind [`Connection`](distlock_core::ErrorKind::Connection), retryable)
//! end a try at once. A waiting acquire rides out an outage shorter than its wait, as on
//! every backend: it retries as `AcquireOptions::retry` says (core's
//! [`RetryPolicy`](distlock_core::RetryPolicy): jittered backoff, and the last error after
//! 15 s of failures in a row by default, also when waiting forever).
//!
//! ```no_run
//! use distlock_core::LockExt;
//!
//! # #[tokio::main] async fn main() -> distlock_core::Result<()> {
//! let locks = distlock_redis::connect("redis://127.0.0.1:6379/0?prefix=shop:").await?;
//! let guard = locks.acquire("order-42").await?;
//! let token = guard.fencing_token(); // send it along with every write to the resource
//! // … the critical section …
//! guard.release().await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! # The protocol
//!
//! A lock named `n` under prefix `p` uses the key `p{E}:lock` (holds the owner token), the key
//! `p{E}:fence` (the fencing counter), the waiter queue `p{E}:queue`, `p{E}:queue-expiry` and
//! `p{E}:queue-grant` (see Waiting) and the channel `p{E}:released` (Redlock's; queued waiters
//! listen on their client's wake channel `pwake:<random client id>`), where `E` is
//! [`LockName::escaped`](distlock_core::LockName::escaped) — so any UTF-8 name is safe, distinct
//! names never collide, and `{E}` is the Redis Cluster hash tag that puts all keys on one slot.
//! Four Lua scripts do all the work, sent by `EVALSHA` and reloaded on `NOSCRIPT`:
//!
//! * **acquire**: `SET lock token NX PX ttl` when the waiter queue is empty or the caller
//!   heads it (a failed waiting attempt joins the queue in the same script), and on success advances the fence counter
//!   (an `INCR` with a clock floor, see below), returning the fencing token in the same
//!   atomic step. The owner token is a fresh random UUID generated before each attempt is
//!   sent (so the undo of a failed attempt can never remove a later one's hold); a command
//!   resent within an attempt that finds its own token (the reply to the first was lost)
//!   counts as acquired, so the script is idempotent.
//! * **release**: compare-and-delete (`GET == token` then `DEL`), then a direct handoff to the
//!   live queue head (see Waiting): the lock set to the head's grant token (a 3 s lease), the
//!   fence advanced as on acquire, the head popped, and `"<waiter id> <seq> <fence>"`
//!   published on the head's wake channel. Another owner's lock is never touched: a stale guard
//!   gets `NotHeld`.
//!   A command that fails on a broken connection is sent once more (every script is
//!   idempotent per owner token); for a release whose first try did free the lock before its
//!   reply was lost, that second try reports `NotHeld` — the lock is free either way.
//! * **extend**: compare-and-`PEXPIRE`; `NotHeld` when the key is gone or someone else's.
//! * **leave**: a waiter that gives up removes its queue entry, compare-and-deletes a grant
//!   made to it that it never took, and hands a free lock to the next head.
//!
//! # Leases, renewal and the lost signal
//!
//! Every hold has a TTL (the acquire's or the configured default, 30 s). The guard renews it
//! every TTL/3 in the background (unless renewal is turned off) and knows its local validity
//! deadline: the instant the acquiring request was *sent* plus TTL minus a drift allowance
//! (1 % + 2 ms). If no renewal succeeded by then — the server is unreachable or frozen — the
//! guard signals lost at that deadline, which comes before the server can expire the key, so
//! nobody else can have the lock before the holder is told. A renewal that finds the key gone
//! or re-owned signals lost at once. A lost hold is never re-acquired behind the user's back.
//! One scheduler per client renews all its holds: the holds due within a tenth of their TTL
//! of each other go in one script call (up to 1,000 keys, compare-and-`PEXPIRE` each, one
//! result per key) — per server for Redlock; on a cluster, whose keys hash to any slot, one
//! call per key, sent concurrently.
//! Connections reconnect by themselves (`ConnectionManager`; the cluster client follows slot
//! moves), so a killed connection costs at most a retried command, not the hold.
//!
//! # Fencing tokens
//!
//! A lock can be lost while its holder still runs (a long GC pause, a frozen VM, a partition
//! longer than the TTL): the lost signal arrives, but the holder may be in the middle of a
//! write. Fencing makes that write harmless: every acquire returns a token strictly greater
//! than all earlier ones for the name; the holder sends it with each write, and the protected
//! resource remembers the highest token it has seen and rejects smaller ones. The old holder's
//! late write then fails instead of overwriting the new holder's work.
//!
//! Each token is `max(previous token + 1, the server's clock in microseconds)`, computed in
//! the acquire script. So tokens strictly increase per name, and keep increasing even when
//! the counter itself is lost or rolled back — a restart without persistence, or a failover
//! to a replica that missed the last increments — provided the servers' clocks do not go
//! back. The counter key never expires: one small key per lock name ever used; delete
//! `prefix{…}:fence` keys only for names that will never be locked again.
//!
//! # What Redis cannot promise
//!
//! * **Failover can lose a lock.** Replication is asynchronous: if a primary acknowledges the
//!   `SET` and dies before a replica copies it, the promoted replica has no lock and another
//!   client can take it while the first still believes it holds it (its renewal then finds
//!   the key re-owned and signals lost — afterwards, not before). The same applies to a
//!   restart without persistence. Fencing tokens are the defence (they stay monotonic across
//!   such a loss, see above); `WAIT`-based tricks are not.
//! * **TTLs follow the server's wall clock.** Redis expires keys by its system time: a clock
//!   step forward on the server ends leases early (and a step back makes them last longer).
//!   The guard's own deadline uses this host's monotonic clock and errs early, but it cannot
//!   see a jump on the server. Run NTP in slewing mode and keep a margin between the TTL and
//!   the work done between checks of [`LockGuard::is_held`](distlock_core::LockGuard::is_held).
//! * **Pub/sub is at-most-once.** Release messages can be lost (a reconnecting subscriber);
//!   waiters therefore also re-check, see below. A lost message costs latency, never safety.
//! * **FIFO by waiter entries that expire.** On a single server or a cluster waiters queue
//!   (see Waiting) and get the lock in arrival order; a waiter stalled for longer than its
//!   queue entry lives (1 s without an attempt) loses its place and queues again at the tail.
//!   Redlock is not FIFO.
//! * **Redlock** adds tolerance of a minority of failed servers, not stronger safety, and
//!   carries no fencing tokens: see [`Redlock`].
//!
//! # Waiting
//!
//! On a single server or a cluster, waiters queue per lock: the list `p{E}:queue` (waiter ids,
//! head first) and the sorted set `p{E}:queue-expiry` (each entry's expiry, server time). A
//! waiting acquire's first failed attempt appends its waiter id in the same script, and every
//! later attempt refreshes the entry (it lives 1 s). The acquire script grants the lock only
//! when the queue is empty or the caller is its head, so a `try_acquire` never jumps the
//! queue; expired entries at the head (a waiter that vanished without leaving: a killed
//! process, a frozen host) are dropped by whichever script sees them, and a free lock is
//! handed to the new head.
//!
//! Every waiting attempt also records in the hash `p{E}:queue-grant` the wait's *grant
//! token* (one random owner token per wait, distinct from each attempt's own), its TTL, the
//! attempt's number and its client's *wake channel* `pwake:<random client id>`. The release
//! script *grants* the lock to the live head: sets the lock to that grant token with a short
//! lease (3 s, or the TTL when shorter; the guard renews it to the TTL a tenth of the way in,
//! so a hold released within 0.3 s costs no renewal), advances the
//! fence, pops the head and publishes `"<waiter id> <seq> <fence>"` on the
//! head's wake channel, so one connection (the granted client's subscriber) reads it however
//! many clients wait on the lock; the subscriber routes it to that one waiting task, which
//! returns its guard without another round trip (Redlock, which keeps no queue, publishes `1`
//! on `p{E}:released` and wakes all, who race). A queue entry written by an older client,
//! which names no wake channel, is told on `p{E}:released` as before. The guard's lease
//! counts from the send time of attempt `seq` (it ran before the grant), never from the
//! message's arrival;
//! when that leaves less than half the TTL (a waiter stalled before reading the message), or
//! the message names another attempt, the waiter confirms with one more attempt, which finds
//! the lock held by its grant token, resets the lease and returns it — the same path picks up
//! a grant whose message was lost, at the next re-check. A waiter that gives up — its limit
//! ran out, it failed, or its future was dropped — leaves the queue (before returning, or in
//! the background when dropped), compare-and-deletes a grant it never took, and hands a free
//! lock to the next head. A waiter that died less than an entry lifetime (1 s) before a grant
//! still gets it: the lock then stays blocked until that short granted lease (3 s at most)
//! runs out. The queue keys expire by themselves once
//! nobody waits.
//!
//! The subscription goes through one pub/sub connection per client (shared by all its
//! waiters, opened on the first wait, reconnecting by itself and counting a reconnect as a
//! possible missed message). The wake channel is subscribed on the client's first wait and
//! stays subscribed (a Redlock lock's channel stays subscribed for 5 s after its last waiter
//! left), so later waits, on any name, do not subscribe again; a wait that finds the
//! subscription not yet confirmed waits for the confirmation, and tries again. Then a waiter sleeps until the first
//! of: its wake-up message; the holder's lease expiry when it is next in line (the `PTTL` the
//! failed attempt returned, since an expiry publishes nothing); a safety-net re-check drawn
//! uniformly from [`RECHECK`] (100–250 ms, jittered; it also refreshes the queue entry); or
//! its wait limit. Handoff on release is therefore the release plus one message (no further
//! round trip), not a poll interval, and a limited wait returns within a few milliseconds of
//! its limit. A zero limit is a single attempt (like `try_acquire`), and a limit too large for
//! the clock waits forever. On a cluster the subscription lives on one node (the cluster
//! forwards `PUBLISH` everywhere); Redlock subscribes on every server.
//!
//! # Reentrancy
//!
//! Not reentrant: every acquire has its own owner token, so a second acquire of a name the same
//! client already holds is an ordinary contender — `try_acquire` returns `Ok(None)` and a
//! waiting acquire waits (or times out) until the first guard releases. It never deadlocks
//! the first hold or corrupts it.
//!
//! # Cancellation
//!
//! Dropping an acquire future is safe at any point. While an attempt is in flight (the `SET`
//! may have landed without the caller learning it), a drop guard is armed; dropped armed, it
//! spawns a compare-and-delete by the owner token, and the TTL frees the key if even that
//! cannot reach the server. A guard dropped without `release` is released the same way.
//!
//! # Server and ACL requirements
//!
//! Redis ≥ 5 (scripts replicate their effects, so `TIME` may precede writes). An ACL user
//! needs the keys `~<prefix>*`; the commands `EVALSHA`, `SCRIPT LOAD`, `SUBSCRIBE`,
//! `UNSUBSCRIBE`, `PING` and those the scripts run (`SET`, `GET`, `DEL`, `PEXPIRE`, `PTTL`,
//! `TIME`, `PUBLISH`, `EXISTS`, `LINDEX`, `LPOP`, `RPUSH`, `LREM`, `ZADD`, `ZREM`, `ZSCORE`);
//! and the channels `&<prefix>*` for notified waiting. Without
//! channel permissions (the default for users created on Redis 7) locking still works and
//! releases still succeed, but waiters only learn of a release by their re-check (100–250 ms),
//! and the subscriber retries its refused subscription with a backoff of up to a second.
//!
//! # Credentials
//!
//! Passwords in URLs reach the server only: `Debug` of every type, error messages and error
//! sources show `***` instead (texts from the server or the client library are scrubbed too).
//! A password the server refuses is a [`Config`](distlock_core::ErrorKind::Config) error, not
//! a retryable connection error.
#![warn(missing_docs)]

mod backend;
mod config;
mod conn;
mod engine;
mod error;
mod hold;
mod inspect;
mod keys;
mod lock;
mod redlock;
mod scripts;
mod server_url;
mod subscriber;
mod url;

pub use config::{RedisConfig, RedisConfigBuilder, DEFAULT_KEY_PREFIX};
pub use engine::RECHECK;
pub use error::RedisFailure;
pub use lock::RedisLock;
pub use redlock::Redlock;
pub use server_url::ServerUrl;
pub use url::{connect, parse_url, Mode, SCHEMES};
