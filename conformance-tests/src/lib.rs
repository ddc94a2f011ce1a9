//! The conformance suite every distlock backend runs: ours, and yours.
//!
//! Write a [`Harness`] that makes fresh clients of your backend (each with its own
//! connections), optionally a [`Faults`] injector, and expand [`conformance_tests!`] in an
//! integration test. You get one `#[test]` per [`Case`], named after it.
//!
//! # A complete third-party backend
//!
//! [`examples/tiny_store.rs`](https://example.invalid/distlock/tree/main/conformance-tests/examples/tiny_store.rs)
//! is a whole backend over a tiny lease table and its suite, in one file: the rows, a
//! [`Hold`](distlock_core::backend::Hold) per row (compare-owner release and extend that honour
//! expiry), a real [`LockGuard`](distlock_core::LockGuard) built from
//! [`GuardParts`](distlock_core::backend::GuardParts) with a [`HoldStatus`](distlock_core::backend::HoldStatus)
//! the store keeps a clone of and a [`Lease`](distlock_core::backend::Lease) the guard renews, a
//! harness with one-time async setup, and a [`Faults::lose_hold`] that finds the hold in the
//! store. CI runs it (`cargo test -p distlock-conformance --example tiny_store`). Start
//! from it.
//!
//! # What each case needs
//!
//! Every case has named sub-checks ([`Case::checks`]). A sub-check whose capability the
//! backend does not claim, or whose [`Faults`] method the harness lacks, is **skipped by
//! name, never passed**: it prints `SKIPPED <case>/<check>: <reason>` on stderr (past
//! libtest's capture), [`run_case`] returns it in [`Outcome::skipped`], and once every case
//! of a `conformance_tests!` expansion ran, a summary counts passed and skipped sub-checks
//! per case. Timing uses the harness's [`Harness::short_ttl`] (T, default 1.5 s),
//! [`Harness::backstop`] (B) and [`Harness::cleanup`] (C).
//!
//! | case | capability | fault | timing |
//! |---|---|---|---|
//! | `acquire_release_reacquire` | – | – | a few round trips |
//! | `names_independent` | – | – | a few round trips |
//! | `try_lock_under_contention` | – | – | a few round trips |
//! | `wait_timeout_bounds` | – | – | waits 0.3 s and 0.9 s; gives up ≤ limit + 1.5 s |
//! | `wait_forever_acquires_after_release` | – | – | 0.2 s; hand-off ≤ 3 s |
//! | `mutual_exclusion_stress` | – | – | 8 clients × 12 rounds, ≤ 120 s |
//! | `mutual_exclusion_across_processes` | `cross_process` | [`Harness::child_env`] | 3 processes × 10 rounds |
//! | `release_is_immediate` | – | – | 5 rounds |
//! | `dropped_guard_frees_promptly` | – | – | free again ≤ C |
//! | `stale_guard_cannot_release_or_extend` / `stale_release_and_extend` | `leases`, or else | [`Faults::lose_hold`] | T, or B |
//! | ″ / `renewal_of_a_stale_hold` | `leases` | [`Faults::lose_hold`] | B + T |
//! | `fencing_strictly_increasing` | `fencing` | – | 29 holds |
//! | `cancellation_leaves_no_hold` / `free_acquire`, `free_try_acquire`, `queued_waiter`, `hand_off` | – | – | per await point: a cut, then free again ≤ C |
//! | `killed_holder_frees_within_backstop` | `cross_process` | [`Harness::child_env`] | free again ≤ B |
//! | `lost_signal_on_fault_not_on_release` / `not_on_release` | `lost_detection` | – | 1.5 s |
//! | ″ / `on_fault` | `lost_detection` | [`Faults::lose_hold`] | signal ≤ B |
//! | `renewal_keeps_hold_past_ttl` / `renewal`, `unrenewed_lapse` | `leases` | – | 3 T, then T |
//! | `odd_and_hostile_names` | – | – | ~50 names |
//! | `reentrancy_outcome` | (`reentrant` decides the outcome) | – | 0.3 s |
//! | `fifo_order` | `fifo` | – | a few seconds |
//! | `recovers_after_server_restart` | – | [`Faults::restart_server`] | works again ≤ 20 s |
//! | `server_pause_past_backstop` | `lost_detection` | [`Faults::pause_server`], [`Faults::resume_server`] | signal ≤ B |
//! | `unrenewed_lease_excludes_until_valid_until` | `leases` | – | T |
//! | `extend_keeps_hold_for_its_duration` / `longer_than_ttl`, `shorter_than_ttl` | (`leases`: the lease honours `d`; none: `extend` is `Ok` while held) | – | 3 T, then T |
//! | `store_side_loss_is_reported` / `release`, `extend` | – | [`Faults::lose_hold`] | B each |
//! | `generated_names_never_collide` | – | – | ~2000 names, 2 round trips each, 16 at a time |
//!
//! # Cancel safety: the contract and the suite's bound
//!
//! The contract, for [`DistributedLock::acquire_with`](distlock_core::DistributedLock::acquire_with)
//! and every acquire built on it: **dropping the future at any await point leaves no hold
//! behind; whatever reached the store is gone within [`Harness::cleanup`]** (default 3 s),
//! removed by the backend's own background clean-up, or by its backstop where the backstop
//! is that short.
//!
//! The suite checks exactly that, at every await point rather than at random instants: it
//! drives each acquire (default options, so a default 30 s lease) one suspension at a time
//! and drops it right after its n-th suspension (the request is out, its reply not read)
//! and right after the wake that follows (the reply is there, not yet processed), for
//! n = 1, 2, … until the acquire completes; after every cut, another client must get the
//! lock within [`Harness::cleanup`]. The cuts run on a one-thread runtime, so a backend's
//! own tasks (connection drivers) progress only while the acquire is suspended and every
//! round trip to the store is a cut point. Acquires of a free lock, waiters queued on a
//! held lock, and waiters being handed the lock as its holder releases are all cut.
//!
//! # Finding a hold in the store ([`Faults::lose_hold`])
//!
//! [`Faults::lose_hold`] gets the guard, and the guard carries what a backend stores with
//! each hold: [`LockGuard::name`](distlock_core::LockGuard::name) (map it to your key as
//! your backend does, e.g. [`LockName::escaped`](distlock_core::LockName::escaped) or
//! [`LockName::hashed`](distlock_core::LockName::hashed)),
//! [`LockGuard::owner_token`](distlock_core::LockGuard::owner_token) (the random token your
//! backend put in [`GuardParts::owner_token`](distlock_core::backend::GuardParts::owner_token) and
//! stored with the hold: a Redis value, a ZooKeeper node name, a row's owner column) and
//! [`LockGuard::fencing_token`](distlock_core::LockGuard::fencing_token). Find the record by
//! name, check the owner token, then lose it the way your store loses holds: lapse its
//! lease in place, delete it, `KILL` its session. For a networked store the [`proxy`] kit
//! cuts one client's connections: give each client its own [`proxy::TcpProxy`] and cut the
//! one whose session or connection the store records against the hold.
//!
//! # Names: no short hashes
//!
//! Distinct names must be distinct locks. Where a store limits keys (MySQL's 64 characters,
//! file names, ZooKeeper paths), escape the name or use a full-length cryptographic hash
//! ([`LockName::hashed`](distlock_core::LockName::hashed) keeps a readable prefix and a full
//! SHA-256). **Never a short hash** (CRC32, a 64-bit hash, a truncated digest): with a
//! million names a 32-bit hash has a collision almost surely, and two colliding names
//! silently exclude each other, or worse, a case-folding store merges them. The suite's
//! `generated_names_never_collide` case holds thousands of look-alike names at once
//! (mixed case, long shared prefixes, unicode), which finds folding and truncation every
//! time; a short hash collides by chance, so no test finds it reliably: do not write one.
//!
//! # One-time async setup (a schema)
//!
//! The suite builds a harness per case, and each test runs on its own Tokio runtime. Keep
//! the throwaway server in a `static`, and do async setup (create a table) once, lazily, in
//! [`Harness::client`] behind a `static` [`tokio::sync::OnceCell`]. Keep only the effect
//! (the table exists in the store) in that static, never a pool or a connection: I/O
//! objects made on one test's runtime fail once that test ended. The example does this.
//!
//! # Cross-process cases
//!
//! The cross-process cases re-run your test binary filtered to the same test, with an
//! environment variable telling [`run_test`] to play a child's role; your harness
//! expression runs again in the child, so make it reach the same store there (return the
//! needed variables from [`Harness::child_env`]).
//!
//! # The smallest wiring
//!
//! ```
//! use async_trait::async_trait;
//! use distlock_conformance::{Faults, Harness};
//! use distlock_core::memory::MemoryStore;
//! use distlock_core::{DistributedLock, LockGuard, Result};
//!
//! // The in-memory reference backend stands in for yours; see examples/tiny_store.rs for a
//! // backend written from scratch.
//! struct MyHarness(MemoryStore);
//!
//! #[async_trait]
//! impl Harness for MyHarness {
//!     async fn client(&self) -> Result<Box<dyn DistributedLock>> {
//!         Ok(Box::new(self.0.client()))
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
#![doc = concat!(
    "\n# The example, in full\n\n`examples/tiny_store.rs`:\n\n```rust,ignore\n",
    include_str!("../examples/tiny_store.rs"),
    "```\n"
)]
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
