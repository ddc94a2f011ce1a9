//! Acquiring in `GET_LOCK` mode.

use std::time::Duration;

use distlock_core::backend::Deadline;
use distlock_core::{LockError, Result, Wait};
use tokio::time::Instant;

use crate::conn::{bounded, Pinned};
use crate::error;
use crate::schema::{next_fencing_token, Shared};

/// Takes `key` on a pinned session (an idle one of this client, or a new one), waiting on
/// the server as `wait` says, then draws a fencing token on the same session unless
/// fencing is off. `None` when the wait ran out.
///
/// # Cancel safety
/// Cancel safe: the session is armed until the caller owns the hold, so a dropped acquire
/// closes it and `KILL`s it, which frees a lock it may already have been granted.
pub(crate) async fn acquire(
    shared: &Shared,
    key: &str,
    deadline: &Deadline,
) -> Result<Option<(Pinned, Option<u64>)>> {
    // The acquire's deadline, shared by its retries (see `distlock_core::backend::Deadline`).
    let (wait, deadline) = (deadline.wait(), deadline.at());
    let io = shared.config.probe_timeout;
    let mut pinned = Pinned::checkout(shared).await?;
    loop {
        let server_wait = match (wait, deadline) {
            (Wait::Up(_), Some(deadline)) => deadline.saturating_duration_since(Instant::now()),
            // Waiting forever is a loop of bounded waits: a negative timeout means "forever"
            // on MySQL but is an error (NULL) on MariaDB.
            (Wait::Forever, _) => shared.config.wait_step,
            _ => Duration::ZERO,
        };
        let conn = pinned.conn()?;
        let got: Option<i64> = bounded(server_wait + io, "GET_LOCK", async {
            sqlx::query_scalar("SELECT CAST(GET_LOCK(?, ?) AS SIGNED)")
                .bind(key)
                .bind(server_wait.as_secs_f64())
                .fetch_one(conn)
                .await
                .map_err(|e| error::map("GET_LOCK", e))
        })
        .await?;
        match got {
            Some(1) => break,
            Some(_) => {
                let time_left = deadline.is_some_and(|d| d > Instant::now());
                if wait == Wait::Forever || time_left {
                    continue;
                }
                // GET_LOCK said 0: the session holds nothing, so it can serve again.
                shared.recycle(pinned).await;
                return Ok(None);
            }
            None => {
                return Err(LockError::backend(
                    "GET_LOCK returned NULL (an error on the server)",
                ))
            }
        }
    }
    if !shared.config.fencing {
        return Ok(Some((pinned, None)));
    }
    let conn = pinned.conn()?;
    let token = bounded(io, "fencing", next_fencing_token(conn, key)).await?;
    Ok(Some((pinned, Some(token))))
}
