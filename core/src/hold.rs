//! The backend side of a guard: what a backend implements for each hold it hands out.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{LockError, Result};

/// One hold in a backend's store. The [`LockGuard`](crate::LockGuard) wraps it and owns
/// the lifecycle (renewal, lost signal, release on drop); the backend only talks to its store.
#[async_trait]
pub trait Hold: Send + Sync + Debug + 'static {
    /// Frees the lock if this hold still owns it (compare owner token, then delete).
    /// Returns [`ErrorKind::NotHeld`](crate::ErrorKind::NotHeld) when someone else owns it
    /// or nobody does, and changes nothing then.
    ///
    /// # Cancel safety
    /// Must be safe to drop midway: the guard then releases again in the background,
    /// so the operation has to be idempotent.
    async fn release(&self) -> Result<()>;

    /// Extends the lease to `ttl` from now if this hold still owns the lock;
    /// [`ErrorKind::NotHeld`](crate::ErrorKind::NotHeld) otherwise. Backends without leases
    /// keep the default, which reports [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    ///
    /// # Cancel safety
    /// Must be safe to drop midway: an extend is idempotent.
    async fn extend(&self, ttl: Duration) -> Result<()> {
        let _ = ttl;
        Err(LockError::unsupported(
            "this backend's holds have no lease to extend",
        ))
    }

    /// Called once when a guard is dropped without `release`. Must not block or panic.
    /// The default spawns [`Hold::release`] on the current Tokio runtime and, without a
    /// runtime, does nothing: the store's backstop (TTL, session, connection) frees the lock.
    fn release_on_drop(self: Arc<Self>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = self.release().await {
                    tracing::debug!(error = %e, "background release of a dropped guard failed");
                }
            });
        }
    }
}
