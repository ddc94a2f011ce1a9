//! The in-memory reference backend: every semantic of the contract that makes sense inside
//! one process, for the conformance suite's own proof and for users' unit tests.
//!
//! Clients made from one [`MemoryStore`] contend with each other; waiting is FIFO with
//! direct hand-off; holds have leases (renewed by the guard's watchdog) and fencing tokens;
//! [`MemoryStore::expire`] force-expires a hold, which fires its lost signal. The same client
//! acquiring a name it holds is an ordinary contender (not reentrant).

mod inspect;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::capabilities::Capabilities;
use crate::client_id::ClientId;
use crate::deadline::Deadline;
use crate::error::{LockError, Result};
use crate::guard::{GuardParts, LockGuard};
use crate::hold::Hold;
use crate::lease::{saturating_add, Lease};
use crate::lock::DistributedLock;
use crate::name::LockName;
use crate::observe::LossReason;
use crate::options::AcquireOptions;
use crate::status::HoldStatus;
use crate::token::new_owner_token;

/// The shared state clients of the memory backend contend on. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    locks: Mutex<HashMap<LockName, Entry>>,
    // One counter for the whole store, so an idle name's entry can be dropped (no growth
    // per name ever used) while its fencing tokens still only increase. Only bumped with
    // `locks` held.
    fence: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Entry {
    holder: Option<Holder>,
    fence: Arc<AtomicU64>,
    waiters: VecDeque<Waiter>,
}

#[derive(Debug)]
struct Holder {
    token: String,
    expires: Instant,
    status: HoldStatus,
    fence: u64,
    since: Instant,
}

#[derive(Debug)]
struct Waiter {
    token: String,
    ttl: Duration,
    grant: oneshot::Sender<Grant>,
}

#[derive(Debug)]
struct Grant {
    fence: u64,
    granted_at: Instant,
    status: HoldStatus,
}

impl Entry {
    fn new(fence: Arc<AtomicU64>) -> Self {
        Entry {
            holder: None,
            fence,
            waiters: VecDeque::new(),
        }
    }

    fn idle(&self) -> bool {
        self.holder.is_none() && self.waiters.is_empty()
    }

    fn grant(&mut self, token: String, ttl: Duration, now: Instant) -> Grant {
        let fence = self.fence.fetch_add(1, Ordering::SeqCst) + 1;
        let status = HoldStatus::new();
        self.holder = Some(Holder {
            token,
            expires: saturating_add(now, ttl),
            status: status.clone(),
            fence,
            since: now,
        });
        Grant {
            fence,
            granted_at: now,
            status,
        }
    }

    /// Hands a free lock to the longest waiter still listening.
    fn hand_off(&mut self, now: Instant) {
        while self.holder.is_none() {
            let Some(waiter) = self.waiters.pop_front() else {
                return;
            };
            let grant = self.grant(waiter.token, waiter.ttl, now);
            if waiter.grant.send(grant).is_err() {
                self.holder = None;
            }
        }
    }

    fn expire_due(&mut self, now: Instant) {
        if self.holder.as_ref().is_some_and(|h| h.expires <= now) {
            if let Some(h) = self.holder.take() {
                h.status.mark_lost_because(
                    LossReason::LeaseExpired,
                    LockError::lost("the lease expired in the store"),
                );
            }
        }
        self.hand_off(now);
    }

    fn owned_by(&self, token: &str) -> bool {
        self.holder.as_ref().is_some_and(|h| h.token == token)
    }

    fn free(&mut self, now: Instant) {
        self.holder = None;
        self.hand_off(now);
    }
}

impl MemoryStore {
    /// A new, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new client of this store (like a new connection to a server).
    pub fn client(&self) -> MemoryLock {
        MemoryLock {
            store: self.clone(),
            id: ClientId::unique(),
        }
    }

    /// Force-expires the current hold of `name`, as if its lease had run out: its guard's
    /// lost signal fires and the next waiter gets the lock. Returns whether a hold existed.
    pub fn expire(&self, name: &str) -> bool {
        let Ok(name) = LockName::new(name) else {
            return false;
        };
        let mut locks = self.lock_map();
        let Some(entry) = locks.get_mut(&name) else {
            return false;
        };
        let Some(holder) = entry.holder.take() else {
            return false;
        };
        holder
            .status
            .mark_lost(LockError::lost("the hold was force-expired"));
        entry.hand_off(Instant::now());
        if entry.idle() {
            locks.remove(&name);
        }
        true
    }

    /// Whether `name` is held right now (after expiring a due lease).
    pub fn is_locked(&self, name: &str) -> bool {
        let Ok(name) = LockName::new(name) else {
            return false;
        };
        let mut locks = self.lock_map();
        let Some(entry) = locks.get_mut(&name) else {
            return false;
        };
        entry.expire_due(Instant::now());
        if entry.idle() {
            locks.remove(&name);
            return false;
        }
        entry.holder.is_some()
    }

    fn lock_map(&self) -> MutexGuard<'_, HashMap<LockName, Entry>> {
        self.shared
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the name's entry (after expiring a due lease), and forgets the entry
    /// when it ends up idle.
    fn with_entry<R>(&self, name: &LockName, f: impl FnOnce(&mut Entry) -> R) -> R {
        let mut locks = self.lock_map();
        let entry = locks
            .entry(name.clone())
            .or_insert_with(|| Entry::new(self.shared.fence.clone()));
        entry.expire_due(Instant::now());
        let result = f(entry);
        if entry.idle() {
            locks.remove(name);
        }
        result
    }
}

/// A client of the memory backend. Cheap to clone (clones are the same client, also for
/// the task-scoped reentrancy of [`with_lock`](crate::LockExt::with_lock)).
#[derive(Clone, Debug)]
pub struct MemoryLock {
    store: MemoryStore,
    id: ClientId,
}

impl Default for MemoryLock {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLock {
    /// A client of a fresh, private store.
    pub fn new() -> Self {
        MemoryStore::new().client()
    }

    /// The store this client talks to.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn guard(
        &self,
        name: &LockName,
        token: String,
        grant: Grant,
        opts: &AcquireOptions,
    ) -> LockGuard {
        LockGuard::new(GuardParts {
            name: name.clone(),
            owner_token: token.clone(),
            fencing_token: Some(grant.fence),
            hold: Arc::new(MemoryHold {
                store: self.store.clone(),
                name: name.clone(),
                token,
            }),
            status: grant.status,
            lease: Some(Lease::new(
                opts.ttl_or_default(),
                grant.granted_at,
                opts.renew,
            )),
        })
    }
}

/// Removes a waiter that gave up, or frees a grant that arrived after it gave up.
struct WaitTicket<'a> {
    store: &'a MemoryStore,
    name: &'a LockName,
    token: &'a str,
    armed: bool,
}

impl Drop for WaitTicket<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.store.with_entry(self.name, |entry| {
            entry.waiters.retain(|w| w.token != self.token);
            if let Some(holder) = entry.holder.as_ref().filter(|h| h.token == self.token) {
                holder.status.mark_released();
                entry.free(Instant::now());
            }
        });
    }
}

#[async_trait]
impl DistributedLock for MemoryLock {
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        let token = new_owner_token();
        let ttl = options.ttl_or_default();
        let deadline = Deadline::start(options.wait);
        let (tx, mut rx) = oneshot::channel();
        let immediate = self.store.with_entry(name, |entry| {
            if entry.holder.is_none() && entry.waiters.is_empty() {
                return Some(Some(entry.grant(token.clone(), ttl, Instant::now())));
            }
            if deadline.is_try() {
                return Some(None);
            }
            entry.waiters.push_back(Waiter {
                token: token.clone(),
                ttl,
                grant: tx,
            });
            None
        });
        if let Some(outcome) = immediate {
            return Ok(outcome.map(|grant| self.guard(name, token, grant, options)));
        }

        let mut ticket = WaitTicket {
            store: &self.store,
            name,
            token: &token,
            armed: true,
        };
        loop {
            let holder_expiry = self
                .store
                .with_entry(name, |e| e.holder.as_ref().map(|h| h.expires));
            let wake = match (holder_expiry, deadline.at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                grant = &mut rx => {
                    let grant = grant.map_err(|_| LockError::backend("the memory store dropped a waiter"))?;
                    ticket.armed = false;
                    return Ok(Some(self.guard(name, token.clone(), grant, options)));
                }
                _ = sleep => {
                    // Expiring a due lease may hand the lock to us; the next turn receives it.
                    self.store.with_entry(name, |_| ());
                    if deadline.expired() {
                        if let Ok(grant) = rx.try_recv() {
                            ticket.armed = false;
                            return Ok(Some(self.guard(name, token.clone(), grant, options)));
                        }
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_leases(true)
            .with_fencing(true)
            .with_fifo(true)
            .with_lost_detection(true)
    }

    fn client_id(&self) -> ClientId {
        self.id
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn inspect(&self) -> Option<&dyn crate::inspect::Inspect> {
        Some(self)
    }
}

#[derive(Debug)]
struct MemoryHold {
    store: MemoryStore,
    name: LockName,
    token: String,
}

impl MemoryHold {
    fn release_now(&self) -> Result<()> {
        self.store.with_entry(&self.name, |entry| {
            if entry.owned_by(&self.token) {
                entry.free(Instant::now());
                Ok(())
            } else {
                Err(LockError::not_held(format!(
                    "lock {:?} is not held by this owner",
                    self.name
                )))
            }
        })
    }
}

#[async_trait]
impl Hold for MemoryHold {
    async fn release(&self) -> Result<()> {
        self.release_now()
    }

    async fn extend(&self, ttl: Duration) -> Result<()> {
        self.store
            .with_entry(&self.name, |entry| match &mut entry.holder {
                Some(h) if h.token == self.token => {
                    h.expires = saturating_add(Instant::now(), ttl);
                    Ok(())
                }
                _ => Err(LockError::not_held(format!(
                    "lock {:?} is not held by this owner",
                    self.name
                ))),
            })
    }

    fn release_on_drop(self: Arc<Self>) {
        // No I/O involved: free synchronously, which also works without a runtime.
        let _ = self.release_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockExt;

    #[tokio::test]
    async fn idle_names_are_forgotten_and_fencing_still_increases() {
        let locks = MemoryLock::new();
        let other = locks.store().client();
        let mut last = 0;
        for i in 0..200 {
            let name = format!("job-{}", i % 50);
            let g = locks.acquire(&name).await.unwrap();
            assert!(other.try_acquire(&name).await.unwrap().is_none());
            let token = g.fencing_token().unwrap();
            assert!(token > last);
            last = token;
            if i % 2 == 0 {
                g.release().await.unwrap();
            } else {
                drop(g);
            }
        }
        let waited = other
            .acquire_timeout("waited", Duration::from_millis(5))
            .await
            .unwrap();
        let timed_out = locks
            .acquire_timeout("waited", Duration::from_millis(5))
            .await;
        assert!(timed_out.is_err());
        drop(waited);
        assert!(!locks.store().is_locked("job-1"));
        assert_eq!(
            locks.store().lock_map().len(),
            0,
            "a long-lived store must not keep an entry per name ever locked"
        );
    }
}
