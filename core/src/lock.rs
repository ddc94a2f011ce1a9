//! The trait backends implement, and the conveniences every user gets on top of it.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::capabilities::Capabilities;
use crate::error::{LockError, Result};
use crate::guard::LockGuard;
use crate::name::LockName;
use crate::options::{AcquireOptions, Wait};

/// A distributed lock client: one connection pool / session to one store.
///
/// Implementors write [`DistributedLock::acquire_with`] and [`DistributedLock::capabilities`];
/// users call the conveniences of [`LockExt`], implemented once for every backend.
/// Works as `Box<dyn DistributedLock>` and `Arc<dyn DistributedLock>`.
#[async_trait]
pub trait DistributedLock: Send + Sync + Debug {
    /// Takes `name` as `options.wait` says: `Ok(None)` when it stayed held elsewhere for the
    /// whole wait (contention is not an error). A wait limit must be honoured within a small
    /// slack.
    ///
    /// # Cancel safety
    /// Implementations must be cancel safe: dropping the future at any await point leaves
    /// no hold behind (whatever reached the store is cleaned up, or expires by the backstop).
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>>;

    /// What this backend promises beyond mutual exclusion.
    fn capabilities(&self) -> Capabilities;
}

/// Conveniences over [`DistributedLock`], for every backend and `dyn DistributedLock`.
#[async_trait]
pub trait LockExt: DistributedLock {
    /// One attempt: `Ok(None)` when the lock is held elsewhere.
    ///
    /// # Cancel safety
    /// Cancel safe (see [`DistributedLock::acquire_with`]).
    async fn try_acquire(&self, name: &str) -> Result<Option<LockGuard>> {
        let name = LockName::new(name)?;
        self.acquire_with(&name, &AcquireOptions::try_once()).await
    }

    /// Waits until the lock is taken.
    ///
    /// # Cancel safety
    /// Cancel safe (see [`DistributedLock::acquire_with`]).
    async fn acquire(&self, name: &str) -> Result<LockGuard> {
        let name = LockName::new(name)?;
        self.acquire_with(&name, &AcquireOptions::wait_forever())
            .await?
            .ok_or_else(|| LockError::backend("a wait-forever acquire returned without a hold"))
    }

    /// Waits up to `limit`; error kind [`Timeout`](crate::ErrorKind::Timeout) when it runs out.
    ///
    /// # Cancel safety
    /// Cancel safe (see [`DistributedLock::acquire_with`]).
    async fn acquire_timeout(&self, name: &str, limit: Duration) -> Result<LockGuard> {
        let name = LockName::new(name)?;
        self.acquire_with(&name, &AcquireOptions::wait_up_to(limit))
            .await?
            .ok_or_else(|| {
                LockError::timeout(format!(
                    "lock {name:?} still held elsewhere after {limit:?}"
                ))
            })
    }

    /// Acquires with explicit options; error kind [`Timeout`](crate::ErrorKind::Timeout)
    /// when a limited wait runs out, `Ok(None)` only for [`Wait::Try`].
    ///
    /// # Cancel safety
    /// Cancel safe (see [`DistributedLock::acquire_with`]).
    async fn acquire_opts(
        &self,
        name: &str,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        let name = LockName::new(name)?;
        let guard = self.acquire_with(&name, options).await?;
        match (guard, options.wait) {
            (Some(g), _) => Ok(Some(g)),
            (None, Wait::Try) => Ok(None),
            (None, Wait::Up(limit)) => Err(LockError::timeout(format!(
                "lock {name:?} still held elsewhere after {limit:?}"
            ))),
            (None, Wait::Forever) => Err(LockError::backend(
                "a wait-forever acquire returned without a hold",
            )),
        }
    }
}

impl<T: DistributedLock + ?Sized> LockExt for T {}

#[async_trait]
impl<T: DistributedLock + ?Sized> DistributedLock for Arc<T> {
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        (**self).acquire_with(name, options).await
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
}

#[async_trait]
impl<T: DistributedLock + ?Sized> DistributedLock for Box<T> {
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        (**self).acquire_with(name, options).await
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
}
