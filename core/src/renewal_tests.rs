//! The scheduler against a test hold whose batch call is recorded, rejects chosen holds, or
//! hangs. Time is paused: timers fire in order as soon as every task is idle.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::backend::{GuardParts, Lease};
use crate::guard::LockGuard;
use crate::name::LockName;

#[derive(Debug, Default)]
struct Record {
    /// (when, ttl, hold ids) per `extend_many` call.
    calls: Mutex<Vec<(Instant, Duration, Vec<usize>)>>,
    /// Holds the store no longer has.
    rejected: Mutex<HashSet<usize>>,
    /// Every batch call hangs.
    stuck: AtomicBool,
    /// This many batch calls fail (a connection error) before they succeed again.
    failing: std::sync::atomic::AtomicUsize,
}

impl Record {
    fn calls(&self) -> Vec<(Instant, Duration, Vec<usize>)> {
        self.calls.lock().unwrap().clone()
    }

    fn renewals_of(&self, id: usize) -> usize {
        self.calls()
            .iter()
            .filter(|(_, _, ids)| ids.contains(&id))
            .count()
    }
}

#[derive(Debug)]
struct TestBatch(Arc<Record>);

#[async_trait]
impl BatchRenew for TestBatch {
    async fn extend_many(&self, holds: &[Arc<dyn Hold>], ttl: Duration) -> Vec<Result<()>> {
        let ids: Vec<usize> = holds
            .iter()
            .map(|h| {
                let any: &dyn std::any::Any = &**h;
                any.downcast_ref::<TestHold>().unwrap().id
            })
            .collect();
        self.0
            .calls
            .lock()
            .unwrap()
            .push((Instant::now(), ttl, ids.clone()));
        if self.0.stuck.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let failing = self.0.failing.load(Ordering::SeqCst);
        if failing > 0 {
            self.0.failing.store(failing - 1, Ordering::SeqCst);
            return ids
                .iter()
                .map(|_| Err(LockError::connection("dropped")))
                .collect();
        }
        let rejected = self.0.rejected.lock().unwrap().clone();
        ids.iter()
            .map(|id| {
                if rejected.contains(id) {
                    Err(LockError::not_held("gone"))
                } else {
                    Ok(())
                }
            })
            .collect()
    }
}

#[derive(Debug)]
struct TestHold {
    id: usize,
    group: RenewalGroup,
}

#[async_trait]
impl Hold for TestHold {
    async fn release(&self) -> Result<()> {
        Ok(())
    }

    fn renewal_group(&self) -> Option<RenewalGroup> {
        Some(self.group.clone())
    }
}

fn group() -> (RenewalGroup, Arc<Record>) {
    let record = Arc::new(Record::default());
    (RenewalGroup::new(TestBatch(record.clone())), record)
}

fn guard(group: &RenewalGroup, id: usize, ttl: Duration, renew: bool) -> LockGuard {
    LockGuard::new(GuardParts {
        name: LockName::new(format!("hold-{id}")).unwrap(),
        owner_token: format!("token-{id}"),
        fencing_token: None,
        hold: Arc::new(TestHold {
            id,
            group: group.clone(),
        }),
        status: HoldStatus::new(),
        lease: Some(Lease::new(ttl, Instant::now(), renew)),
    })
}

const TTL: Duration = Duration::from_secs(3);

#[tokio::test(start_paused = true)]
async fn holds_taken_close_together_are_renewed_in_one_call_per_round() {
    let (group, record) = group();
    // 500 holds taken over 50 ms: within a tenth of the TTL, so each round is one call.
    let mut guards = Vec::new();
    for id in 0..500 {
        if id % 10 == 0 {
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        guards.push(guard(&group, id, TTL, true));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(guards.iter().all(|g| g.is_held()));
    let calls = record.calls();
    let renewed: usize = calls.iter().map(|(_, _, ids)| ids.len()).sum();
    // Every TTL/3 (give or take the coalescing window) over 10 s: about 10 rounds of 500.
    assert!(renewed >= 500 * 9, "only {renewed} renewals");
    assert!(
        calls.len() <= 12,
        "{} calls for {renewed} renewals",
        calls.len()
    );
    assert!(calls.iter().all(|(_, ttl, _)| *ttl == TTL));
}

#[tokio::test(start_paused = true)]
async fn batches_are_capped() {
    let (group, record) = group();
    let guards: Vec<_> = (0..2500).map(|id| guard(&group, id, TTL, true)).collect();
    tokio::time::sleep(TTL / 2).await;
    let sizes: Vec<usize> = record.calls().iter().map(|(_, _, ids)| ids.len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 2500);
    assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
    drop(guards);
}

#[tokio::test(start_paused = true)]
async fn a_stuck_batch_cannot_delay_another_holds_loss() {
    let (group, record) = group();
    record.stuck.store(true, Ordering::SeqCst);
    // A's renewal (due at 1 s) hangs until A's deadline near 3 s.
    let a = guard(&group, 0, TTL, true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(record.calls().len(), 1);
    // B's renewal hangs too; B must be lost at its own deadline (about 2.09 s), not when
    // A's batch gives up.
    let b = guard(&group, 1, Duration::from_secs(1), true);
    let (a_until, b_until) = (a.valid_until().unwrap(), b.valid_until().unwrap());
    let (mut a_lost, mut b_lost) = (a.lost_signal(), b.lost_signal());
    let e = b_lost.wait().await.unwrap();
    assert_eq!(Instant::now(), b_until);
    assert!(e.message().contains("lease ran out"), "{e}");
    assert!(a.is_held());
    a_lost.wait().await.unwrap();
    assert_eq!(Instant::now(), a_until);
    assert!(group.is_empty(), "lost holds must leave the scheduler");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_hold_in_a_batch_loses_only_itself() {
    let (group, record) = group();
    record.rejected.lock().unwrap().insert(0);
    let guards: Vec<_> = (0..3).map(|id| guard(&group, id, TTL, true)).collect();
    let e = guards[0].lost_signal().wait().await.unwrap();
    assert!(e.message().contains("renewal found the lock gone"), "{e}");
    assert_eq!(record.calls().len(), 1, "one call renewed the three");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(guards[1].is_held() && guards[2].is_held());
    assert_eq!(record.renewals_of(0), 1, "a lost hold is not renewed again");
    assert!(record.renewals_of(1) >= 9);
}

#[tokio::test(start_paused = true)]
async fn an_ended_hold_leaves_the_scheduler_at_once() {
    let (group, record) = group();
    let kept = guard(&group, 0, TTL, true);
    let released = guard(&group, 1, TTL, true);
    let dropped = guard(&group, 2, TTL, true);
    assert_eq!(group.len(), 3);
    released.release().await.unwrap();
    drop(dropped);
    assert_eq!(group.len(), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(kept.is_held());
    assert_eq!(record.renewals_of(1) + record.renewals_of(2), 0);
    assert!(record.renewals_of(0) >= 9);
}

#[tokio::test(start_paused = true)]
async fn a_user_extend_is_serialised_and_replans() {
    let (group, record) = group();
    let g = guard(&group, 0, TTL, true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let extended_at = Instant::now();
    g.extend(Duration::from_secs(30)).await.unwrap();
    assert!(g.valid_until().unwrap() > extended_at + Duration::from_secs(29));
    tokio::time::sleep(Duration::from_secs(11)).await;
    let calls = record.calls();
    // The next renewal comes TTL/3 of the new TTL after the extend, with the new TTL.
    let (first, ttl, _) = calls.first().unwrap();
    assert_eq!(*ttl, Duration::from_secs(30));
    assert!(
        *first >= extended_at + Duration::from_secs(9),
        "renewed too early"
    );
    assert!(g.is_held());
}

#[tokio::test(start_paused = true)]
async fn a_lease_without_renewal_is_only_watched() {
    let (group, record) = group();
    let g = guard(&group, 0, TTL, false);
    let until = g.valid_until().unwrap();
    g.lost_signal().wait().await.unwrap();
    assert_eq!(Instant::now(), until);
    assert!(record.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn nothing_but_its_handles_keeps_a_group_alive() {
    let (group, _record) = group();
    let g = guard(&group, 0, TTL, true);
    let weak = Arc::downgrade(&group.shared);
    // Let the task run a round (a renewal) first.
    tokio::time::sleep(TTL).await;
    g.release().await.unwrap();
    drop(group);
    // Nothing else holds the scheduler: its task sees the group gone and returns.
    assert!(weak.upgrade().is_none());
}

/// A runtime dropped before the scheduler's task ever ran (a `block_on` that returned as
/// soon as its guard was made, then the runtime went away) must not leave the group believing
/// its task runs: a hold of the next runtime would be neither renewed nor declared lost.
#[test]
fn a_task_dropped_before_it_ran_is_started_again() {
    let (group, record) = group();
    let short = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    short.block_on(async { drop(guard(&group, 0, TTL, true)) });
    drop(short);
    let next = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    next.block_on(async {
        let g = guard(&group, 1, TTL, true);
        tokio::time::sleep(TTL * 2).await;
        assert!(record.renewals_of(1) >= 5, "the hold was never renewed");
        assert!(g.is_held());
    });
}

/// A task that dies (its runtime shut down) while a renewal is in flight: the hold whose
/// renewal was cut off is renewed by the next task, not left waiting for a reply that will
/// never come until its deadline declares it lost.
#[test]
fn a_renewal_cut_off_with_its_task_is_sent_again_by_the_next_task() {
    let (group, record) = group();
    record.stuck.store(true, Ordering::SeqCst);
    let short = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let a = short.block_on(async {
        let a = guard(&group, 0, TTL, true);
        tokio::time::sleep(TTL / 2).await;
        a
    });
    assert_eq!(record.renewals_of(0), 1, "the first renewal is in flight");
    drop(short);
    record.stuck.store(false, Ordering::SeqCst);
    let next = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    next.block_on(async {
        // A new hold starts the task again.
        let b = guard(&group, 1, TTL, true);
        tokio::time::sleep(TTL * 2).await;
        assert!(b.is_held());
        assert!(
            record.renewals_of(0) >= 2,
            "the cut-off renewal was never sent again"
        );
    });
    drop(a);
}

/// A failed renewal is retried TTL/10 later, not at once: the retry fell inside the tick's
/// coalescing window (also TTL/10), so every failure was retried immediately — a tight loop
/// against a server answering errors, until the lease ran out.
#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_retried_after_a_tenth_of_the_ttl_not_at_once() {
    let (group, record) = group();
    record.failing.store(50, Ordering::SeqCst);
    let ttl = Duration::from_secs(30);
    let start = Instant::now();
    let g = guard(&group, 0, ttl, true);
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let calls = record.calls();
    assert_eq!(
        calls.len(),
        1,
        "retried at {:?}",
        calls.iter().map(|c| c.0 - start).collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(record.calls().len(), 2);
    drop(g);
}

/// A lease that started short (a Redis grant: 3 s of a 30 s TTL) whose early renewal
/// fails once is retried before the short lease runs out, not TTL/10 = 3 s later (at its
/// deadline, where it would be lost untried).
#[tokio::test(start_paused = true)]
async fn a_short_first_lease_is_retried_before_it_runs_out() {
    let (group, record) = group();
    record.failing.store(1, Ordering::SeqCst);
    let g = LockGuard::new(GuardParts {
        name: LockName::new("short").unwrap(),
        owner_token: "t".into(),
        fencing_token: None,
        hold: Arc::new(TestHold {
            id: 0,
            group: group.clone(),
        }),
        status: HoldStatus::new(),
        lease: Some(
            Lease::new(Duration::from_secs(30), Instant::now(), true)
                .starting_short(Duration::from_secs(3)),
        ),
    });
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        g.is_held(),
        "lost after {} renewal(s)",
        record.calls().len()
    );
    assert!(record.calls().len() >= 2);
}

fn short_guard(group: &RenewalGroup, id: usize) -> LockGuard {
    LockGuard::new(GuardParts {
        name: LockName::new(format!("short-{id}")).unwrap(),
        owner_token: "t".into(),
        fencing_token: None,
        hold: Arc::new(TestHold {
            id,
            group: group.clone(),
        }),
        status: HoldStatus::new(),
        lease: Some(
            Lease::new(Duration::from_secs(30), Instant::now(), true)
                .starting_short(Duration::from_secs(3)),
        ),
    })
}

/// A lease that started short (a Redis grant: 3 s of a 30 s TTL) is renewed to its TTL a
/// tenth of the way in (0.3 s), not at once and not at a third.
#[tokio::test(start_paused = true)]
async fn a_short_first_lease_is_renewed_a_tenth_of_the_way_in() {
    let (group, record) = group();
    let start = Instant::now();
    let g = short_guard(&group, 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = record.calls();
    assert!(!calls.is_empty(), "the short lease was not renewed in 2 s");
    let took = calls[0].0 - start;
    assert!(
        took >= Duration::from_millis(250) && took <= Duration::from_millis(350),
        "first renewal after {took:?}"
    );
    assert_eq!(calls[0].1, Duration::from_secs(30));
    assert!(g.is_held());
    drop(g);
}

/// A hold handed over on a short lease and released before its first renewal was due (a
/// contended critical section, a few ms) costs no renewal.
#[tokio::test(start_paused = true)]
async fn a_short_first_lease_released_early_is_not_renewed() {
    let (group, record) = group();
    let g = short_guard(&group, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    g.release().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(record.calls().len(), 0, "{:?}", record.calls());
}

#[tokio::test(start_paused = true)]
async fn a_loop_of_short_holds_does_not_wake_the_task_per_hold() {
    let (group, record) = group();
    for id in 0..100 {
        let g = guard(&group, id, Duration::from_secs(30), true);
        g.release().await.unwrap();
        // Lets the task run between holds, as another worker thread would.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    let turns = group.shared.state().task_turns;
    // Two turns for the first hold (the task's first poll, and the notification that hold
    // sent before the task ran), none for the 99 after it: their renewals fall after the
    // wake-up the first one planned (each TTL/3 = 10 s out, over 100 ms of holds).
    assert!(turns <= 3, "the task ran {turns} times for 100 holds");
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(record.calls().is_empty(), "a released hold was renewed");
    let idle = group.shared.state().task_turns;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        group.shared.state().task_turns,
        idle,
        "an idle group keeps waking"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hold_after_a_kept_wake_up_is_still_renewed_in_time() {
    let (group, record) = group();
    // Plans a wake-up 1 s out, then leaves before the task sees it.
    guard(&group, 0, TTL, true).release().await.unwrap();
    tokio::task::yield_now().await;
    // A hold due later than that needs no wake-up of its own, and must still be renewed.
    tokio::time::advance(Duration::from_millis(500)).await;
    let g = guard(&group, 1, Duration::from_secs(30), true);
    let taken = Instant::now();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(g.is_held());
    let calls = record.calls();
    let (first, _, ids) = calls.first().expect("hold 1 was never renewed");
    assert_eq!(ids, &vec![1]);
    assert!(*first <= taken + Duration::from_secs(10) && *first >= taken + Duration::from_secs(9));
}
