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

/// The process-wide default client: the one given to [`set_default`]; when none was set
/// and `DISTLOCK_URL` is, the client [`connect_from_env`](crate::connect_from_env) makes
/// (connected once, on first use, then kept; a failed connect is retried on the next call).
/// With neither, an error of kind [`Config`](distlock_core::ErrorKind::Config) that says
/// how to set one.
///
/// # Cancel safety
/// Cancel safe: it holds no lock; a dropped first connect is made again on the next call.
pub async fn default_client() -> Result<Arc<dyn DistributedLock>> {
    DEFAULT.get_or_try_init(from_environment).await.cloned()
}

/// The default taken from the environment when none was set, as `connect_from_env` reads it.
async fn from_environment() -> Result<Arc<dyn DistributedLock>> {
    let url_set = std::env::var_os(crate::env::URL_VAR).is_some_and(|v| !v.is_empty());
    if !url_set {
        return Err(LockError::config(
            "no default lock client: call distlock::set_default(client) once at start-up, \
             set DISTLOCK_URL, or name the client with #[distlock::locked(locks = …)]",
        ));
    }
    Ok(Arc::from(crate::connect_from_env().await?))
}
