//! What a case measures: distlock, the raw store primitive, or a peer library, all behind
//! one small interface so that every case runs each of them the same way.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use distlock::{AcquireOptions, DistributedLock, LockError, LockExt, LockGuard, Result};

/// One client (its own connections) contending for one lock name.
#[async_trait]
pub(crate) trait Contender: Send {
    /// Takes the lock, waiting up to `limit` (error kind `Timeout` past it).
    ///
    /// # Cancel safety
    /// Not needed by the bench: every call is awaited to the end.
    async fn acquire(&mut self, limit: Duration) -> Result<()>;
    /// One attempt: `false` when the lock is held elsewhere.
    ///
    /// # Cancel safety
    /// Not needed by the bench: every call is awaited to the end.
    async fn try_acquire(&mut self) -> Result<bool>;
    /// Frees the lock this contender holds.
    ///
    /// # Cancel safety
    /// Not needed by the bench: every call is awaited to the end.
    async fn release(&mut self) -> Result<()>;
}

/// Something the bench measures: makes contenders.
#[async_trait]
pub(crate) trait Subject: Send + Sync {
    /// `distlock`, `raw` or the peer library's name.
    fn label(&self) -> &'static str;
    /// What exactly runs, for the report.
    fn describe(&self) -> String;
    /// A new client with its own connections, for lock `name`.
    ///
    /// # Cancel safety
    /// Not needed by the bench: every call is awaited to the end.
    async fn contender(&self, name: &str) -> Result<Box<dyn Contender>>;
}

/// distlock itself, through `distlock::connect` as users call it.
pub(crate) struct Distlock {
    pub(crate) url: String,
}

#[async_trait]
impl Subject for Distlock {
    fn label(&self) -> &'static str {
        "distlock"
    }

    fn describe(&self) -> String {
        "distlock acquire + release (one client per contender)".into()
    }

    async fn contender(&self, name: &str) -> Result<Box<dyn Contender>> {
        let locks: Arc<dyn DistributedLock> = distlock::connect(&self.url).await?.into();
        Ok(Box::new(DistlockContender {
            locks,
            name: name.to_string(),
            guard: None,
        }))
    }
}

struct DistlockContender {
    locks: Arc<dyn DistributedLock>,
    name: String,
    guard: Option<LockGuard>,
}

#[async_trait]
impl Contender for DistlockContender {
    async fn acquire(&mut self, limit: Duration) -> Result<()> {
        let guard = self
            .locks
            .acquire_opts(&self.name, &AcquireOptions::wait_up_to(limit))
            .await?
            .ok_or_else(|| LockError::timeout("the bench lock stayed held"))?;
        self.guard = Some(guard);
        Ok(())
    }

    async fn try_acquire(&mut self) -> Result<bool> {
        self.guard = self.locks.try_acquire(&self.name).await?;
        Ok(self.guard.is_some())
    }

    async fn release(&mut self) -> Result<()> {
        match self.guard.take() {
            Some(guard) => guard.release().await,
            None => Err(LockError::backend(
                "the bench released a lock it did not hold",
            )),
        }
    }
}
