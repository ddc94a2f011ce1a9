//! A complete third-party backend and its conformance suite: what a backend author writes,
//! and nothing else.
//!
//! The store is a tiny lease table (kept in memory here so the example runs anywhere; in a
//! real backend it is a SQL table or a key-value store, and each method below is one
//! statement). The backend builds a real [`LockGuard`] from [`GuardParts`]: its own
//! [`Hold`] for one row, a [`HoldStatus`] it keeps a clone of to report a loss, and a
//! [`Lease`] the guard renews. The harness does one-time async setup (the schema) and
//! injects faults by finding the hold in the store through the guard's name and owner token.
//!
//! - `cargo test -p distlock-conformance --example tiny_store` runs the suite, one test per
//!   case (CI runs it: the example is built with `test = true`);
//! - `cargo run -p distlock-conformance --example tiny_store` runs every case once and
//!   prints what passed and what was skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use distlock_conformance::{Faults, Harness};
use distlock_core::backend::{new_owner_token, GuardParts, Hold, HoldStatus, Lease};
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, LockError, LockGuard, LockName, Result, Wait,
};
use tokio::sync::Notify;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// The store.

/// One row of `CREATE TABLE locks (name … PRIMARY KEY, owner CHAR(32), expires_at …,
/// fence BIGINT)`.
#[derive(Debug)]
struct Row {
    owner: String,
    expires_at: Instant,
    /// The holder's status: a store that learns of a loss (here: a lapsed row taken over)
    /// reports it, so the guard's lost signal fires at once rather than at its next renewal.
    status: HoldStatus,
}

#[derive(Debug, Default)]
struct Table {
    /// `None` until the schema exists: every statement fails before that.
    rows: Mutex<Option<HashMap<String, Row>>>,
    /// The fencing counter per name. It outlives the rows, so tokens never go back.
    fences: Mutex<HashMap<String, u64>>,
    /// Stands in for the store's release notification (Redis pub/sub, a ZooKeeper watch).
    released: Notify,
}

impl Table {
    /// `CREATE TABLE IF NOT EXISTS …`: idempotent, and slow enough to want doing once.
    async fn create_schema(&self) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.rows
            .lock()
            .map_err(|_| LockError::backend("poisoned"))?
            .get_or_insert_with(HashMap::new);
        Ok(())
    }

    fn with_rows<T>(&self, f: impl FnOnce(&mut HashMap<String, Row>) -> T) -> Result<T> {
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| LockError::backend("poisoned"))?;
        let rows = rows
            .as_mut()
            .ok_or_else(|| LockError::config("the locks table does not exist"))?;
        Ok(f(rows))
    }

    /// `INSERT … ON DUPLICATE KEY UPDATE … WHERE expires_at <= now()`, and the fence bump,
    /// in one transaction: the row is ours if it was absent or lapsed.
    fn take(
        &self,
        key: &str,
        owner: &str,
        ttl: Duration,
        status: &HoldStatus,
    ) -> Result<Option<u64>> {
        let now = Instant::now();
        let taken = self.with_rows(|rows| {
            if let Some(row) = rows.get(key) {
                if row.expires_at > now {
                    return false;
                }
                row.status.mark_lost(LockError::lost(
                    "the lease lapsed and another client took the lock",
                ));
            }
            rows.insert(
                key.to_string(),
                Row {
                    owner: owner.to_string(),
                    // The store counts the TTL from when it got the request: never sooner
                    // than the guard's local deadline, which counts from before it was sent.
                    expires_at: now + ttl,
                    status: status.clone(),
                },
            );
            true
        })?;
        if !taken {
            return Ok(None);
        }
        let mut fences = self
            .fences
            .lock()
            .map_err(|_| LockError::backend("poisoned"))?;
        let fence = fences.entry(key.to_string()).or_default();
        *fence += 1;
        Ok(Some(*fence))
    }

    /// `DELETE … WHERE name = ? AND owner = ? AND expires_at > now()`: true if a row went.
    /// The expiry matters: a lapsed row is no longer ours, even if nobody took it yet.
    fn delete_if_owner(&self, key: &str, owner: &str) -> Result<bool> {
        let deleted = self.with_rows(|rows| match rows.get(key) {
            Some(row) if row.owner == owner && row.expires_at > Instant::now() => {
                rows.remove(key);
                true
            }
            _ => false,
        })?;
        if deleted {
            self.released.notify_waiters();
        }
        Ok(deleted)
    }

    /// `UPDATE … SET expires_at = now() + ? WHERE name = ? AND owner = ? AND expires_at > now()`:
    /// extends by exactly `ttl`, and never revives a lapsed row.
    fn extend_if_owner(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
        self.with_rows(|rows| match rows.get_mut(key) {
            Some(row) if row.owner == owner && row.expires_at > Instant::now() => {
                row.expires_at = Instant::now() + ttl;
                true
            }
            _ => false,
        })
    }
}

/// The row key of a lock name. This store takes any string as a key. A store whose keys are
/// limited uses [`LockName::hashed`] (a readable prefix and a full SHA-256), or escaping:
/// never a short hash, whose collisions would make two names one lock.
fn key(name: &LockName) -> String {
    name.as_str().to_string()
}

// ---------------------------------------------------------------------------------------
// The backend.

/// A client of the store.
#[derive(Debug)]
pub struct TinyLock {
    table: Arc<Table>,
}

/// The backend's handle on one row.
#[derive(Debug)]
struct TinyHold {
    table: Arc<Table>,
    key: String,
    owner: String,
}

#[async_trait]
impl Hold for TinyHold {
    async fn release(&self) -> Result<()> {
        if self.table.delete_if_owner(&self.key, &self.owner)? {
            Ok(())
        } else {
            Err(LockError::not_held(
                "the row is gone, lapsed or someone else's",
            ))
        }
    }

    async fn extend(&self, ttl: Duration) -> Result<()> {
        if self.table.extend_if_owner(&self.key, &self.owner, ttl)? {
            Ok(())
        } else {
            Err(LockError::not_held(
                "the row is gone, lapsed or someone else's",
            ))
        }
    }
    // `release_on_drop` keeps its default: `release` spawned on the current runtime.
}

#[async_trait]
impl DistributedLock for TinyLock {
    /// # Cancel safety
    /// Cancel safe: the only await is the wait between attempts, and an attempt grants and
    /// returns the guard with no await in between, so a dropped future never owns a row.
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        let key = key(name);
        let owner = new_owner_token();
        let ttl = options.ttl_or_default();
        let deadline = options.wait.deadline_from(Instant::now());
        loop {
            // Registered before the attempt, so a release right after it still wakes us.
            let released = self.table.released.notified();
            // Before the request goes out: the local deadline may only err early.
            let started = Instant::now();
            let status = HoldStatus::new();
            if let Some(fence) = self.table.take(&key, &owner, ttl, &status)? {
                let hold = TinyHold {
                    table: self.table.clone(),
                    key,
                    owner: owner.clone(),
                };
                return Ok(Some(LockGuard::new(GuardParts {
                    name: name.clone(),
                    owner_token: owner,
                    fencing_token: Some(fence),
                    hold: Arc::new(hold),
                    status,
                    lease: Some(Lease::new(ttl, started, options.renew)),
                })));
            }
            // Waiting is notified; the re-check covers a holder whose lease lapsed.
            let recheck = Duration::from_millis(50);
            let nap = match (options.wait, deadline) {
                (Wait::Try, _) => return Ok(None),
                (_, Some(d)) if Instant::now() >= d => return Ok(None),
                (_, Some(d)) => recheck.min(d - Instant::now()),
                (_, None) => recheck,
            };
            let _ = tokio::time::timeout(nap, released).await;
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_leases(true)
            .with_fencing(true)
            .with_lost_detection(true)
    }
}

// ---------------------------------------------------------------------------------------
// The harness.

/// The store every test shares, as a throwaway server would be (kept in a `static`: the
/// suite builds a harness per case).
fn shared_table() -> Arc<Table> {
    static TABLE: OnceLock<Arc<Table>> = OnceLock::new();
    TABLE.get_or_init(Arc::default).clone()
}

#[derive(Debug)]
struct TinyHarness {
    table: Arc<Table>,
}

impl TinyHarness {
    fn new() -> Self {
        TinyHarness {
            table: shared_table(),
        }
    }
}

#[async_trait]
impl Harness for TinyHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        // One-time async setup: the schema, created by the first client any case asks for.
        // Keep only its effect (the table exists in the store) in the static, never a pool or
        // a connection: each test runs on its own Tokio runtime, and I/O objects made on one
        // runtime fail once it is gone.
        static SCHEMA: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        SCHEMA
            .get_or_try_init(|| self.table.create_schema())
            .await?;
        Ok(Box::new(TinyLock {
            table: self.table.clone(),
        }))
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }

    fn short_ttl(&self) -> Duration {
        Duration::from_millis(800)
    }

    fn backstop(&self) -> Duration {
        self.short_ttl() + Duration::from_millis(200)
    }
}

#[async_trait]
impl Faults for TinyHarness {
    /// Lapses the guard's row in place, as the store would when its clock passed the
    /// expiry: the row stays until someone takes the lock over. The row is found by the
    /// guard's name (mapped to the key as the backend maps it) and checked against the
    /// guard's owner token, which is what the backend stored in it.
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        let key = key(guard.name());
        self.table.with_rows(|rows| match rows.get_mut(&key) {
            Some(row) if row.owner == guard.owner_token() => {
                row.expires_at = Instant::now();
                Ok(())
            }
            _ => Err(LockError::backend("the guard's row is not in the table")),
        })?
    }
}

// In `tests/conformance.rs` of your crate, this line is the whole suite: one test per case.
distlock_conformance::conformance_tests!(TinyHarness::new());

#[tokio::main]
async fn main() {
    let harness: Arc<dyn Harness> = Arc::new(TinyHarness::new());
    for &case in distlock_conformance::Case::ALL {
        let outcome = distlock_conformance::run_case(case, harness.clone()).await;
        println!(
            "{case}: {} passed, {} skipped",
            outcome.passed.len(),
            outcome.skipped.len()
        );
    }
}
