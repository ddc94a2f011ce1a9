//! The conformance suite every distlock backend runs: ours, and yours.
//!
//! Write a [`Harness`] that makes fresh clients of your backend (each with its own
//! connections), optionally a [`Faults`] injector, and expand [`conformance_tests!`] in an
//! integration test. You get one `#[test]` per [`Case`], named after it. Cases whose
//! capability your backend does not claim print `SKIPPED <case>: <reason>` and pass; call
//! [`run_case`] to see [`Outcome::Skipped`] programmatically.
//!
//! The cross-process cases re-run your test binary filtered to the same test, with an
//! environment variable telling [`run_test`] to play a child's role; your harness
//! expression runs again in the child, so make it reach the same store there (return the
//! needed variables from [`Harness::child_env`]).
//!
//! A complete third-party backend and its suite (here a toy that wraps the in-memory
//! backend; a real one talks to its store):
//!
//! ```
//! use async_trait::async_trait;
//! use distlock_conformance::{Harness, Faults};
//! use distlock_core::memory::{MemoryLock, MemoryStore};
//! use distlock_core::{
//!     AcquireOptions, Capabilities, DistributedLock, LockGuard, LockName, Result,
//! };
//!
//! #[derive(Debug)]
//! struct MyLock(MemoryLock);
//!
//! #[async_trait]
//! impl DistributedLock for MyLock {
//!     async fn acquire_with(&self, name: &LockName, o: &AcquireOptions) -> Result<Option<LockGuard>> {
//!         self.0.acquire_with(name, o).await
//!     }
//!     fn capabilities(&self) -> Capabilities {
//!         self.0.capabilities()
//!     }
//! }
//!
//! struct MyHarness(MemoryStore);
//!
//! #[async_trait]
//! impl Harness for MyHarness {
//!     async fn client(&self) -> Result<Box<dyn DistributedLock>> {
//!         Ok(Box::new(MyLock(self.0.client())))
//!     }
//!     fn faults(&self) -> Option<&dyn Faults> {
//!         Some(self)
//!     }
//! }
//!
//! #[async_trait]
//! impl Faults for MyHarness {
//!     async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
//!         self.0.expire(guard.name().as_str());
//!         Ok(())
//!     }
//! }
//!
//! // In tests/conformance.rs this is all it takes:
//! distlock_conformance::conformance_tests!(MyHarness(MemoryStore::new()));
//! # fn main() {
//! #     // Doctests do not run #[test] functions; run one case by hand to prove the wiring.
//! #     distlock_conformance::run_test("fencing_strictly_increasing", "doc", || MyHarness(MemoryStore::new()));
//! # }
//! ```
#![warn(missing_docs)]
// The suite reports failures by panicking, like any test.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod case;
mod cases;
mod harness;
pub mod proxy;
mod runner;

pub use case::{Case, Outcome, SkippedCheck};
pub use cases::run_case;
pub use harness::{Faults, Harness};
pub use runner::{run_test, CASE_LIMIT};
