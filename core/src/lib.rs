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
//! Behaviour that must be the same on every backend lives here once, and backends apply it
//! (the implementer's items are in [`backend`]):
//! [`backend::Deadline`] turns a [`Wait`] into a deadline (zero limit = try, huge
//! limit = very long wait); [`RetryPolicy`] (in [`AcquireOptions::retry`], driven by
//! [`backend::ConnectionRetry`] or
//! [`backend::retry_connection_failures`]) decides how a waiting
//! acquire rides out connection failures; [`backend::Armed`] undoes a half-done
//! acquire when it fails or is cancelled; and
//! [`backend::spawn_background`] runs clean-up work when a runtime exists,
//! leaving it to the store's backstop otherwise. Change one of them there, and every backend
//! follows. Tracing spans and metrics are written once too, in [`observe`].
//!
//! [`LockExt::with_lock`] runs a body under a lock and releases it on every exit path; see
//! [`scope`] for its contract and task-scoped reentrancy.
#![warn(missing_docs)]

pub mod backend;
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
mod renewal;
mod retry;
pub mod scope;
pub mod settings;
mod status;
mod token;
mod undo;

pub use capabilities::Capabilities;
pub use client_id::ClientId;
pub use error::{ErrorKind, LockError, Result};
pub use guard::LockGuard;
pub use inspect::{Finding, Holder, HolderMeta, Inspect, Severity};
pub use lock::{DistributedLock, LockExt};
pub use name::LockName;
pub use options::{AcquireOptions, Wait, DEFAULT_LEASE_TTL};
pub use retry::RetryPolicy;
pub use scope::ScopedLock;
pub use status::LostSignal;
pub use token::set_holder_label;

// The implementer items live in `backend`; these hidden aliases keep code written against
// the old paths compiling (branches merged later, third-party backends) until it moves.
#[doc(hidden)]
pub use backend::{
    new_owner_token, retry_connection_failures, spawn_background, Armed, Backoff, ConnectionRetry,
    Deadline, GuardParts, Hold, HoldStatus, Lease, Undo,
};
