//! What a backend author supplies to run the suite.

use std::time::Duration;

use async_trait::async_trait;
use distlock_core::{DistributedLock, LockError, LockGuard, Result};

/// Makes fresh clients of the backend under test, and describes its backstop.
///
/// The suite builds the harness once per case (in every process it starts), so keep
/// expensive shared state (a throwaway server) in a `static` and reuse it. Each case runs
/// on its own Tokio runtime: do one-time async setup (a schema) lazily in
/// [`Harness::client`] behind a `static` `tokio::sync::OnceCell`, and keep only its effect
/// there, never a pool or connection (see the crate docs). For the
/// cross-process cases the suite re-runs the current test binary; [`Harness::child_env`]
/// tells it which environment variables make a harness built in that child talk to the
/// same store.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// A new client with its own connections (a new pool, session or connection).
    /// Called on the case's runtime, or for the cancellation cuts on a one-thread runtime
    /// of their own (so no `block_in_place`); the client is used on the runtime it was
    /// made on only.
    async fn client(&self) -> Result<Box<dyn DistributedLock>>;

    /// The fault injector, if the backend has one.
    fn faults(&self) -> Option<&dyn Faults> {
        None
    }

    /// Environment variables for child processes of the cross-process cases.
    fn child_env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The lease TTL the suite asks for when it wants holds to expire quickly.
    /// Backends without leases ignore it.
    fn short_ttl(&self) -> Duration {
        Duration::from_millis(1500)
    }

    /// How long the backstop takes at most to free the lock of a holder that died without
    /// releasing (a killed process), when the hold was taken with [`Harness::short_ttl`]:
    /// the TTL, the session timeout, or the connection's close.
    fn backstop(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// The cancel-safety bound: how long whatever a cancelled acquire (or a dropped guard)
    /// left in the store may outlive it. The backend's background clean-up must finish
    /// within it; a backend that relies on its backstop instead may return the backstop
    /// here only if it is that short for holds taken with default options (a default
    /// 30 s lease is not). See the crate docs, "Cancel safety".
    fn cleanup(&self) -> Duration {
        Duration::from_secs(3)
    }
}

/// Faults the suite can inject. Cases that disturb the whole store (restart, pause) run
/// alone: the suite keeps every other case of the same test binary out meanwhile, so a
/// harness may share one throwaway server between all cases. Every method defaults to
/// [`ErrorKind::Unsupported`](distlock_core::ErrorKind::Unsupported), which makes the
/// cases that need it report themselves skipped.
#[async_trait]
pub trait Faults: Send + Sync {
    /// Makes `guard`'s hold be lost the way this backend realistically loses holds: kill its
    /// connection, expire its session, let its lease lapse, delete its key. After this, the
    /// guard's lost signal must fire (within [`Harness::backstop`]) when the backend claims
    /// lost detection, the guard's `release` and `extend` must report the loss, and another
    /// client must be able to take the lock.
    ///
    /// Find the hold in the store from what the guard carries: [`LockGuard::name`] (mapped
    /// to the store's key as the backend maps it), [`LockGuard::owner_token`] (the token the
    /// backend stored with the hold) and [`LockGuard::fencing_token`]. Check the owner token
    /// before touching the record, so the fault hits this hold and no other. To cut one
    /// client's connections, route each client through its own
    /// [`TcpProxy`](crate::proxy::TcpProxy).
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        let _ = guard;
        Err(LockError::unsupported("lose_hold"))
    }

    /// Restarts the store (same address; state may be lost). Clients must reconnect.
    async fn restart_server(&self) -> Result<()> {
        Err(LockError::unsupported("restart_server"))
    }

    /// Freezes the store (e.g. SIGSTOP): it keeps its sockets but answers nothing.
    async fn pause_server(&self) -> Result<()> {
        Err(LockError::unsupported("pause_server"))
    }

    /// Thaws a store frozen by [`Faults::pause_server`].
    async fn resume_server(&self) -> Result<()> {
        Err(LockError::unsupported("resume_server"))
    }
}
