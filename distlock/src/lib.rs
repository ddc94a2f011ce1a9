//! distlock: one named, mutually exclusive lock across the instances of a service, whatever
//! the store: Redis, ZooKeeper, MySQL/MariaDB, or lock files on one host.
//!
//! Pick backends with cargo features (`redis`, `zookeeper`, `mysql`; lock files and the
//! in-memory backend are always there) and one of them at run time with a URL. To
//! configure a backend in code instead, use its crate through this one:
//! `distlock::redis`, `distlock::zookeeper`,
//! `distlock::mysql`, [`distlock::file`](mod@file) (each behind its feature).
//!
//! ```
//! use distlock::LockExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("distlock-doc-{}", std::process::id()));
//! # let url = format!("file://{}", dir.display());
//! // "redis://…", "zk://…", "mysql://…" with the matching feature.
//! let locks = distlock::connect(&url).await?;
//! let guard = locks.acquire("nightly-report").await?;
//! // … the critical section; pass guard.fencing_token() to the resource you protect …
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! # Scoped locking
//!
//! [`LockExt::with_lock`] runs a body while the lock is held and releases it on every exit
//! path: the body's return, an error through `?`, a panic (released, then the panic
//! resumes), and the call's future being dropped. If the hold is lost meanwhile (lease not
//! renewed, session expired, connection died), the body is dropped and the call returns
//! error kind [`Lost`](ErrorKind::Lost). A lock still held elsewhere after the wait — or
//! at the single attempt of [`Wait::Try`] — is error kind [`Timeout`](ErrorKind::Timeout).
//! The body gets a [`ScopedLock`] (fencing token, loss signal) and returns
//! `Result<T, E>` with `E: From<LockError>`, so `?` works for your errors and distlock's:
//!
//! ```
//! use std::time::Duration;
//! use distlock::{AcquireOptions, LockError, LockExt};
//!
//! #[derive(Debug)]
//! enum ShopError { Lock(LockError), SoldOut }
//! impl From<LockError> for ShopError {
//!     fn from(e: LockError) -> Self { ShopError::Lock(e) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ShopError> {
//! let locks = distlock::connect("memory://shop").await?;
//! let opts = AcquireOptions::wait_up_to(Duration::from_secs(5)).with_ttl(Duration::from_secs(30));
//! let left = locks
//!     .with_lock("stock:sku-7", &opts, |guard| async move {
//!         let stock: u32 = 1; // read it, passing guard.fencing_token() to the store
//!         if stock == 0 {
//!             return Err(ShopError::SoldOut);
//!         }
//!         Ok(stock - 1) // write it, fenced
//!     })
//!     .await?;
//! assert_eq!(left, 0);
//! # Ok(()) }
//! ```
//!
//! [`macro@locked`] does the same for a whole `async fn`, naming the lock after its
//! arguments:
//!
//! ```
//! use distlock::{DistributedLock, LockError};
//!
//! #[distlock::locked(name = "order:{order_id}", wait = "5s", locks = locks)]
//! async fn charge(locks: &dyn DistributedLock, order_id: u64) -> Result<u64, LockError> {
//!     // Only one instance charges order 42 at a time; the lock is
//!     // "<this module's path>::order:42".
//!     Ok(order_id)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock::Result<()> {
//! let locks = distlock::connect("memory://").await?;
//! assert_eq!(charge(&*locks, 42).await?, 42);
//! # Ok(()) }
//! ```
//!
//! **Task-scoped reentrancy.** Inside a scope, a nested `with_lock` / `#[locked]` call on the
//! same name and the same client, polled by the same task, reuses the outer hold instead of
//! waiting for itself; the lock is released when the outermost scope ends, and a loss
//! cancels every level. Tasks spawned inside the scope do not share it (they contend like
//! any other holder), and plain [`LockExt::acquire`] / [`LockExt::try_acquire`] are never
//! reentrant. "The same client" is [`DistributedLock::client_id`]: `Arc` clones and
//! references of one client object are the same client; two connections to one store never
//! are. See [`scope`] for the details.
//!
//! # Fenced writes
//!
//! A lock cannot stop a holder that was paused past its lease from writing when it wakes
//! up; the resource can. [`fence`] checks a guard's fencing token at the resource in one
//! call and rejects a write older than the newest one seen, with
//! [`ErrorKind::Fenced`]: [`fence::file::write`], `fence::redis::set` (feature `redis`),
//! `fence::sql::check_and_bump` in your transaction (feature `mysql`), and
//! [`fence::admit`] for a resource kind of your own.
#![warn(missing_docs)]

mod connect;
mod default_client;
pub mod fence;
mod locked;

#[doc(hidden)]
pub mod __private {
    //! What `#[distlock::locked]` expands to; not a public API.
    pub use crate::locked::{locked, locked_default, LockedReturn};
}
pub mod env;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use connect::{connect, schemes};
pub use default_client::{default_client, set_default};
pub use distlock_core::*;
pub use distlock_file::FileLock;

/// Runs an `async fn` while holding a lock named after its arguments (feature `macros`, on
/// by default). Each call acquires, runs the body, and releases on every exit path, exactly
/// like [`LockExt::with_lock`] (see the crate docs, "Scoped locking").
///
/// ```
/// use distlock::{DistributedLock, LockError};
///
/// #[derive(Debug)]
/// enum PaymentError { Lock(LockError), Declined }
/// impl From<LockError> for PaymentError {
///     fn from(e: LockError) -> Self { PaymentError::Lock(e) }
/// }
///
/// struct Payments { locks: Box<dyn DistributedLock> }
///
/// impl Payments {
///     #[distlock::locked(name = "order:{order_id}", wait = "5s", ttl = "30s", locks = self.locks)]
///     async fn charge(&self, order_id: u64, cents: u64) -> Result<u64, PaymentError> {
///         if cents == 0 {
///             return Err(PaymentError::Declined);
///         }
///         Ok(cents) // charged once, whatever the number of instances
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), PaymentError> {
/// let payments = Payments { locks: distlock::connect("memory://").await? };
/// assert_eq!(payments.charge(42, 1999).await?, 1999);
/// # Ok(()) }
/// ```
///
/// Arguments, all optional, all checked at compile time:
///
/// - `name = "…"`: a format string over the function's arguments (`{order_id}`,
///   `{order_id:>08}`; any argument that implements the format trait). The lock's name is
///   the function's `module_path!()`, `::`, then the formatted string
///   (`shop::payments::order:42`), so two crates using `"order:{id}"` do not collide.
///   A name that starts with `/` is **absolute**: the `/` is dropped and nothing is
///   prefixed, so `name = "/order:{order_id}"` is the very lock `locks.acquire("order:42")`
///   takes. Without `name`, one lock per function: `module_path::fn_name`. A placeholder
///   that is not an argument (or is positional, `{}`) is a compile error.
/// - `wait = "5s"`: how long to wait for a lock held elsewhere (`humantime` syntax:
///   `"500ms"`, `"2m"`); `"0s"` or `"try"` makes one attempt; `"forever"` is the default.
/// - `ttl = "30s"`: the lease, for backends whose holds expire; `renew = false` turns off
///   its background renewal (see [`AcquireOptions`]).
/// - `locks = EXPR`: the client, evaluated at each call and borrowed for the call: a client,
///   `Box<dyn DistributedLock>`, `Arc<…>` or `&dyn DistributedLock`. Without it, the
///   process-wide default of [`set_default`] ([`default_client`]), or, when none was set,
///   one connected once from `DISTLOCK_URL` ([`connect_from_env`]); with neither, each
///   call fails with error kind [`Config`](ErrorKind::Config).
/// - `guard = lock`: binds the scope's [`ScopedLock`] to `lock` in the body, for its fencing
///   token ([`ScopedLock::fencing_token`]) or loss signal. The body is then built once the
///   lock is held and owns the arguments it uses, as an `async fn` body does.
///
/// Signature rules: the function must be an `async fn` returning `Result<T, E>` where
/// `E: From<distlock::LockError>` (`distlock::Result<T>`, or your own error type with that
/// `From` impl); anything else is a compile error. The function's own errors come back
/// unchanged; distlock's arrive as `E::from(LockError)`: kind `Timeout` when the lock stayed
/// held elsewhere for the whole wait (or at the one try), `Lost` when the hold was lost
/// while the body ran (the body is dropped at its next await point), `Config` without a
/// client, `InvalidName` for a name that formats to an empty string, `Connection` and so
/// on from the store. The body runs as an `async` block: `return` and `?` work as usual and
/// arguments are borrowed, not moved, unless the body consumes them. Nested `#[locked]`
/// and `with_lock` calls on the same name and client in the same task reuse the hold.
#[cfg(feature = "macros")]
#[doc(inline)]
pub use distlock_macros::locked;
pub use env::{connect_from_env, url_with_password, url_with_password_from_env};

/// The lock-file backend (always built): [`file::FileLock`], configured in code.
pub use distlock_file as file;
/// The MySQL/MariaDB backend (feature `mysql`): [`mysql::MySqlConfig`], [`mysql::MySqlLock`].
#[cfg(feature = "mysql")]
pub use distlock_mysql as mysql;
/// The Redis backend (feature `redis`): [`redis::RedisConfig`], [`redis::RedisLock`],
/// [`redis::Redlock`].
#[cfg(feature = "redis")]
pub use distlock_redis as redis;
/// The ZooKeeper backend (feature `zookeeper`): [`zookeeper::ZkConfig`],
/// [`zookeeper::ZkLock`].
#[cfg(feature = "zookeeper")]
pub use distlock_zookeeper as zookeeper;
