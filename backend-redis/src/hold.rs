//! The guard's handle on a Redis hold, and the clean-up of an acquire that was cancelled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::{ErrorKind, Hold, Result};

use crate::backend::Backend;
use crate::keys::LockKeys;

#[derive(Debug)]
pub(crate) struct RedisHold {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) keys: LockKeys,
    pub(crate) token: String,
}

#[async_trait]
impl Hold for RedisHold {
    async fn release(&self) -> Result<()> {
        self.backend.unlock(&self.keys, &self.token).await
    }

    async fn extend(&self, ttl: Duration) -> Result<()> {
        self.backend.extend(&self.keys, &self.token, ttl).await
    }

    fn release_on_drop(self: Arc<Self>) {
        spawn_cleanup(self.backend.clone(), self.keys.clone(), self.token.clone());
    }
}

/// Frees whatever `token` may hold, in the background: a few tries over connection errors,
/// then the TTL is the backstop. Without a runtime only the TTL is left.
pub(crate) fn spawn_cleanup(backend: Arc<dyn Backend>, keys: LockKeys, token: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        for attempt in 0..3u32 {
            match backend.unlock(&keys, &token).await {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::NotHeld => return,
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "background release failed");
                    tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(attempt)).await;
                }
            }
        }
    });
}

/// Armed while an acquire request may have taken the lock without the caller knowing yet.
/// Dropped armed (the acquire was cancelled or failed), it releases by owner token.
pub(crate) struct PendingAcquire {
    backend: Arc<dyn Backend>,
    keys: LockKeys,
    token: String,
    armed: bool,
}

impl PendingAcquire {
    pub(crate) fn new(backend: Arc<dyn Backend>, keys: LockKeys, token: String) -> Self {
        PendingAcquire {
            backend,
            keys,
            token,
            armed: false,
        }
    }

    pub(crate) fn arm(&mut self) {
        self.armed = true;
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for PendingAcquire {
    fn drop(&mut self) {
        if self.armed {
            spawn_cleanup(self.backend.clone(), self.keys.clone(), self.token.clone());
        }
    }
}
