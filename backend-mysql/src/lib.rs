//! MySQL/MariaDB backend for distlock, in two modes.
//!
//! - **`GET_LOCK` mode** (default, `?mode=get_lock`): the lock is a named session lock,
//!   `GET_LOCK(name, timeout)`. The server does the waiting (fractional-second timeouts;
//!   waiting forever is a loop of bounded waits, since negative timeouts mean "forever" on
//!   MySQL but are an error on MariaDB), and a release wakes a waiter within a millisecond.
//!   Fractional timeouts are MariaDB's: MySQL converts the timeout to whole seconds, so
//!   there a limited wait can end up to half a second late, and a remainder under half a
//!   second is retried without waiting until the limit passes (tested on MariaDB only).
//! - **Row-lock mode** (`?mode=row_lock`): the lock is the row lock of the name's row in
//!   table `distlock_locks`, taken with `SELECT … FOR UPDATE` (`NOWAIT` for a try) in a
//!   transaction that stays open while the lock is held; release is `COMMIT`. Waits use
//!   `innodb_lock_wait_timeout` (whole seconds, set per session) in a loop, with the
//!   caller's sub-second limit enforced by the client, which then kills the waiting
//!   session so it can never be granted the row later. Every attempt runs in a fresh
//!   transaction, so servers with `innodb_rollback_on_timeout` are safe too. Its sessions
//!   run at `READ COMMITTED`, so a holder's transaction locks only its own row: under
//!   `REPEATABLE READ`, an index page split turned a holder's row lock into a gap lock and
//!   a never-used name could read as busy. (A server with `binlog_format=STATEMENT`
//!   refuses writes at `READ COMMITTED`; `ROW` and `MIXED`, the defaults, are fine.)
//!
//! ```no_run
//! use distlock_core::LockExt;
//! use distlock_mysql::MySqlLock;
//!
//! # async fn run() -> distlock_core::Result<()> {
//! let locks = MySqlLock::connect("mysql://app:secret@db:3306/app?mode=get_lock").await?;
//! let guard = locks.acquire("payments/order-42").await?;
//! let token = guard.fencing_token(); // hand it to the protected resource
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! # Pinned sessions: one per hold, reused only once known to hold nothing
//! Both kinds of lock belong to a server *session*, and a pooled connection keeps its
//! session's locks after it is returned to the pool: the next user of that connection then
//! "acquires" the same `GET_LOCK` name re-entrantly, and two tasks believe they hold it.
//! So a session serves one acquire and then its hold, alone (pinned), and goes back to the
//! client's set of idle sessions only after a **confirmed** end: `RELEASE_LOCK` returned 1,
//! `COMMIT` or `ROLLBACK` succeeded, or the server refused the lock (`GET_LOCK` returned
//! 0, a `NOWAIT` or insert was refused outside a transaction). Every other ending (an
//! error, a timeout, a cancelled acquire, a lost hold) closes and `KILL`s the session, so
//! a session that might still hold a lock is never reused. One session never carries two
//! holds, so `GET_LOCK`'s per-session re-entrancy can never hand one name to two guards.
//! The next acquire takes the most recently idled session (pinging it first if it sat idle
//! for over a second; sessions idle longer than `probe_interval`, which nothing keeps from
//! the server's `wait_timeout`, are closed instead, at that acquire) or opens a new one; a
//! session's id and client address (for `KILL`) and its settings are looked up and sent
//! once per session. A client keeps at most 16 idle sessions, open until its next acquire
//! finds them too old or the client is dropped: count them in `max_connections`. Every held or waiting lock is still one server connection (mind
//! `max_connections`).
//!
//! If a release (or a cancelled acquire that may have been granted the lock) cannot be
//! confirmed, the connection is closed and its session `KILL`ed from a helper connection,
//! which frees whatever it held. Since session ids start again from 1 after a server
//! restart, the `KILL` is only sent if the session with that id still has the client
//! address (`ip:port`) recorded when it connected, so it never ends an unrelated session.
//! An acquire dropped where no Tokio runtime runs (or while one shuts down) only closes
//! its socket: a session waiting on the server then stays queued until its wait ends, and
//! if it is granted the lock meanwhile it gives it up at once, on finding its client gone. Each client also keeps a small pool of helper
//! connections, which never take locks: for creating tables, for row-lock mode's fencing
//! counter, and for those `KILL`s (the account needs the right to kill its own sessions,
//! which every account has).
//!
//! # Reentrancy
//! Not re-entrant. A second acquire of a name the same client already holds runs on another
//! session, so it is an ordinary contender: `try_acquire` returns `Ok(None)` and a limited
//! wait ends in a `Timeout`. It never deadlocks and never corrupts the outer hold.
//!
//! # Names
//! The server-side name is [`LockName::hashed`]`(64)`: a readable lower-cased prefix and a
//! 128-bit SHA-256 digest of the exact name, so names longer than MySQL's 64 characters
//! and names differing only in case stay distinct. Names are only ever bound as query
//! parameters.
//!
//! # Fencing
//! Table `distlock_fence` has one counter row per name. While the lock is held, the
//! acquire increments it in one round trip (the new value comes back in the statement's
//! OK packet) (`INSERT … ON DUPLICATE KEY UPDATE token = LAST_INSERT_ID(token +
//! 1)`, autocommit) and returns the new value: strictly increasing across holders, and not
//! undone when a holder's session dies. Tokens survive a server crash as far as InnoDB
//! commits do: keep `innodb_flush_log_at_trx_commit=1` (the default). In row-lock mode
//! the increment runs on a helper connection, and the acquire succeeds only if the
//! holder's session is still alive after it. Tables are created on first use with
//! `CREATE … IF NOT EXISTS`; the database is never created (name one that exists in the
//! URL: a missing database is a `Config` error).
//!
//! The counter is durable, so with `innodb_flush_log_at_trx_commit=1` each acquire costs a
//! redo-log flush (an fsync) on the server, most of the cost of an uncontended acquire on
//! a slow disk. A client that does not use tokens can turn them off with `fencing=off` in
//! the URL ([`MySqlConfig::with_fencing`]): its guards then have no token, its
//! capabilities say no fencing, and an acquire is the bare `GET_LOCK` (row-lock mode: the
//! locking `SELECT`, without recording the holder).
//!
//! # One mode per database
//! A `GET_LOCK` holder and a row-lock holder of the same name do not exclude each other.
//! So a database serves one mode: the first client records its mode in table
//! `distlock_mode`, and a client of the other mode is refused at connect (or first
//! acquire) with a `Config` error. Give each mode its own database. (To switch a database
//! to the other mode, stop every client and `DELETE FROM distlock_mode`.)
//!
//! # Lost signal
//! A hold's connection is probed every `probe_interval` (default 3 s; one task per client
//! probes all its holds, each on its own session, side by side): `IS_USED_LOCK(name)
//! = CONNECTION_ID()` in `GET_LOCK` mode, a ping in row-lock mode. A dead connection, a
//! `KILL`, or a probe unanswered within `probe_timeout` (default: twice the interval, at
//! least 5 s) fires the guard's lost signal and closes the connection; releasing a lost
//! hold returns `NotHeld`. The probes also keep the session from idling out.
//! `extend` (holds have no lease) runs the same probe at once: `Ok(())` while the hold is
//! ours, `NotHeld` once it is gone. The guard's owner token is local: the server knows a
//! hold by its session.
//!
//! **Things that silently end a session, and so a lock:** the server's `wait_timeout` /
//! `interactive_timeout` and, in row-lock mode, MariaDB's `idle_transaction_timeout`
//! (keep `probe_interval` well below them: each probe is a command, which restarts
//! those timers), a proxy or load balancer
//! that drops idle connections or multiplexes sessions (ProxySQL, some cloud proxies:
//! connect directly or pin sessions), a failover, `KILL`. The lost signal reports them
//! within about one probe interval; meanwhile, use the fencing token.
//!
//! **`GET_LOCK` is node-local.** Named locks are not replicated: with Galera / MariaDB
//! Cluster, group replication or any primary/replica setup, two clients connected to two
//! different nodes can both take the same lock. Point every client at the same single
//! node (the primary). Row-lock mode on Galera is also unsafe (row locks are node-local
//! until commit); use a single primary.
//!
//! # Configuration, TLS and secrets
//! See [`MySqlConfig::from_url`] for the URL form
//! `mysql://user:password@host:port/database?mode=…&probe_interval=…&ssl-mode=…`. TLS
//! parameters (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`) go to sqlx's
//! `MySqlConnectOptions`; enable this crate's feature `tls-rustls` or `tls-native-tls` to
//! compile TLS in. Passwords never appear in `Debug` output, errors or logs.
//!
//! # Server requirements and footprint
//! MariaDB 10.3+ or MySQL 8.0+ (row-lock mode uses `FOR UPDATE NOWAIT`; `GET_LOCK` mode
//! works on older servers too, since a session never holds more than one lock). The
//! database must exist. The account needs `SELECT`, `INSERT` and `UPDATE` on the
//! database's tables `distlock_mode`, `distlock_fence` and (row-lock mode)
//! `distlock_locks`, plus `CREATE` on the database unless an administrator created those
//! tables beforehand (the statements are in the source, `schema.rs`). `distlock_fence`
//! and `distlock_locks` keep one small row per lock name ever used. Every waiting or held
//! lock is one server connection, plus up to four helper connections per client.
//!
//! # Capabilities
//! Fencing (unless `fencing=off`), lost detection, cross-process. No leases (a hold lasts as long as its
//! connection, which is the backstop: a crashed holder's lock is freed as soon as the
//! server sees its connection close), no FIFO guarantee, not re-entrant.
#![warn(missing_docs)]

mod config;
mod conn;
mod error;
mod get_lock;
mod hold;
mod inspect;
mod prober;
mod row_lock;
mod schema;
mod url;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use distlock_core::backend::{
    new_owner_token, retry_connection_failures, Deadline, GuardParts, HoldStatus,
};
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, ErrorKind, LockGuard, LockName, Result,
};

pub use config::{Mode, MySqlConfig, DEFAULT_PROBE_INTERVAL, DEFAULT_WAIT_STEP};
pub use schema::{FENCE_TABLE, LOCKS_TABLE, MODE_TABLE};
pub use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
pub use url::SCHEMES;

use hold::MySqlHold;
use schema::Shared;

/// The server-side name of a lock: at most 64 ASCII characters, distinct for distinct
/// names. Useful to inspect locks (`IS_USED_LOCK`, the locks and fence tables).
pub fn server_key(name: &LockName) -> String {
    name.hashed(64)
}

/// A MySQL/MariaDB lock client. Cheap to clone (clones share the helper pool).
#[derive(Clone)]
pub struct MySqlLock {
    shared: Arc<Shared>,
}

impl MySqlLock {
    /// A client for `config`. Connects lazily: the first acquire creates the tables.
    pub fn new(config: MySqlConfig) -> Self {
        MySqlLock {
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// Parses `url` (see [`MySqlConfig::from_url`]), connects and creates the tables if
    /// needed, so a bad address or credentials fail here.
    ///
    /// # Cancel safety
    /// Cancel safe: it creates tables idempotently and takes no lock.
    pub async fn connect(url: &str) -> Result<Self> {
        let lock = MySqlLock::new(MySqlConfig::from_url(url)?);
        lock.shared.ensure_schema().await?;
        Ok(lock)
    }

    /// The settings.
    pub fn config(&self) -> &MySqlConfig {
        &self.shared.config
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

#[async_trait]
impl DistributedLock for MySqlLock {
    /// Acquires `name` on a pinned session (idle or new). See the crate docs for each mode.
    /// Connection failures during a wait are retried as `options.retry` says (core's
    /// [`RetryPolicy`](distlock_core::RetryPolicy)); a try reports them at once.
    ///
    /// # Cancel safety
    /// Cancel safe: until the guard exists, the connection is armed to be closed and its
    /// session `KILL`ed if the future is dropped, which frees a lock it may already hold.
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        let shared = &self.shared;
        let io = shared.config.probe_timeout;
        let key = server_key(name);
        let deadline = Deadline::start(options.wait);
        // A waiting acquire rides out a restart or a failover as the core's retry policy
        // says; every attempt starts on a fresh session, within the same deadline.
        let got = retry_connection_failures(&deadline, &options.retry, || {
            let key = &key;
            async move {
                conn::bounded(io * 2, "creating the tables", shared.ensure_schema()).await?;
                let got = match shared.config.mode {
                    Mode::GetLock => get_lock::acquire(shared, key, &deadline).await,
                    // Boxed: its future is ~15 KB, and held inline it made every
                    // acquire's (boxed) future that large, in either mode: 15 KB copied per
                    // uncontended get_lock cycle.
                    Mode::RowLock => Box::pin(row_lock::acquire(shared, key, &deadline)).await,
                };
                // A lost connection may mean a restarted server: the other idle sessions
                // are then dead too, and a retry should not meet them.
                if got
                    .as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::Connection)
                {
                    shared.drop_idle();
                }
                got
            }
        })
        .await?;
        let Some((pinned, token)) = got else {
            return Ok(None);
        };
        let status = HoldStatus::new();
        let hold = MySqlHold::start(
            Arc::downgrade(shared),
            &shared.prober,
            pinned,
            status.clone(),
            key,
            shared.config.mode,
            shared.config.probe_timeout,
        );
        Ok(Some(LockGuard::new(GuardParts {
            name: name.clone(),
            // Local: the server knows the hold by its session, not by a token.
            owner_token: new_owner_token(),
            fencing_token: token,
            hold,
            status,
            lease: None,
        })))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_fencing(self.shared.config.fencing)
            .with_lost_detection(true)
            .with_cross_process(true)
    }

    fn backend_name(&self) -> &'static str {
        "mysql"
    }

    /// Holders, breaking a hold and the doctor: see [`Inspect`](distlock_core::Inspect).
    fn inspect(&self) -> Option<&dyn distlock_core::Inspect> {
        Some(self)
    }
}

impl fmt::Debug for MySqlLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlLock")
            .field("config", &self.shared.config)
            .finish()
    }
}
