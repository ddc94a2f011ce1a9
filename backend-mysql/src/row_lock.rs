//! Acquiring in row-lock mode.

use std::time::Duration;

use distlock_core::backend::Deadline;
use distlock_core::{LockError, Result, Wait};
use tokio::time::Instant;

use crate::conn::{bounded, Pinned};
use crate::error;
use crate::schema::{next_fencing_token, Shared};

/// Opens a transaction on a pinned session (an idle one of this client, or a new one) and
/// locks the name's row with `SELECT … FOR UPDATE` (`NOWAIT` for a try), creating the row
/// when it is missing.
/// The transaction stays open while the lock is held. The fencing token is drawn on a
/// helper connection (autocommit), because rolling back the holder's transaction must not
/// undo it (skipped, with the holder's record, when fencing is off). `None` when the wait
/// ran out.
///
/// # Cancel safety
/// Cancel safe: the session is armed until the caller owns the hold, so a dropped acquire
/// closes and `KILL`s it, which rolls the transaction back and frees the row.
pub(crate) async fn acquire(
    shared: &Shared,
    key: &str,
    deadline: &Deadline,
) -> Result<Option<(Pinned, Option<u64>)>> {
    // The acquire's deadline, shared by its retries (see `distlock_core::backend::Deadline`).
    let (wait, deadline) = (deadline.wait(), deadline.at());
    let io = shared.config.probe_timeout;
    let mut pinned = Pinned::checkout(shared).await?;
    // The server's lock wait has whole seconds; a limited wait is also cut by the client.
    let most = shared.config.wait_step.as_secs().max(1);
    let step = match wait {
        Wait::Try => 1,
        Wait::Up(limit) => limit.as_secs().clamp(1, most),
        Wait::Forever => most,
    };
    // Session settings stay with the session: a reused one only sends what changed.
    if pinned.lock_wait_step != Some(step) {
        let conn = pinned.conn()?;
        bounded(io, "setting innodb_lock_wait_timeout", async {
            sqlx::query("SET SESSION innodb_lock_wait_timeout = ?")
                .bind(step)
                .execute(conn)
                .await
                .map_err(|e| error::map("setting innodb_lock_wait_timeout", e))
        })
        .await?;
        pinned.lock_wait_step = Some(step);
    }

    // READ COMMITTED: a holder's open transaction then keeps only the record lock of its
    // own row. Under REPEATABLE READ, when an insert splits an index page, InnoDB turns a
    // holder's record lock on the first row of the new right page into a gap lock on the
    // left page, and an insert of an unrelated new name into that gap waited for the holder:
    // a free name read as busy (issue 10).
    if !pinned.read_committed {
        let conn = pinned.conn()?;
        bounded(io, "setting the isolation level", async {
            sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .execute(conn)
                .await
                .map_err(|e| error::map("setting the isolation level", e))
        })
        .await?;
        pinned.read_committed = true;
    }

    // The row of a name used before is locked at once; the row of a new name is created
    // (outside any transaction) when the locking read finds none, and then locked.
    let mut row_ensured = false;
    // The first attempt never waits, so a free row is taken however short the limit.
    let mut first = true;
    loop {
        // A transaction for every attempt: with `innodb_rollback_on_timeout` a lock wait
        // timeout (and MariaDB's NOWAIT refusal) ends the whole transaction, and a retry
        // outside one would run in autocommit mode, its row lock gone with the statement.
        // (A `BEGIN` inside a live transaction commits it; it holds no lock here.)
        let conn = pinned.conn()?;
        bounded(io, "BEGIN", async {
            sqlx::raw_sql("BEGIN")
                .execute(conn)
                .await
                .map_err(|e| error::map("BEGIN", e))
        })
        .await?;
        let select = if first {
            "SELECT CAST(1 AS SIGNED) FROM distlock_locks WHERE name = ? FOR UPDATE NOWAIT"
        } else {
            "SELECT CAST(1 AS SIGNED) FROM distlock_locks WHERE name = ? FOR UPDATE"
        };
        let nowait = std::mem::replace(&mut first, false);
        let locking = sqlx::query_scalar::<_, i64>(select)
            .bind(key.as_bytes())
            .fetch_optional(pinned.conn()?);
        let outcome = match deadline {
            _ if nowait => match tokio::time::timeout(io, locking).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(LockError::connection(format!(
                        "SELECT … FOR UPDATE NOWAIT: MySQL did not answer within {io:?}"
                    )))
                }
            },
            Some(deadline) => match tokio::time::timeout_at(deadline, locking).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // Still queued for the row: end the session so it never gets it.
                    pinned.kill().await;
                    return Ok(None);
                }
            },
            None => {
                let limit = Duration::from_secs(step) + io;
                match tokio::time::timeout(limit, locking).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        return Err(LockError::connection(format!(
                            "SELECT … FOR UPDATE: MySQL did not answer within {limit:?}"
                        )))
                    }
                }
            }
        };
        match outcome {
            Ok(Some(_)) => break,
            Ok(None) if !row_ensured => {
                // No row: the transaction locked nothing (READ COMMITTED takes no gap
                // locks). End it, create the row, and start again with a non-waiting try.
                row_ensured = true;
                let conn = pinned.conn()?;
                bounded(io, "ROLLBACK", async {
                    sqlx::raw_sql("ROLLBACK")
                        .execute(conn)
                        .await
                        .map_err(|e| error::map("ROLLBACK", e))
                })
                .await?;
                let created = bounded(io + Duration::from_secs(step), "creating the lock's row", {
                    ensure_row(&mut pinned, key)
                })
                .await?;
                if !created && wait == Wait::Try {
                    // The insert ran in autocommit mode and was refused: the session
                    // holds nothing.
                    shared.recycle(pinned).await;
                    return Ok(None);
                }
                first = true;
                continue;
            }
            Ok(None) => {
                return Err(LockError::backend(
                    "the lock's row vanished from distlock_locks",
                ))
            }
            Err(e) if error::is_lock_wait_timeout(&e) => {
                let time_left = deadline.is_some_and(|d| d > Instant::now());
                if wait == Wait::Forever || time_left {
                    continue;
                }
                rollback_and_recycle(shared, pinned, io).await;
                return Ok(None);
            }
            Err(e) => return Err(error::map("SELECT … FOR UPDATE", e)),
        }
    }
    if !shared.config.fencing {
        return Ok(Some((pinned, None)));
    }
    let token = bounded(io, "fencing", async {
        let mut helper = shared
            .pool()
            .acquire()
            .await
            .map_err(|e| error::map("connecting to MySQL", e))?;
        next_fencing_token(&mut helper, key).await
    })
    .await?;
    // The token was drawn on another connection, so it was drawn while the lock was held
    // only if the holder's session is still alive after it: a live session keeps its
    // transaction's row locks. This statement on the holder's session checks that.
    let conn = pinned.conn()?;
    bounded(io, "recording the holder", async {
        sqlx::query("UPDATE distlock_locks SET holder = CONNECTION_ID() WHERE name = ?")
            .bind(key.as_bytes())
            .execute(conn)
            .await
            .map_err(|e| error::map("recording the holder", e))
    })
    .await?;
    Ok(Some((pinned, Some(token))))
}

/// Makes sure the name's row exists, outside any transaction. A plain (non-locking) read
/// first, so an existing row held by someone never blocks us here. Returns false when the
/// insert met a racing creator that already locked the row.
async fn ensure_row(pinned: &mut Pinned, key: &str) -> Result<bool> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT CAST(1 AS SIGNED) FROM distlock_locks WHERE name = ?")
            .bind(key.as_bytes())
            .fetch_optional(pinned.conn()?)
            .await
            .map_err(|e| error::map("reading distlock_locks", e))?;
    if exists.is_some() {
        return Ok(true);
    }
    match sqlx::query("INSERT IGNORE INTO distlock_locks (name) VALUES (?)")
        .bind(key.as_bytes())
        .execute(pinned.conn()?)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if error::is_lock_wait_timeout(&e) => Ok(false),
        Err(e) => Err(error::map("creating the lock's row", e)),
    }
}

async fn rollback_and_recycle(shared: &Shared, mut pinned: Pinned, io: Duration) {
    let rolled_back = match pinned.conn() {
        Ok(conn) => matches!(
            tokio::time::timeout(io, sqlx::raw_sql("ROLLBACK").execute(conn)).await,
            Ok(Ok(_))
        ),
        Err(_) => false,
    };
    if rolled_back {
        shared.recycle(pinned).await;
    } else {
        pinned.kill().await;
    }
}
