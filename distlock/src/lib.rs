//! distlock: one named, mutually exclusive lock across the instances of a service, whatever
//! the store: Redis, ZooKeeper, MySQL/MariaDB, or lock files on one host.
//!
//! Pick backends with cargo features (`redis`, `zookeeper`, `mysql`; lock files and the
//! in-memory backend are always there) and one of them at run time with a URL:
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
pub mod fence;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use connect::connect;
pub use distlock_core::*;
pub use distlock_file::FileLock;
