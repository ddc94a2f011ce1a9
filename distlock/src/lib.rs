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
#![warn(missing_docs)]

mod connect;
pub mod env;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use connect::connect;
pub use distlock_core::*;
pub use distlock_file::FileLock;
pub use env::{connect_from_env, url_with_password, url_with_password_from_env};
