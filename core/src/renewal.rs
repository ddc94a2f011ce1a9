//! One renewal scheduler per client: a single task and timer renew every leased hold of a
//! [`RenewalGroup`], batching the holds that fall due together into one call of the
//! backend's [`BatchRenew::extend_many`].
//!
//! It keeps the per-hold watchdog's contract (see [`crate::lease`]): renew every TTL/3, retry
//! after a failed renewal in TTL/10 (at least 20 ms), declare the hold lost at its local
//! deadline even while a renewal is stuck, treat `NotHeld` as a rejected renewal, take turns
//! with the user's `extend` and plan again after it. Two clocks drive the task: the earliest
//! renewal due and the earliest local deadline. Renewals run as futures beside that loop, so
//! a slow batch never delays another hold's loss past its deadline.
//!
//! Due renewals coalesce: a tick takes every hold due within a tenth of its TTL, so holds
//! acquired at nearly the same time share a round trip.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::background::spawn_background;
use crate::error::{ErrorKind, LockError, Result};
use crate::hold::Hold;
use crate::lease::{first_renewal_of_short, saturating_add, LeaseClock};
use crate::observe::{self, LossReason};
use crate::status::HoldStatus;

/// Most holds handed to one [`BatchRenew::extend_many`] call.
pub const MAX_BATCH: usize = 1000;

/// How a backend renews many holds of one client at once. Implement it when the store can
/// extend several leases in one request (Redis: one script over many keys); the default
/// extends each hold with [`Hold::extend`], concurrently.
#[async_trait]
pub trait BatchRenew: Send + Sync + fmt::Debug + 'static {
    /// Extends every hold in `holds` (at most [`MAX_BATCH`], all of this group) to `ttl` from
    /// now, with [`Hold::extend`]'s contract per hold. Returns one result per hold, in order
    /// (a missing result counts as a failed renewal).
    ///
    /// # Cancel safety
    /// Must be safe to drop midway: an extend is idempotent.
    async fn extend_many(&self, holds: &[Arc<dyn Hold>], ttl: Duration) -> Vec<Result<()>> {
        futures::future::join_all(holds.iter().map(|h| h.extend(ttl))).await
    }
}

/// Per-hold extends, for a group that only wants the shared scheduler.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExtendEach;

impl BatchRenew for ExtendEach {}

/// The renewal scheduler of one client. Make one per client with [`RenewalGroup::new`] and
/// return a clone from [`Hold::renewal_group`] for every hold of that client. Cheap to clone.
///
/// Its task starts with the first leased hold and ends when the last handle is dropped;
/// meanwhile it sleeps on one timer.
#[derive(Clone)]
pub struct RenewalGroup {
    shared: Arc<Shared>,
}

impl fmt::Debug for RenewalGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenewalGroup")
            .field("batch", &self.shared.batch)
            .field("holds", &self.shared.state().entries.len())
            .finish()
    }
}

struct Shared {
    batch: Box<dyn BatchRenew>,
    state: Mutex<State>,
    /// Held by the task too (strongly, unlike `Shared`), so dropping the group can wake it.
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    /// Renewal times of the renewing holds that have no renewal in flight.
    due: BTreeSet<(Instant, u64)>,
    /// Local deadlines of every hold: the loss check.
    deadlines: BTreeSet<(Instant, u64)>,
    next_id: u64,
    running: bool,
    /// Counts the tasks started, so only the current one's end marks the group idle.
    generation: u64,
    /// When the task will next wake by itself, or sooner: `plan` sets it together with a
    /// notification on its way to the task. `None` while it sleeps without a timer.
    planned: Option<Instant>,
    /// How many times the task has run its loop.
    #[cfg(test)]
    task_turns: u64,
}

struct Entry {
    hold: Arc<dyn Hold>,
    status: HoldStatus,
    clock: Arc<LeaseClock>,
    renew: bool,
    retry_soon: bool,
    /// Its first renewal, of a lease that started short, is still to come: sent when due,
    /// not coalesced earlier (the coalescing window, TTL/10, can exceed the whole short
    /// lease's tenth, and a hold released before then needs no renewal at all).
    short_first: bool,
    in_flight: bool,
    due: Option<Instant>,
    deadline: Instant,
}

/// A hold's place in a group; kept by its [`LeaseClock`], which re-plans through it.
#[derive(Debug)]
pub(crate) struct Enrolment {
    shared: Weak<Shared>,
    id: u64,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

fn retry_pause(ttl: Duration) -> Duration {
    (ttl / 10).max(retry_floor())
}

fn retry_floor() -> Duration {
    Duration::from_millis(20)
}

impl RenewalGroup {
    /// A group whose holds are renewed with `batch`.
    pub fn new(batch: impl BatchRenew) -> Self {
        RenewalGroup {
            shared: Arc::new(Shared {
                batch: Box::new(batch),
                state: Mutex::new(State::default()),
                wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// Schedules a hold; `false` (nothing scheduled) outside a Tokio runtime.
    pub(crate) fn enrol(
        &self,
        hold: Arc<dyn Hold>,
        status: HoldStatus,
        clock: &Arc<LeaseClock>,
        renew: bool,
    ) -> bool {
        let shared = &self.shared;
        let mut state = shared.state();
        if !state.running {
            state.running = true;
            state.planned = None;
            state.generation = state.generation.wrapping_add(1);
            // The marker is made here, not in the task's body: a task its runtime drops
            // before it ever ran must still say so, or no later hold would start another.
            // Spawned without the lock, since that drop can happen inside the spawn.
            let running = Running {
                group: Arc::downgrade(shared),
                generation: state.generation,
            };
            drop(state);
            let task = run(Arc::downgrade(shared), shared.wake.clone(), running);
            if !spawn_background(task) {
                return false;
            }
            state = shared.state();
        }
        let id = state.next_id;
        state.next_id += 1;
        let now = Instant::now();
        let deadline = clock.deadline();
        // A lease that started short (`Lease::first`) is renewed to its TTL a tenth of the
        // way into it (see `first_renewal_of_short`).
        let due = renew.then(|| {
            if clock.short() {
                first_renewal_of_short(now, deadline)
            } else {
                saturating_add(now, clock.ttl() / 3).min(deadline)
            }
        });
        state.entries.insert(
            id,
            Entry {
                hold,
                status,
                clock: clock.clone(),
                renew,
                retry_soon: false,
                short_first: renew && clock.short(),
                in_flight: false,
                due,
                deadline,
            },
        );
        if let Some(due) = due {
            state.due.insert((due, id));
        }
        state.deadlines.insert((deadline, id));
        let first = due.map_or(deadline, |d| d.min(deadline));
        let wake = state.plan(first);
        drop(state);
        clock.enrol(Enrolment {
            shared: Arc::downgrade(shared),
            id,
        });
        if wake {
            shared.wake.notify_one();
        }
        true
    }

    /// How many holds the group schedules now (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.shared.state().entries.len()
    }

    /// Whether the group schedules no hold.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Enrolment {
    /// The hold ended: forget it (a renewal in flight finishes but is not repeated).
    pub(crate) fn remove(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.state().remove(self.id);
        }
    }

    /// The hold's deadline or TTL changed (a user's extend, or a renewal's own bookkeeping):
    /// plan again from now, as the watchdog did.
    pub(crate) fn replan(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut state = shared.state();
        let Some(first) = state.replan(self.id, Instant::now()) else {
            return;
        };
        let wake = state.plan(first);
        drop(state);
        if wake {
            shared.wake.notify_one();
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn remove(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            if let Some(due) = entry.due {
                self.due.remove(&(due, id));
            }
            self.deadlines.remove(&(entry.deadline, id));
        }
    }

    fn refresh_deadline(&mut self, id: u64) {
        if let Some(entry) = self.entries.get_mut(&id) {
            let deadline = entry.clock.deadline();
            let old = std::mem::replace(&mut entry.deadline, deadline);
            self.deadlines.remove(&(old, id));
            self.deadlines.insert((deadline, id));
        }
    }

    /// Re-reads the hold's deadline, and unless a renewal is in flight plans its next one
    /// from `now`. Returns the earliest instant the task must now wake for this hold.
    fn replan(&mut self, id: u64, now: Instant) -> Option<Instant> {
        let entry = self.entries.get_mut(&id)?;
        let deadline = entry.clock.deadline();
        let old_deadline = std::mem::replace(&mut entry.deadline, deadline);
        let old_due = entry.due.take();
        if entry.renew && !entry.in_flight {
            let ttl = entry.clock.ttl();
            let pause = if entry.retry_soon {
                retry_pause(ttl)
            } else {
                ttl / 3
            };
            // A lease shorter than its TTL (one that started short) still gets its renewal
            // and retries before it runs out, as in the watchdog.
            let half_left = (deadline.saturating_duration_since(now) / 2).max(retry_floor());
            entry.due = Some(saturating_add(now, pause.min(half_left)).min(deadline));
        } else {
            entry.due = None;
        }
        let due = entry.due;
        self.deadlines.remove(&(old_deadline, id));
        self.deadlines.insert((deadline, id));
        if let Some(d) = old_due {
            self.due.remove(&(d, id));
        }
        if let Some(d) = due {
            self.due.insert((d, id));
        }
        Some(due.map_or(deadline, |d| d.min(deadline)))
    }

    /// Declares lost every hold whose deadline has passed, drops ended holds, and takes the
    /// renewals due by `now` (plus a tenth of the TTL, to coalesce). Returns the losses (to
    /// signal outside the lock) and the batches.
    fn tick(&mut self, now: Instant) -> (Vec<HoldStatus>, Vec<Batch>) {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(entry) = self.entries.get(&id) else {
                self.deadlines.pop_first();
                continue;
            };
            if now >= entry.clock.deadline() {
                if entry.status.is_held() {
                    expired.push(entry.status.clone());
                }
                self.remove(id);
            } else {
                // Moved later, and the re-plan that says so is on its way: refresh the key.
                self.refresh_deadline(id);
            }
        }
        let mut by_ttl: HashMap<Duration, Vec<Item>> = HashMap::new();
        while let Some(&(due, id)) = self.due.first() {
            let Some(entry) = self.entries.get_mut(&id) else {
                self.due.pop_first();
                continue;
            };
            let ttl = entry.clock.ttl();
            // A retry is not coalesced early: its pause is the coalescing window, so it would
            // be sent again at once, in a tight loop against a server answering errors.
            let window = if entry.retry_soon || entry.short_first {
                Duration::ZERO
            } else {
                ttl / 10
            };
            if due > saturating_add(now, window) {
                break;
            }
            self.due.pop_first();
            entry.due = None;
            entry.short_first = false;
            if !entry.status.is_held() {
                self.remove(id);
                continue;
            }
            entry.in_flight = true;
            by_ttl.entry(ttl).or_default().push(Item {
                id,
                hold: entry.hold.clone(),
                status: entry.status.clone(),
                clock: entry.clock.clone(),
            });
        }
        let mut batches = Vec::new();
        for (ttl, items) in by_ttl {
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                batches.push(Batch {
                    ttl,
                    items: items.by_ref().take(MAX_BATCH).collect(),
                });
            }
        }
        (expired, batches)
    }

    /// A hold needs the task awake by `first`: `true` if the task must be woken to plan
    /// for it, its planned wake-up being later or none.
    fn plan(&mut self, first: Instant) -> bool {
        let wake = self.planned.is_none_or(|p| first < p);
        if wake {
            // The task plans for this hold, or keeps this time if the hold is gone by then
            // (see `run`), so holds due later than this one need not wake it again.
            self.planned = Some(first);
        }
        wake
    }

    fn next_wake(&self) -> Option<Instant> {
        let due = self.due.first().map(|&(d, _)| d);
        let deadline = self.deadlines.first().map(|&(d, _)| d);
        match (due, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

struct Item {
    id: u64,
    hold: Arc<dyn Hold>,
    status: HoldStatus,
    clock: Arc<LeaseClock>,
}

struct Batch {
    ttl: Duration,
    items: Vec<Item>,
}

/// Marks the group's task as gone when the runtime drops it (run or not), so the next hold
/// starts another; renewals it had in flight are due again at once, for that task to send
/// (their replies will never come).
struct Running {
    group: Weak<Shared>,
    generation: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(shared) = self.group.upgrade() else {
            return;
        };
        let mut state = shared.state();
        if state.generation != self.generation {
            return;
        }
        state.running = false;
        state.planned = None;
        let now = Instant::now();
        let cut_off: Vec<u64> = state
            .entries
            .iter()
            .filter(|(_, e)| e.in_flight)
            .map(|(&id, _)| id)
            .collect();
        for id in cut_off {
            if let Some(entry) = state.entries.get_mut(&id) {
                entry.in_flight = false;
                if let Some(old) = entry.due.replace(now) {
                    state.due.remove(&(old, id));
                }
                state.due.insert((now, id));
            }
        }
    }
}

async fn run(group: Weak<Shared>, wake: Arc<Notify>, running: Running) {
    let _running = running;
    let mut renewals = FuturesUnordered::new();
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        let Some(shared) = group.upgrade() else {
            return;
        };
        let (expired, batches, next) = {
            let mut state = shared.state();
            #[cfg(test)]
            {
                state.task_turns += 1;
            }
            let now = Instant::now();
            let (expired, batches) = state.tick(now);
            // With nothing to plan, a wake-up still to come is kept: in a loop of short holds
            // each hold is often gone before this task runs, and a timerless task would be
            // woken, from the acquiring thread, by every next hold. Kept, it wakes once at
            // that time and plans whatever holds are there then.
            let next = state.next_wake().or(state.planned.filter(|&p| p > now));
            state.planned = next;
            (expired, batches, next)
        };
        for status in expired {
            status.mark_lost_because(
                LossReason::LeaseExpired,
                LockError::lost("the lease ran out before it could be renewed"),
            );
        }
        for batch in batches {
            renewals.push(renew(shared.clone(), batch));
        }
        drop(shared);
        if let Some(at) = next {
            sleep.as_mut().reset(at);
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = &mut sleep, if next.is_some() => {}
            Some(()) = renewals.next(), if !renewals.is_empty() => {}
        }
    }
}

/// Outcome of one hold's renewal.
enum Outcome {
    Renewed,
    Failed(LockError),
    TimedOut,
    /// A user's extend had the turn (or changed the TTL): try again soon.
    Busy,
}

async fn renew(shared: Arc<Shared>, batch: Batch) {
    let Batch { ttl, items } = batch;
    // Take each hold's turn without waiting: a user's extend in progress renews it anyway.
    let mut turns = Vec::with_capacity(items.len());
    let mut sending = Vec::with_capacity(items.len());
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.clock.serial.try_lock() {
            Ok(turn) if item.clock.ttl() == ttl && item.status.is_held() => {
                turns.push(turn);
                sending.push(i);
                outcomes.push(None);
            }
            _ => outcomes.push(Some(Outcome::Busy)),
        }
    }
    let before: Vec<Instant> = items.iter().map(|i| i.clock.deadline()).collect();
    if !sending.is_empty() {
        let started = Instant::now();
        for &i in &sending {
            items[i].clock.extending(started, ttl);
        }
        let holds: Vec<Arc<dyn Hold>> = sending.iter().map(|&i| items[i].hold.clone()).collect();
        // Bounded by the latest deadline of the batch; earlier deadlines are the loss
        // check's business meanwhile.
        let budget = sending
            .iter()
            .map(|&i| before[i])
            .max()
            .unwrap_or(started)
            .saturating_duration_since(Instant::now());
        let results = tokio::time::timeout(budget, shared.batch.extend_many(&holds, ttl)).await;
        match results {
            Ok(results) => {
                let mut results = results.into_iter();
                for &i in &sending {
                    let r = results.next().unwrap_or_else(|| {
                        Err(LockError::backend(
                            "the batch renewal returned too few results",
                        ))
                    });
                    outcomes[i] = Some(match r {
                        Ok(()) => {
                            items[i].clock.renewed(started, ttl);
                            Outcome::Renewed
                        }
                        Err(e) => Outcome::Failed(e),
                    });
                }
            }
            Err(_elapsed) => {
                for &i in &sending {
                    outcomes[i] = Some(Outcome::TimedOut);
                }
            }
        }
    }
    drop(turns);
    let now = Instant::now();
    let mut ended = Vec::new();
    let mut retry = Vec::with_capacity(items.len());
    for ((item, outcome), before) in items.iter().zip(outcomes).zip(before) {
        let Some(outcome) = outcome else { continue };
        if !item.status.is_held() {
            ended.push(item.id);
            continue;
        }
        let slack = before.saturating_duration_since(now);
        let observer = item.status.observer();
        match outcome {
            Outcome::Renewed => {
                if let Some(o) = observer {
                    o.renewed(slack);
                }
                retry.push((item.id, Some(false)));
            }
            Outcome::Busy => retry.push((item.id, None)),
            Outcome::Failed(e) if e.kind() == ErrorKind::NotHeld => {
                observe::renewal_failed(observer, true, slack, &e);
                item.status.mark_lost_because(
                    LossReason::RenewalRejected,
                    LockError::lost(format!(
                        "renewal found the lock gone or owned by someone else: {e}"
                    )),
                );
                ended.push(item.id);
            }
            Outcome::Failed(e) => {
                observe::renewal_failed(observer, false, slack, &e);
                retry.push((item.id, Some(true)));
            }
            Outcome::TimedOut => {
                observe::renewal_failed(observer, false, slack, &"the renewal timed out");
                retry.push((item.id, Some(true)));
            }
        }
    }
    let mut state = shared.state();
    for id in ended {
        state.remove(id);
    }
    for (id, soon) in retry {
        if let Some(entry) = state.entries.get_mut(&id) {
            entry.in_flight = false;
            // Busy (`None`): come back soon without counting it as a failed renewal.
            let keep = entry.retry_soon;
            entry.retry_soon = soon.unwrap_or(true);
            state.replan(id, now);
            if let (None, Some(entry)) = (soon, state.entries.get_mut(&id)) {
                entry.retry_soon = keep;
            }
        }
    }
    // The task wakes when this future completes and plans its timer from the new state.
}

#[cfg(test)]
#[path = "renewal_tests.rs"]
mod tests;
