//! A connection pinned to one acquire and then to its hold, never shared while it may hold
//! a lock.
//!
//! `GET_LOCK` locks and open transactions belong to the session. A pooled connection keeps
//! them after it goes back to the pool, and the next user of that connection silently
//! "acquires" the same `GET_LOCK` name again (it is re-entrant per session). So a session
//! goes back to the client's idle set (see [`Shared::recycle`]) only once it is *known* to
//! hold nothing: `RELEASE_LOCK` returned 1, `COMMIT`/`ROLLBACK` succeeded, or the server
//! said no to the lock. Anything else closes it and `KILL`s it.

use std::future::Future;
use std::time::Duration;

use distlock_core::backend::{Armed, Undo};
use distlock_core::{LockError, Result};
use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::Connection;

use crate::error;
use crate::schema::Shared;

/// How long a cleanup `KILL` may take.
const KILL_LIMIT: Duration = Duration::from_secs(5);

/// An idle session reused within this time is used without a ping first: a server restart
/// or a `wait_timeout` takes longer, and a session that died meanwhile fails its first
/// statement, which an acquire treats like any lost connection (retried per the retry
/// policy; the armed session is killed).
const UNCHECKED_IDLE: Duration = Duration::from_secs(1);

/// One dedicated server session.
///
/// While *armed*, dropping it (a cancelled acquire, a release that could not be confirmed)
/// closes the socket and also `KILL`s the session from another connection: a session in
/// the middle of a `GET_LOCK` or lock wait does not notice its client is gone until the
/// wait ends, and could otherwise still be handed the lock.
#[derive(Debug)]
pub(crate) struct Pinned {
    conn: Option<MySqlConnection>,
    id: u64,
    /// Session settings already sent on this session (row-lock mode), so a reused session
    /// does not send them again: `innodb_lock_wait_timeout` and whether the isolation
    /// level is `READ COMMITTED`.
    pub(crate) lock_wait_step: Option<u64>,
    pub(crate) read_committed: bool,
    /// Armed until the session is known to hold nothing: dropped armed, it kills the
    /// session in the background (core's arm/disarm guard).
    cleanup: Armed<KillSession>,
}

/// `KILL`s a session that may hold a lock, from a pooled helper connection.
#[derive(Debug)]
struct KillSession {
    pool: MySqlPool,
    id: u64,
    /// The session's `host:port` as the server sees it, to recognise the session when
    /// killing it (ids start again from 1 after a server restart).
    host: Option<String>,
}

impl Undo for KillSession {
    fn undo(&mut self) -> impl Future<Output = ()> + Send + 'static {
        let (pool, id, host) = (self.pool.clone(), self.id, self.host.take());
        async move { kill(&pool, id, host.as_deref()).await }
    }
}

impl Pinned {
    /// A session for one acquire: an idle one of this client if there is one (checked with
    /// a ping if it sat idle for a while), else a new one. Armed either way.
    ///
    /// # Cancel safety
    /// Cancel safe: a session taken from the idle set holds nothing, so dropping it only
    /// costs the session.
    pub(crate) async fn checkout(shared: &Shared) -> Result<Self> {
        while let Some((mut pinned, idle)) = shared.take_idle() {
            pinned.cleanup.arm();
            if idle < UNCHECKED_IDLE {
                return Ok(pinned);
            }
            let alive = match pinned.conn.as_mut() {
                Some(conn) => matches!(
                    tokio::time::timeout(shared.config.probe_timeout, conn.ping()).await,
                    Ok(Ok(()))
                ),
                None => false,
            };
            if alive {
                return Ok(pinned);
            }
            // A session that went away while idle held nothing: just close our side.
            pinned.cleanup.disarm();
        }
        // Boxed: connecting is the rare path (no idle session), and its future (~3 KB)
        // would otherwise be part of every acquire's.
        Box::pin(Pinned::connect(shared)).await
    }

    /// Whether the session may go back to the idle set: it was never handed a lock it could
    /// still hold (the caller vouches for that) and nothing armed it since.
    pub(crate) fn into_idle(mut self) -> Option<Self> {
        self.cleanup.disarm();
        self.conn.is_some().then_some(self)
    }

    /// Opens a new session and learns its id (and its client address, for a safe `KILL`):
    /// once per session, however many acquires it serves.
    pub(crate) async fn connect(shared: &Shared) -> Result<Self> {
        let limit = shared.config.probe_timeout;
        let what = format!("connecting to MySQL at {}", shared.config.address());
        let mut conn = bounded(limit, &what, async {
            MySqlConnection::connect_with(&shared.config.options)
                .await
                .map_err(|e| error::map(&what, e))
        })
        .await?;
        let (id, host) = bounded(limit, "reading the connection id", async {
            let found = sqlx::query_as::<_, (i64, Option<String>)>(
                "SELECT CAST(CONNECTION_ID() AS SIGNED), \
                 (SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID())",
            )
            .fetch_one(&mut conn)
            .await;
            match found {
                Ok(found) => Ok(found),
                // A server without that view: the id alone (kills are then unchecked).
                Err(e) if !error::is_session_gone(&e) => {
                    sqlx::query_scalar::<_, i64>("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                        .fetch_one(&mut conn)
                        .await
                        .map(|id| (id, None))
                }
                Err(e) => Err(e),
            }
            .map_err(|e| error::map("reading the connection id", e))
        })
        .await?;
        let id = u64::try_from(id).unwrap_or_default();
        Ok(Pinned {
            conn: Some(conn),
            id,
            lock_wait_step: None,
            read_committed: false,
            cleanup: Armed::new(KillSession {
                pool: shared.pool().clone(),
                id,
                host,
            }),
        })
    }

    /// The server's id of this session (`CONNECTION_ID()`).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The connection. Always present until the `Pinned` is consumed.
    pub(crate) fn conn(&mut self) -> Result<&mut MySqlConnection> {
        self.conn
            .as_mut()
            .ok_or_else(|| LockError::backend("the pinned connection is gone"))
    }

    /// Closes the session politely. Only for a session known to hold nothing.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped midway, the socket is simply closed.
    pub(crate) async fn close(mut self) {
        self.cleanup.disarm();
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }

    /// Closes the socket and `KILL`s the session, waiting (bounded) for the kill, so that
    /// when it returns the server holds nothing for this session any more.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped midway, the kill goes on in the background.
    pub(crate) async fn kill(mut self) {
        self.cleanup.disarm();
        drop(self.conn.take());
        // A spawned task keeps going when this future is dropped.
        let _ = tokio::spawn(self.cleanup.state_mut().undo()).await;
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // The socket closes first; then `cleanup`, if still armed, kills the session.
        drop(self.conn.take());
    }
}

/// `KILL`s session `id` from a pooled helper connection (which never takes locks).
/// "Unknown thread id" (the session already ended) is fine.
///
/// Session ids start again from 1 when the server restarts, so a bare `KILL id` after a
/// restart could end an unrelated session. When the session's `host` (`ip:port` of its
/// client side, for TCP) is known, the helper first checks that session `id` still has
/// it, and kills only then; both statements run on one connection, so on one server
/// lifetime, during which ids are never reused. (Over a Unix socket `host` is
/// `localhost`, a weaker check.)
pub(crate) async fn kill(pool: &MySqlPool, id: u64, host: Option<&str>) {
    if id == 0 {
        return;
    }
    let attempt = async {
        let mut conn = pool.acquire().await?;
        if let Some(host) = host {
            let same: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST \
                 WHERE ID = ? AND HOST = ?",
            )
            .bind(id)
            .bind(host)
            .fetch_optional(&mut *conn)
            .await?;
            if same.is_none() {
                return Ok(());
            }
        }
        sqlx::query("KILL ?").bind(id).execute(&mut *conn).await?;
        Ok::<(), sqlx::Error>(())
    };
    match tokio::time::timeout(KILL_LIMIT, attempt).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if error::number(&e) == Some(1094) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, id, "could not KILL a pinned MySQL session"),
        Err(_) => tracing::debug!(id, "KILL of a pinned MySQL session timed out"),
    }
}

/// Runs one statement (or a connect) for at most `limit`. A server that does not answer
/// in time is treated as unreachable: an error of kind `Connection`. The caller drops its
/// (armed) connection on error, which kills the session should the server wake up.
pub(crate) async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(LockError::connection(format!(
            "{what}: MySQL did not answer within {limit:?}"
        ))),
    }
}
