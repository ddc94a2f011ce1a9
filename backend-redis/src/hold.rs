//! The guard's handle on a Redis hold, and the clean-up of an acquire that was cancelled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::backend::{spawn_background, Backoff, BatchRenew, Hold, RenewalGroup, Undo};
use distlock_core::{ErrorKind, Result, RetryPolicy};

use crate::backend::Backend;
use crate::keys::LockKeys;

#[derive(Debug)]
pub(crate) struct RedisHold {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) keys: LockKeys,
    pub(crate) token: String,
    /// The client's renewal scheduler.
    pub(crate) renewals: RenewalGroup,
}

#[async_trait]
impl Hold for RedisHold {
    async fn release(&self) -> Result<()> {
        self.backend.unlock(&self.keys, &self.token).await
    }

    async fn extend(&self, ttl: Duration) -> Result<()> {
        self.backend.extend(&self.keys, &self.token, ttl).await
    }

    fn renewal_group(&self) -> Option<RenewalGroup> {
        Some(self.renewals.clone())
    }

    fn release_on_drop(self: Arc<Self>) {
        spawn_background(unlock_in_background(
            self.backend.clone(),
            self.keys.clone(),
            self.token.clone(),
        ));
    }
}

/// Renews a client's due holds with [`Backend::extend_many`]: one script call per server
/// for up to [`MAX_BATCH`](distlock_core::backend::MAX_BATCH) holds.
#[derive(Debug)]
pub(crate) struct Renewals {
    pub(crate) backend: Arc<dyn Backend>,
}

impl Renewals {
    pub(crate) fn group(backend: Arc<dyn Backend>) -> RenewalGroup {
        RenewalGroup::new(Renewals { backend })
    }
}

#[async_trait]
impl BatchRenew for Renewals {
    async fn extend_many(&self, holds: &[Arc<dyn Hold>], ttl: Duration) -> Vec<Result<()>> {
        let ours: Option<Vec<(&LockKeys, &str)>> = holds
            .iter()
            .map(|h| {
                let any: &dyn std::any::Any = &**h;
                any.downcast_ref::<RedisHold>()
                    .map(|h| (&h.keys, h.token.as_str()))
            })
            .collect();
        match ours {
            Some(ours) => self.backend.extend_many(&ours, ttl).await,
            // Never the case (the group is only handed to this client's holds), but cheap.
            None => futures::future::join_all(holds.iter().map(|h| h.extend(ttl))).await,
        }
    }
}

/// Frees whatever `token` may hold: a few tries over connection errors, then the TTL is the
/// backstop. Run with [`spawn_background`]: without a runtime only the TTL is left.
async fn unlock_in_background(backend: Arc<dyn Backend>, keys: LockKeys, token: String) {
    let mut backoff = Backoff::new(&RetryPolicy {
        first_pause: Duration::from_millis(100),
        ..RetryPolicy::default()
    });
    for attempt in 0..3u32 {
        match backend.unlock(&keys, &token).await {
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::NotHeld => return,
            Err(e) => {
                tracing::debug!(error = %e, attempt, "background release failed");
                tokio::time::sleep(backoff.next_pause()).await;
            }
        }
    }
}

/// What an acquire request may have taken without the caller knowing yet; kept in an
/// [`Armed`](distlock_core::backend::Armed) by the acquire loop, it releases by owner token.
#[derive(Debug)]
pub(crate) struct PendingAcquire {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) keys: LockKeys,
    pub(crate) token: String,
}

impl Undo for PendingAcquire {
    fn undo(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        unlock_in_background(
            self.backend.clone(),
            self.keys.clone(),
            std::mem::take(&mut self.token),
        )
    }
}

/// A waiting acquire's place in the lock's waiter queue, and any grant made to it; kept in
/// an [`Armed`](distlock_core::backend::Armed) from the first attempt that may enqueue it
/// until the lock is ours (taken or granted: the store dequeued the waiter) or the waiter
/// left.
#[derive(Debug)]
pub(crate) struct QueueEntry {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) keys: LockKeys,
    pub(crate) waiter: String,
    /// The owner token a grant to this wait sets; the leave frees a grant it finds.
    pub(crate) grant_token: String,
}

impl QueueEntry {
    /// Leaves the queue now (a wait that ran out), undoing a grant the waiter has not taken.
    /// One try: on failure the caller keeps the entry armed, so it is retried in the
    /// background ([`Self::leave_retrying`]); the entry's expiry and a grant's TTL are the
    /// backstop.
    pub(crate) async fn leave(&self) -> Result<()> {
        let left = self
            .backend
            .leave(&self.keys, &self.waiter, &self.grant_token)
            .await;
        if let Err(e) = &left {
            tracing::debug!(error = %e, "leaving the waiter queue failed");
        }
        left
    }

    /// [`Self::leave`] with a few tries over connection errors, for the background: a grant
    /// left behind would block the lock for a whole TTL.
    async fn leave_retrying(self) {
        let mut backoff = Backoff::new(&RetryPolicy {
            first_pause: Duration::from_millis(100),
            ..RetryPolicy::default()
        });
        for _ in 0..3u32 {
            match self.leave().await {
                Ok(()) => return,
                Err(e) if e.kind() != ErrorKind::Connection => return,
                Err(_) => tokio::time::sleep(backoff.next_pause()).await,
            }
        }
    }
}

impl Undo for QueueEntry {
    fn undo(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let entry = QueueEntry {
            backend: self.backend.clone(),
            keys: self.keys.clone(),
            waiter: std::mem::take(&mut self.waiter),
            grant_token: std::mem::take(&mut self.grant_token),
        };
        entry.leave_retrying()
    }
}
