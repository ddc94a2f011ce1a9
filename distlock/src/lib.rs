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
#![warn(missing_docs)]

mod connect;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use connect::{connect, schemes};
pub use distlock_core::*;
pub use distlock_file::FileLock;

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
