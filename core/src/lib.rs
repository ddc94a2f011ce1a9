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
//! [`LockExt::with_lock`] runs a body under a lock and releases it on every exit path; see
//! [`scope`] for its contract and task-scoped reentrancy.
#![warn(missing_docs)]

mod capabilities;
mod client_id;
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
pub mod scope;
pub mod settings;
mod status;
mod token;

pub use capabilities::Capabilities;
pub use client_id::ClientId;
pub use error::{ErrorKind, LockError, Result};
pub use guard::{GuardParts, LockGuard};
pub use hold::Hold;
pub use inspect::{Finding, Holder, HolderMeta, Inspect, Severity};
pub use lease::Lease;
pub use lock::{DistributedLock, LockExt};
pub use name::LockName;
pub use options::{AcquireOptions, Wait, DEFAULT_LEASE_TTL};
pub use scope::ScopedLock;
pub use status::{HoldStatus, LostSignal};
pub use token::{new_owner_token, set_holder_label};
