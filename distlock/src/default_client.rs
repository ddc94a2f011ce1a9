//! The process-wide default client that `#[distlock::locked]` uses when no `locks = …` is
//! named.

use std::sync::Arc;

use distlock_core::{DistributedLock, LockError, Result};
use tokio::sync::OnceCell;

static DEFAULT: OnceCell<Arc<dyn DistributedLock>> = OnceCell::const_new();

/// Sets the process-wide default client, once, typically at start-up:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock::Result<()> {
/// distlock::set_default(distlock::connect("memory://").await?)?;
/// # Ok(()) }
/// ```
///
/// `#[distlock::locked]` functions without `locks = …` use it, and so can any code through
/// [`default_client`]. A second call fails with error kind
/// [`Config`](distlock_core::ErrorKind::Config) and keeps the first client: locks taken
/// through the default must not change store while the process runs.
pub fn set_default(client: impl DistributedLock + 'static) -> Result<()> {
    DEFAULT.set(Arc::new(client)).map_err(|_| {
        LockError::config("distlock::set_default was called twice; the first client stays")
    })
}

/// The process-wide default client: the one given to [`set_default`]. Without one, an
/// error of kind [`Config`](distlock_core::ErrorKind::Config) that says how to set it.
///
/// # Cancel safety
/// Cancel safe: it holds no lock.
pub async fn default_client() -> Result<Arc<dyn DistributedLock>> {
    DEFAULT.get_or_try_init(from_environment).await.cloned()
}

/// The hook for a default taken from the environment when none was set: the place where a
/// `DISTLOCK_URL` connection (`connect_from_env`) plugs in, made once and then kept.
async fn from_environment() -> Result<Arc<dyn DistributedLock>> {
    Err(LockError::config(
        "no default lock client: call distlock::set_default(client) once at start-up, or \
         name the client with #[distlock::locked(locks = …)]",
    ))
}
