//! What one client shares between its acquires: settings, a small helper pool, and the
//! tables it creates on first use.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use distlock_core::{LockError, Result};
use sqlx::mysql::{MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{Connection, Executor};
use tokio::sync::OnceCell;

use crate::config::{Mode, MySqlConfig};
use crate::conn::{bounded, Pinned};
use crate::error;
use crate::prober::Prober;

/// The fencing counters: one row per lock name (its server-side key), never deleted.
pub const FENCE_TABLE: &str = "distlock_fence";
/// The row-lock mode's locks: one row per lock name (its server-side key), never deleted.
/// `holder` is the `CONNECTION_ID()` of the current holder, written inside the holder's
/// transaction (so visible only to `READ UNCOMMITTED` readers, e.g. an operator).
pub const LOCKS_TABLE: &str = "distlock_locks";

const CREATE_FENCE: &str = "CREATE TABLE IF NOT EXISTS distlock_fence (
    name VARBINARY(64) NOT NULL PRIMARY KEY,
    token BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB";

/// Which mode uses this database: one row, written by the first client. The two modes do
/// not exclude each other on one name (a `GET_LOCK` holder and a row-lock holder of the
/// same name would both run), so a database serves one mode only, and a client of the other
/// mode is refused with a `Config` error.
pub const MODE_TABLE: &str = "distlock_mode";

const CREATE_MODE: &str = "CREATE TABLE IF NOT EXISTS distlock_mode (
    id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    mode VARCHAR(16) NOT NULL
) ENGINE=InnoDB";

const CREATE_LOCKS: &str = "CREATE TABLE IF NOT EXISTS distlock_locks (
    name VARBINARY(64) NOT NULL PRIMARY KEY,
    holder BIGINT UNSIGNED NULL
) ENGINE=InnoDB";

/// The state shared by a client's acquires and holds.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: MySqlConfig,
    /// Helper connections for DDL, fencing counters (row-lock mode) and `KILL`s. They never
    /// take a `GET_LOCK` lock or keep a transaction open, so pooling them is safe.
    /// Made on first use: sqlx spawns the pool's upkeep task when the pool is made, which
    /// needs a Tokio runtime, and a client may be built outside one.
    pool: OnceLock<MySqlPool>,
    schema: OnceCell<()>,
    /// Sessions known to hold nothing, with the time each went idle, newest last. They are
    /// closed when the client is dropped (their sockets close with them).
    idle: Mutex<Vec<(Pinned, Instant)>>,
    /// Probes every hold of this client.
    pub(crate) prober: Prober,
}

/// The most idle sessions a client keeps; more are closed.
const MAX_IDLE: usize = 16;

impl Shared {
    pub(crate) fn new(config: MySqlConfig) -> Self {
        Shared {
            prober: Prober::new(config.probe_interval),
            config,
            pool: OnceLock::new(),
            schema: OnceCell::new(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The most recently idled session and how long it sat idle. Sessions idle for longer
    /// than the probe interval are closed rather than reused: nothing kept them from the
    /// server's `wait_timeout`.
    pub(crate) fn take_idle(&self) -> Option<(Pinned, Duration)> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let too_old = self.config.probe_interval;
        idle.retain(|(_, since)| since.elapsed() < too_old);
        idle.pop().map(|(pinned, since)| (pinned, since.elapsed()))
    }

    /// Forgets every idle session (closing its socket).
    pub(crate) fn drop_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(idle);
    }

    /// Gives back a session that is known to hold nothing (a confirmed release, a refused
    /// try, a rolled-back wait), for the next acquire.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped midway, the session is closed.
    pub(crate) async fn recycle(&self, pinned: Pinned) {
        let Some(pinned) = pinned.into_idle() else {
            return;
        };
        let surplus = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push((pinned, Instant::now()));
                None
            } else {
                Some(pinned)
            }
        };
        if let Some(pinned) = surplus {
            pinned.close().await;
        }
    }

    /// The helper pool. Only call it from async code (on a Tokio runtime).
    pub(crate) fn pool(&self) -> &MySqlPool {
        self.pool.get_or_init(|| {
            MySqlPoolOptions::new()
                .max_connections(4)
                .min_connections(0)
                .acquire_timeout(
                    self.config
                        .probe_timeout
                        .max(std::time::Duration::from_secs(5)),
                )
                .connect_lazy_with(self.config.options.clone())
        })
    }

    /// Creates the tables, once per client, and checks that this database serves this
    /// client's mode. Every statement is idempotent and safe to run from many clients at
    /// once. Runs on a connection of its own (not the pool), so that a refused or failed
    /// connect is reported at once, with the server's address and the reason, instead of
    /// a pool timeout.
    ///
    /// # Cancel safety
    /// Cancel safe: the DDL is idempotent and runs again on the next call.
    pub(crate) async fn ensure_schema(&self) -> Result<()> {
        // The one-time work is boxed: inline, its future (~3 KB) was part of every
        // acquire's, which only ever finds the tables made.
        self.schema
            .get_or_try_init(|| {
                Box::pin(async {
                    let config = &self.config;
                    if config.options.get_database().is_none() {
                        return Err(LockError::config(
                            "the MySQL settings name no database; distlock never creates one",
                        ));
                    }
                    // Bounded like every other connect: a server that accepts but never
                    // answers must not hang the first acquire.
                    let what = format!("connecting to MySQL at {}", config.address());
                    let mut conn = bounded(config.probe_timeout, &what, async {
                        MySqlConnection::connect_with(&config.options)
                            .await
                            .map_err(|e| error::map(&what, e))
                    })
                    .await?;
                    let outcome = bounded(
                        config.probe_timeout,
                        &format!("creating distlock's tables at {}", config.address()),
                        create_tables(&mut conn, config),
                    )
                    .await;
                    let _ = conn.close().await;
                    outcome
                })
            })
            .await
            .map(|_| ())
    }
}

async fn create_tables(conn: &mut MySqlConnection, config: &MySqlConfig) -> Result<()> {
    let mut ddl = vec![
        (CREATE_MODE, "creating table distlock_mode"),
        (CREATE_FENCE, "creating table distlock_fence"),
    ];
    if config.mode == Mode::RowLock {
        ddl.push((CREATE_LOCKS, "creating table distlock_locks"));
    }
    for (statement, what) in ddl {
        conn.execute(statement)
            .await
            .map_err(|e| error::map(what, e))?;
    }
    let mine = mode_name(config.mode);
    sqlx::query("INSERT IGNORE INTO distlock_mode (id, mode) VALUES (1, ?)")
        .bind(mine)
        .execute(&mut *conn)
        .await
        .map_err(|e| error::map("recording the mode in distlock_mode", e))?;
    let theirs: String = sqlx::query_scalar("SELECT mode FROM distlock_mode WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| error::map("reading distlock_mode", e))?;
    if theirs != mine {
        return Err(LockError::config(format!(
            "database {:?} serves {theirs} mode, and this client asks for {mine}: the two \
             modes do not exclude each other, so give each its own database",
            config.options.get_database().unwrap_or_default()
        )));
    }
    Ok(())
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::GetLock => "get_lock",
        Mode::RowLock => "row_lock",
    }
}

/// Increments the name's fencing counter and returns the new value, atomically (the
/// `LAST_INSERT_ID(expr)` idiom), in autocommit mode on `conn`. Called while the lock is
/// held, so tokens follow hold order; committed at once, so a holder whose session later
/// dies still consumed its token and the next holder's is greater.
///
/// # Cancel safety
/// Cancel safe: a dropped increment at worst skips a number.
pub(crate) async fn next_fencing_token(conn: &mut MySqlConnection, key: &str) -> Result<u64> {
    let done = sqlx::query(
        "INSERT INTO distlock_fence (name, token) VALUES (?, LAST_INSERT_ID(1)) \
         ON DUPLICATE KEY UPDATE token = LAST_INSERT_ID(token + 1)",
    )
    .bind(key.as_bytes())
    .execute(&mut *conn)
    .await
    .map_err(|e| error::map("incrementing the fencing counter", e))?;
    let token = done.last_insert_id();
    if token > 0 {
        return Ok(token);
    }
    let token: i64 = sqlx::query_scalar("SELECT CAST(LAST_INSERT_ID() AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| error::map("reading the fencing counter", e))?;
    u64::try_from(token)
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| distlock_core::LockError::backend("the fencing counter read back as 0"))
}
