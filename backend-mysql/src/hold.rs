//! One held lock: its pinned connection, its release, and the probe that notices a loss.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::backend::{Hold, HoldStatus};
use distlock_core::observe::LossReason;
use distlock_core::{LockError, Result};
use tokio::sync::Mutex;

use crate::config::Mode;
use crate::conn::Pinned;
use crate::error;
use crate::prober::Prober;
use crate::schema::Shared;

#[derive(Debug)]
enum Slot {
    Held(Pinned),
    Released,
    Lost(String),
}

/// A hold in either mode. It owns the pinned connection: in `GET_LOCK` mode the session
/// holds the named lock, in row-lock mode the open transaction holds the row lock.
#[derive(Debug)]
pub(crate) struct MySqlHold {
    slot: Mutex<Slot>,
    status: HoldStatus,
    key: String,
    mode: Mode,
    probe_timeout: Duration,
    /// Where a session goes after a confirmed release. Weak, so that a guard outliving its
    /// client does not keep the client's idle sessions open.
    shared: Weak<Shared>,
    /// Kept so that a guard outliving its client is still probed.
    _prober: Prober,
}

impl MySqlHold {
    /// Wraps `pinned` and has `prober` probe it from now on.
    pub(crate) fn start(
        shared: Weak<Shared>,
        prober: &Prober,
        pinned: Pinned,
        status: HoldStatus,
        key: String,
        mode: Mode,
        probe_timeout: Duration,
    ) -> Arc<Self> {
        let hold = Arc::new(MySqlHold {
            slot: Mutex::new(Slot::Held(pinned)),
            status,
            key,
            mode,
            probe_timeout,
            shared,
            _prober: prober.clone(),
        });
        prober.enrol(&hold);
        hold
    }

    /// Whether the hold is neither released nor lost.
    pub(crate) fn is_held(&self) -> bool {
        self.status.is_held()
    }

    /// Checks that the session is alive and (in `GET_LOCK` mode) still owns the lock.
    /// On failure the hold becomes lost: the connection is closed (and killed, in case
    /// only our side of it failed) and the lost signal fires.
    pub(crate) async fn check(&self) -> Result<()> {
        let mut slot = self.slot.lock().await;
        let Slot::Held(pinned) = &mut *slot else {
            return match &*slot {
                Slot::Lost(why) => Err(LockError::not_held(format!("the hold was lost: {why}"))),
                _ => Err(LockError::not_held("the hold was released")),
            };
        };
        let outcome = tokio::time::timeout(self.probe_timeout, probe(pinned, self.mode, &self.key))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the connection did not answer a probe within {:?}",
                    self.probe_timeout
                ))
            });
        match outcome {
            Ok(()) => Ok(()),
            Err(why) => {
                // The signal fires before the connection goes: closing it may free the lock
                // for another client at once, and this guard must already count as lost.
                self.status.mark_lost_because(
                    LossReason::ConnectionLost,
                    LockError::lost(format!("the MySQL lock was lost: {why}")),
                );
                // Dropping the armed connection closes it and KILLs the session.
                *slot = Slot::Lost(why.clone());
                Err(LockError::not_held(format!("the hold was lost: {why}")))
            }
        }
    }
}

/// One probe: `Ok` while the hold is intact, else why not.
async fn probe(pinned: &mut Pinned, mode: Mode, key: &str) -> std::result::Result<(), String> {
    let id = pinned.id();
    let conn = pinned.conn().map_err(|e| e.to_string())?;
    match mode {
        Mode::GetLock => {
            let owner: Option<i64> = sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
                .bind(key)
                .fetch_one(conn)
                .await
                .map_err(|e| format!("the connection failed: {e}"))?;
            match owner {
                Some(owner) if u64::try_from(owner).ok() == Some(id) => Ok(()),
                _ => Err("the session no longer owns the lock".into()),
            }
        }
        Mode::RowLock => {
            use sqlx::Connection;
            conn.ping()
                .await
                .map_err(|e| format!("the connection failed: {e}"))
        }
    }
}

#[async_trait]
impl Hold for MySqlHold {
    /// `RELEASE_LOCK` (checking it returns 1) or `COMMIT`, then gives the session back to
    /// the client's idle set. A release that cannot be confirmed closes and kills the
    /// session, which frees the lock; such a session is never reused.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped midway, the connection is closed and its session killed, which
    /// frees the lock; a later release then reports success.
    async fn release(&self) -> Result<()> {
        let mut slot = self.slot.lock().await;
        let mut pinned = match std::mem::replace(&mut *slot, Slot::Released) {
            Slot::Held(pinned) => pinned,
            Slot::Released => return Ok(()),
            Slot::Lost(why) => {
                let e = LockError::not_held(format!("the hold was lost: {why}"));
                *slot = Slot::Lost(why);
                return Err(e);
            }
        };
        let attempt = async {
            let conn = pinned.conn()?;
            match self.mode {
                Mode::GetLock => {
                    let released: Option<i64> =
                        sqlx::query_scalar("SELECT CAST(RELEASE_LOCK(?) AS SIGNED)")
                            .bind(&self.key)
                            .fetch_one(conn)
                            .await
                            .map_err(unconfirmed)?;
                    match released {
                        Some(1) => Ok(()),
                        Some(_) => Err(LockError::not_held(
                            "RELEASE_LOCK: the lock is held by another session",
                        )),
                        None => Err(LockError::not_held("RELEASE_LOCK: the lock is not held")),
                    }
                }
                Mode::RowLock => sqlx::raw_sql("COMMIT")
                    .execute(conn)
                    .await
                    .map(|_| ())
                    .map_err(unconfirmed),
            }
        };
        let outcome = tokio::time::timeout(self.probe_timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(LockError::connection(format!(
                    "the release was not confirmed within {:?}; the connection was closed, \
                     which frees the lock once the server notices",
                    self.probe_timeout
                )))
            });
        match outcome {
            Ok(()) => {
                match self.shared.upgrade() {
                    Some(shared) => shared.recycle(pinned).await,
                    None => pinned.close().await,
                }
                Ok(())
            }
            Err(e) => {
                pinned.kill().await;
                Err(e)
            }
        }
    }

    /// MySQL holds have no lease: they last as long as their connection. As on every
    /// backend without leases, `extend` checks on the server that the hold is still ours:
    /// `Ok(())`, or [`NotHeld`](distlock_core::ErrorKind::NotHeld) once it is gone.
    ///
    /// # Cancel safety
    /// Cancel safe: it only probes.
    async fn extend(&self, _ttl: Duration) -> Result<()> {
        self.check().await
    }
}

/// A release statement failed. If the session is gone, so is the lock: `NotHeld`.
/// Otherwise the outcome is unknown; the caller kills the session, which frees it.
fn unconfirmed(e: sqlx::Error) -> LockError {
    if error::is_session_gone(&e) {
        LockError::not_held(format!(
            "the connection holding the lock is gone (and the lock with it): {e}"
        ))
        .with_source(e)
    } else {
        error::map(
            "the release could not be confirmed; the connection was closed, which frees the lock",
            e,
        )
    }
}
