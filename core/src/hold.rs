//! The backend side of a guard: what a backend implements for each hold it hands out.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::background::spawn_background;
use crate::error::Result;
use crate::renewal::RenewalGroup;

/// One hold in a backend's store. The [`LockGuard`](crate::LockGuard) wraps it and owns
/// the lifecycle (renewal, lost signal, release on drop); the backend only talks to its store.
///
/// `Any` lets a backend's [`BatchRenew`](crate::backend::BatchRenew) downcast the holds it
/// is handed back to its own type; every `'static` type has it.
#[async_trait]
pub trait Hold: Any + Send + Sync + Debug + 'static {
    /// Frees the lock if this hold still owns it (compare owner token, then delete).
    /// Returns [`ErrorKind::NotHeld`](crate::ErrorKind::NotHeld) when someone else owns it
    /// or nobody does, and changes nothing then.
    ///
    /// # Cancel safety
    /// Must be safe to drop midway: the guard then releases again in the background,
    /// so the operation has to be idempotent.
    async fn release(&self) -> Result<()>;

    /// Extends the lease to `ttl` from now if this hold still owns the lock;
    /// [`ErrorKind::NotHeld`](crate::ErrorKind::NotHeld) otherwise.
    ///
    /// One contract on every backend: a hold without a lease has nothing to extend, so
    /// `extend` is a check that it is still ours: `Ok(())` while it is,
    /// [`ErrorKind::NotHeld`](crate::ErrorKind::NotHeld) once it is stale or lost (and `ttl`
    /// is ignored). The guard already answers `NotHeld` for a hold it knows to be released
    /// or lost; the default returns `Ok(())` for the rest, which suits a hold that cannot go
    /// stale unnoticed (a `flock` on an open file). Backends whose holds can (a session, a
    /// connection) override it to ask the store.
    ///
    /// # Cancel safety
    /// Must be safe to drop midway: an extend is idempotent.
    async fn extend(&self, ttl: Duration) -> Result<()> {
        let _ = ttl;
        Ok(())
    }

    /// The client's renewal scheduler, when the backend has one: the guard then renews this
    /// hold's lease from that group (one task and timer per client, holds due together
    /// renewed in one [`BatchRenew::extend_many`](crate::backend::BatchRenew::extend_many)
    /// call) instead of from a watchdog task of its own. The default, `None`, keeps the
    /// watchdog. Return clones of one group per client.
    fn renewal_group(&self) -> Option<RenewalGroup> {
        None
    }

    /// Called once when a guard is dropped without `release`. Must not block or panic.
    /// The default runs [`Hold::release`] with [`spawn_background`]: without a runtime the
    /// store's backstop (TTL, session, connection) frees the lock.
    fn release_on_drop(self: Arc<Self>) {
        spawn_background(async move {
            if let Err(e) = self.release().await {
                tracing::debug!(error = %e, "background release of a dropped guard failed");
            }
        });
    }
}
