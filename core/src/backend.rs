//! What a backend implementer needs, apart from the [`DistributedLock`](crate::DistributedLock)
//! trait itself: users of locks never touch these.
//!
//! A backend's [`acquire_with`](crate::DistributedLock::acquire_with) makes an owner token
//! with [`new_owner_token`] before it sends anything, arms an [`Armed`] [`Undo`] so that a
//! cancelled or failed acquire cleans up after itself, runs its loop within a [`Deadline`]
//! (retrying connection failures with [`retry_connection_failures`] or a
//! [`ConnectionRetry`] of its own, pausing by [`Backoff`]), and on success hands the guard
//! its [`GuardParts`]: the [`Hold`] (release, extend, release on drop), the [`HoldStatus`]
//! it marks lost when the store says so, and, for stores whose holds expire, the [`Lease`]
//! the guard renews. Background work goes through [`spawn_background`]. A backend whose
//! store can extend many leases in one request gives its holds a [`RenewalGroup`] per client
//! (see [`Hold::renewal_group`]) with a [`BatchRenew`] of its own.
//!
//! Then run the `distlock-conformance` suite on the backend, and offer
//! [`Inspect`](crate::Inspect) if the store can list and break holds.

pub use crate::background::spawn_background;
pub use crate::deadline::Deadline;
pub use crate::guard::GuardParts;
pub use crate::hold::Hold;
pub use crate::lease::Lease;
pub use crate::renewal::{BatchRenew, ExtendEach, RenewalGroup, MAX_BATCH};
pub use crate::retry::{retry_connection_failures, Backoff, ConnectionRetry};
pub use crate::status::HoldStatus;
pub use crate::token::new_owner_token;
pub use crate::undo::{Armed, Undo};
