//! The trait backends implement, and the conveniences every user gets on top of it.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::capabilities::Capabilities;
use crate::client_id::ClientId;
use crate::error::{LockError, Result};
use crate::guard::LockGuard;
use crate::inspect::Inspect;
use crate::name::LockName;
use crate::options::{AcquireOptions, Wait};
use crate::scope::ScopedLock;

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

    /// Which client this is, for task-scoped reentrancy: a nested
    /// [`with_lock`](LockExt::with_lock) reuses the hold of an enclosing scope only when
    /// both scopes use the same name and the same `client_id`. The default is the address of
    /// `self` ([`ClientId::of`]); backends whose clones share one connection may return a
    /// [`ClientId::unique`] made at construction and shared by the clones. Two clients
    /// that could hold the same name at the same time must never return the same id.
    fn client_id(&self) -> ClientId {
        ClientId::of(self)
    }

    /// A short, fixed name of the backend (`"redis"`, `"file"`, …): the `backend` label of
    /// spans and metrics (see [`crate::observe`]). The default is `"custom"`.
    fn backend_name(&self) -> &'static str {
        "custom"
    }

    /// The operator's view of this client's store ([`Inspect`]: holders, breaking a hold,
    /// checking settings), where the backend offers it. The default is `None`.
    fn inspect(&self) -> Option<&dyn Inspect> {
        None
    }
}

/// Conveniences over [`DistributedLock`], for every backend and `dyn DistributedLock`.
///
/// The methods are `async` (written with `async_trait`, so rustdoc shows them returning a
/// boxed future); as you call them:
///
/// ```text
/// async fn try_acquire(&self, name: &str) -> Result<Option<LockGuard>>
/// async fn acquire(&self, name: &str) -> Result<LockGuard>
/// async fn acquire_timeout(&self, name: &str, limit: Duration) -> Result<LockGuard>
/// async fn acquire_opts(&self, name: &str, options: &AcquireOptions) -> Result<Option<LockGuard>>
/// async fn with_lock<T, E>(&self, name: &str, options: &AcquireOptions,
///                          body: impl FnOnce(ScopedLock) -> impl Future<Output = Result<T, E>>)
///     -> Result<T, E>                     // E: From<LockError>
/// ```
///
/// Every acquire through these methods is traced and measured once for all backends (see
/// [`crate::observe`]).
#[async_trait]
pub trait LockExt: DistributedLock {
    /// One attempt: `Ok(None)` when the lock is held elsewhere.
    ///
    /// # Cancel safety
    /// Cancel safe (see [`DistributedLock::acquire_with`]).
    async fn try_acquire(&self, name: &str) -> Result<Option<LockGuard>> {
        let name = LockName::new(name)?;
        crate::observe::acquire(self, &name, &AcquireOptions::try_once()).await
    }

    /// Waits until the lock is taken.
    ///
    /// # Cancel safety
    /// Cancel safe (see [`DistributedLock::acquire_with`]).
    async fn acquire(&self, name: &str) -> Result<LockGuard> {
        let name = LockName::new(name)?;
        crate::observe::acquire(self, &name, &AcquireOptions::wait_forever())
            .await?
            .ok_or_else(|| LockError::backend("a wait-forever acquire returned without a hold"))
    }

    /// Waits up to `limit`; error kind [`Timeout`](crate::ErrorKind::Timeout) when it runs out.
    ///
    /// # Cancel safety
    /// Cancel safe (see [`DistributedLock::acquire_with`]).
    async fn acquire_timeout(&self, name: &str, limit: Duration) -> Result<LockGuard> {
        let name = LockName::new(name)?;
        crate::observe::acquire(self, &name, &AcquireOptions::wait_up_to(limit))
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
        let guard = crate::observe::acquire(self, &name, options).await?;
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

    /// Runs `body` while holding `name`: acquires as `options` say, releases on every exit
    /// path (return, `?`, panic, the returned future dropped), drops the body and returns
    /// error kind [`Lost`](crate::ErrorKind::Lost) if the hold is lost meanwhile. A lock
    /// still held elsewhere after the wait (or at the one attempt of
    /// [`Wait::Try`]) is error kind [`Timeout`](crate::ErrorKind::Timeout). Inside a scope of
    /// the same client and name in the same task, it reuses that hold (task-scoped
    /// reentrancy). The body gets a [`ScopedLock`] (fencing token, loss) and returns
    /// `Result<T, E>` with `E: From<LockError>`, so `?` works on both its own errors and
    /// distlock's. See [`crate::scope`] for the whole contract;
    /// [`scope::with_lock`](crate::scope::with_lock) is the same call without the `Send`
    /// bounds this method needs to return a `Send` future.
    ///
    /// ```
    /// use distlock_core::{memory::MemoryLock, AcquireOptions, LockExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock_core::Result<()> {
    /// let locks = MemoryLock::new();
    /// let opts = AcquireOptions::wait_up_to(std::time::Duration::from_secs(5));
    /// let token = locks
    ///     .with_lock("order:42", &opts, |guard| async move {
    ///         // … the critical section: hand the fencing token to the resource …
    ///         Ok::<_, distlock_core::LockError>(guard.fencing_token())
    ///     })
    ///     .await?;
    /// assert!(token.is_some());
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// Cancel safe: dropped while waiting, no hold is left behind; dropped while the body
    /// runs, the body is dropped and the lock released in the background.
    fn with_lock<'a, F, Fut, T, E>(
        &'a self,
        name: &'a str,
        options: &'a AcquireOptions,
        body: F,
    ) -> impl Future<Output = Result<T, E>> + Send + 'a
    where
        F: FnOnce(ScopedLock) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: From<LockError> + Send + 'a,
    {
        crate::scope::with_lock(self, name, options, body)
    }
}

impl<T: DistributedLock + ?Sized> LockExt for T {}

/// A shared, boxed or borrowed client is the same client: every method is forwarded (a
/// method left out would silently fall back to its default, e.g. a new `client_id`).
macro_rules! forward_distributed_lock {
    ($($wrapper:ty),* $(,)?) => {$(
        #[async_trait]
        impl<T: DistributedLock + ?Sized> DistributedLock for $wrapper {
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

            fn client_id(&self) -> ClientId {
                (**self).client_id()
            }

            fn backend_name(&self) -> &'static str {
                (**self).backend_name()
            }

            fn inspect(&self) -> Option<&dyn Inspect> {
                (**self).inspect()
            }
        }
    )*};
}

forward_distributed_lock!(Arc<T>, Box<T>, &T);
