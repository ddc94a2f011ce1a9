//! The core of distlock: the [`DistributedLock`] trait backends implement, the
//! [`LockGuard`] users hold, options, capabilities, errors, lock-name encodings, and the
//! in-memory reference backend [`memory`].
//!
//! ```
//! use distlock_core::{memory::MemoryLock, LockExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> distlock_core::Result<()> {
//! let locks = MemoryLock::new();
//! let guard = locks.acquire("payments/order-42").await?;
//! assert!(locks.try_acquire("payments/order-42").await?.is_none());
//! let token = guard.fencing_token(); // hand this to the protected resource
//! assert!(token.is_some());
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! # Policies every backend shares
//!
//! Behaviour that must be the same on every backend lives here once, and backends apply it:
//! [`Deadline`] turns a [`Wait`] into a deadline (zero limit = try, huge limit = very long
//! wait); [`RetryPolicy`] (in [`AcquireOptions::retry`], driven by [`ConnectionRetry`] or
//! [`retry_connection_failures`]) decides how a waiting acquire rides out connection
//! failures; [`Armed`] undoes a half-done acquire when it fails or is cancelled; and
//! [`spawn_background`] runs clean-up work when a runtime exists, leaving it to the store's
//! backstop otherwise. Change one of them there, and every backend follows.
//!
//! [`LockExt::with_lock`] runs a body under a lock and releases it on every exit path; see
//! [`scope`] for its contract and task-scoped reentrancy.
#![warn(missing_docs)]

mod background;
mod capabilities;
mod client_id;
mod deadline;
mod error;
mod guard;
mod hold;
pub mod inspect;
pub mod lease;
mod lock;
pub mod memory;
mod name;
pub mod observe;
mod options;
mod retry;
pub mod scope;
pub mod settings;
mod status;
mod token;
mod undo;

pub use background::spawn_background;
pub use capabilities::Capabilities;
pub use client_id::ClientId;
pub use deadline::Deadline;
pub use error::{ErrorKind, LockError, Result};
pub use guard::{GuardParts, LockGuard};
pub use hold::Hold;
pub use inspect::{Finding, Holder, HolderMeta, Inspect, Severity};
pub use lease::Lease;
pub use lock::{DistributedLock, LockExt};
pub use name::LockName;
pub use options::{AcquireOptions, Wait, DEFAULT_LEASE_TTL};
pub use retry::{retry_connection_failures, Backoff, ConnectionRetry, RetryPolicy};
pub use scope::ScopedLock;
pub use status::{HoldStatus, LostSignal};
pub use token::{new_owner_token, set_holder_label};
pub use undo::{Armed, Undo};
