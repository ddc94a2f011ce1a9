//! distlock: one named, mutually exclusive lock across the instances of a service, whatever
//! the store: Redis, ZooKeeper, MySQL/MariaDB, or lock files on one host.
//!
//! A tour, in the order you will need it: [choose a backend](#choose-a-backend),
//! [acquire and release](#acquire-and-release), [react to a loss](#react-to-a-loss),
//! [fence your writes](#fence-your-writes), [lock a function](#lock-a-function),
//! [test with `memory://`](#test-with-memory), [operate it](#operate-it), and
//! [write a backend](#write-a-backend). Runnable programs, one per backend, are in the
//! crate's `examples/` folder.
//!
//! # Choose a backend
//!
//! Pick backends with cargo features and one of them at run time with a URL
//! ([`connect`]); the code does not change. What each one promises
//! ([`DistributedLock::capabilities`]):
//!
//! | URL | feature | backstop of a crashed holder | fencing tokens | FIFO waiters | lost signal | [`Inspect`] |
//! |---|---|---|---|---|---|---|
//! | `file:///var/lock/app` | always | the process's exit (kernel) | counter in the file | yes | – (a `flock` is not lost while its process lives) | holders; no break |
//! | `memory://name` | always | – (one process; tests) | yes | yes | yes | yes |
//! | `redis://host:6379/0` | `redis` | lease TTL (renewed every TTL/3) | `INCR` + server clock | yes (single server and Cluster) | renewal failed | yes (holders: one server) |
//! | `redis+redlock://h1,h2,h3/` | `redis` | lease TTL on a quorum | – | – | renewal failed | – |
//! | `zk://host:2181/app` | `zookeeper` | session timeout | node `czxid` | yes | session expired, node deleted | yes |
//! | `mysql://user@host/db?mode=get_lock` | `mysql` | the connection | counter row | – | connection died | yes |
//!
//! Lock files need no server but serve one host. Redis is the fastest over the network but
//! a failover can lose a lock (fence your writes); ZooKeeper is the most rigorous (FIFO,
//! sessions); MySQL is there when it is the store you already run. To configure a backend
//! in code instead of a URL, use its crate through this one: `distlock::redis`,
//! `distlock::zookeeper`, `distlock::mysql`, [`distlock::file`](mod@file) (each behind its
//! feature).
//!
//! # Acquire and release
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
//! [`LockExt`] has the forms: `try_acquire` (one attempt, `Ok(None)` when held
//! elsewhere), `acquire_timeout` (error kind [`Timeout`](ErrorKind::Timeout)), `acquire`
//! (waits forever) and `acquire_opts` (TTL, renewal, wait). Release with
//! [`LockGuard::release`], which reports errors; a dropped guard is released in the
//! background.
//!
//! # React to a loss
//!
//! A hold can end without you: a lease not renewed in time, a ZooKeeper session expired, a
//! MySQL connection killed, an operator's `distlock break`. The guard says so:
//! [`LockGuard::is_held`] for a check, and [`LockGuard::lost`] to race the work against it:
//!
//! ```
//! use std::time::Duration;
//! use distlock::LockExt;
//!
//! # async fn work() {}
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock::Result<()> {
//! let locks = distlock::connect("memory://").await?;
//! let guard = locks.acquire_timeout("invoices", Duration::from_secs(5)).await?;
//! tokio::select! {
//!     _ = work() => guard.release().await?,
//!     lost = guard.lost() => {
//!         // Stop touching the resource: someone else may hold the lock now.
//!         return Err(lost);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! A loss never fires on a normal release, and a lost hold is never re-acquired behind
//! your back. [`LockExt::with_lock`] (below) does this race for you.
//!
//! # Fence your writes
//!
//! A lock cannot stop a holder that was paused past its lease from writing when it wakes
//! up; the resource can. [`fence`] checks a guard's fencing token at the resource in one
//! call and rejects a write older than the newest one seen, with
//! [`ErrorKind::Fenced`]: [`fence::file::write`], `fence::redis::set` (feature `redis`),
//! `fence::sql::check_and_bump` in your transaction (feature `mysql`), and
//! [`fence::admit`] for a resource kind of your own.
//!
//! ```
//! use distlock::LockExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("distlock-doc-fence-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let locks = distlock::connect("memory://fence-doc").await?;
//! let guard = locks.acquire("report").await?;
//! distlock::fence::file::write(dir.join("report.txt"), "v1", guard.fencing_token()).await?;
//! guard.release().await?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
//!
//! # Lock a function
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
//! # Test with `memory://`
//!
//! `memory://name` is an in-process store: every `connect` of the same URL in the process
//! contends with the others, like connections to one server, with leases, fencing tokens,
//! FIFO waiting and loss. Point your code at it in unit tests, and force a loss with
//! [`Inspect::break_lock`] to test your loss handling:
//!
//! ```
//! use distlock::{ErrorKind, LockExt, LockName};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock::Result<()> {
//! let app = distlock::connect("memory://unit-test").await?;
//! let operator = distlock::connect("memory://unit-test").await?;
//! let guard = app.acquire("job").await?;
//! assert!(operator.try_acquire("job").await?.is_none());
//!
//! let ops = operator.inspect().expect("memory:// offers Inspect");
//! ops.break_lock(&LockName::new("job")?).await?;
//! assert_eq!(guard.lost().await.kind(), ErrorKind::Lost);
//! assert_eq!(guard.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
//! # Ok(()) }
//! ```
//!
//! # Operate it
//!
//! * **Who holds what, and breaking a stuck lock**: [`DistributedLock::inspect`] gives the
//!   backend's [`Inspect`]: [`Inspect::holders`] (name, owner and fencing token, age, time
//!   left, holder host, pid and label — set the label with [`set_holder_label`]) and
//!   [`Inspect::break_lock`] (the broken holder's lost signal fires and the next holder gets
//!   a larger token). The CLI has them as `distlock holders` and `distlock break`.
//! * **Is the store set up safely?** [`Inspect::doctor`] (CLI: `distlock doctor`) reads the
//!   server's settings: Redis eviction policy, persistence with replicas, channel ACLs;
//!   MySQL Galera, `wait_timeout`, privileges; ZooKeeper session-timeout clamping; clock skew.
//! * **Tracing and metrics**: every acquire and hold is a `tracing` span, and losses,
//!   renewal failures and forced releases are events; wait, hold time, contention, losses by
//!   reason, renewals and lease slack go to the `metrics` facade. Nothing is installed for
//!   you: add any subscriber; for metrics, add any recorder and call
//!   [`observe::enable_metrics`] once (they are off by default, so an unobserved acquire
//!   costs nothing measurable). See [`observe`] for names and labels.
//!
//! # Write a backend
//!
//! Implement [`DistributedLock`]: `acquire_with` (one acquire, honouring the wait) and
//! `capabilities`, plus `backend_name` for the metrics. A successful acquire hands the
//! guard its [`backend::GuardParts`]: the owner token
//! ([`backend::new_owner_token`]), the fencing token, a
//! [`backend::Hold`] (release, extend, release on drop), a
//! [`backend::HoldStatus`] your backend marks lost when it notices a loss, and a
//! [`backend::Lease`] if holds expire (the guard then renews them); [`backend`] has
//! them all, with the shared policies (deadline, retries, undo of a cancelled acquire). Then run
//! the `distlock-conformance` suite on it: one macro call gives one test per case of the
//! contract, and a claimed capability that does not hold fails. Offer [`Inspect`] too
//! if your store can list holders.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

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
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
#[doc(inline)]
pub use distlock_macros::locked;
pub use env::{connect_from_env, url_with_password, url_with_password_from_env};

/// The lock-file backend (always built): [`file::FileLock`], configured in code.
pub use distlock_file as file;
/// The MySQL/MariaDB backend (feature `mysql`): [`mysql::MySqlConfig`], [`mysql::MySqlLock`].
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use distlock_mysql as mysql;
/// The Redis backend (feature `redis`): [`redis::RedisConfig`], [`redis::RedisLock`],
/// [`redis::Redlock`].
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use distlock_redis as redis;
/// The ZooKeeper backend (feature `zookeeper`): [`zookeeper::ZkConfig`],
/// [`zookeeper::ZkLock`].
#[cfg(feature = "zookeeper")]
#[cfg_attr(docsrs, doc(cfg(feature = "zookeeper")))]
pub use distlock_zookeeper as zookeeper;
