//! Requests per lock cycle, counted by the server (`mntr` `zk_packets_received`), on a
//! server of this binary's own: the counter is server-wide.

// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use distlock_core::LockExt;
use distlock_testkit::zookeeper::{four_letter, ZkServer};
use distlock_zookeeper::{ZkConfig, ZkLock};

/// The requests the server received since `before` was read, without our `mntr` calls.
async fn requests_since(before: (u64, u64)) -> u64 {
    let now = mntr("zk_packets_received").await;
    now - before.0 - (MNTR_CALLS.load(Ordering::SeqCst) - before.1)
}

async fn start_count() -> (u64, u64) {
    let at = mntr("zk_packets_received").await;
    (at, MNTR_CALLS.load(Ordering::SeqCst))
}

/// Long enough that no ping falls in a measurement (a client pings every third of it when
/// idle); `SLACK` covers one anyway.
const SESSION: Duration = Duration::from_secs(30);
const SLACK: u64 = 2;

fn server() -> &'static ZkServer {
    static SERVER: std::sync::OnceLock<ZkServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| ZkServer::start().expect("start a throwaway ZooKeeper"))
}

/// The counter is server-wide: one measurement at a time.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Four-letter words sent so far: each counts as a packet received.
static MNTR_CALLS: AtomicU64 = AtomicU64::new(0);

async fn mntr(key: &str) -> u64 {
    MNTR_CALLS.fetch_add(1, Ordering::SeqCst);
    let port = server().port();
    let reply = tokio::task::spawn_blocking(move || four_letter(port, "mntr").unwrap())
        .await
        .unwrap();
    reply
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in mntr:\n{reply}"))
}

/// Whether `session` watches a node whose path starts with `prefix` (`wchp`: a path line,
/// then one indented session id per watcher).
async fn watched_by(prefix: &str, session: &str) -> bool {
    MNTR_CALLS.fetch_add(1, Ordering::SeqCst);
    let port = server().port();
    let table = tokio::task::spawn_blocking(move || four_letter(port, "wchp").unwrap())
        .await
        .unwrap();
    let mut current = false;
    for line in table.lines() {
        if line.starts_with('/') {
            current = line.trim().starts_with(prefix);
        } else if current && line.trim() == session {
            return true;
        }
    }
    false
}

async fn client() -> ZkLock {
    let config = ZkConfig::from_url(&server().url())
        .unwrap()
        .with_session_timeout(SESSION);
    ZkLock::connect(config).await.unwrap()
}

/// An uncontended acquire + release is create (with getChildren pipelined behind it, whose
/// children watch is the held node's watch) and delete: 3 requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontended_cycle_costs_at_most_three_requests() {
    let _one = MEASURING.lock().await;
    let lock = client().await;
    // The first cycle also creates the root and the lock's parent.
    lock.acquire_timeout("rt/uncontended", Duration::from_secs(5))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    const N: u64 = 200;
    let before = start_count().await;
    for _ in 0..N {
        let g = lock
            .acquire_timeout("rt/uncontended", Duration::from_secs(5))
            .await
            .unwrap();
        g.release().await.unwrap();
    }
    let requests = requests_since(before).await;
    eprintln!("{requests} requests for {N} cycles");
    assert!(
        requests <= 3 * N + SLACK,
        "{requests} requests for {N} uncontended cycles ({:.2} per cycle, want at most 3)",
        requests as f64 / N as f64
    );
}

/// A try that finds the lock held is create + getChildren and the delete of its node; the
/// listing's children watch fires on that delete, so dropping it costs no `RemoveWatches`.
/// The holder's children watch fires on the try's create: its `exists` on its own node
/// takes over, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_try_costs_three_requests() {
    let _one = MEASURING.lock().await;
    let (holder, other) = (client().await, client().await);
    let name = "rt/failed-try";
    let g = holder.try_acquire(name).await.unwrap().expect("free lock");
    // The first failed try fires the holder's children watch, whose `exists` follows.
    assert!(other.try_acquire(name).await.unwrap().is_none());
    // That `exists` is answered before this.
    g.extend(Duration::from_secs(5)).await.unwrap();
    const N: u64 = 100;
    let before = start_count().await;
    for _ in 0..N {
        assert!(other.try_acquire(name).await.unwrap().is_none());
    }
    let requests = requests_since(before).await;
    eprintln!("{requests} requests for {N} failed tries");
    assert!(
        requests <= 3 * N + SLACK,
        "{requests} requests for {N} failed tries ({:.2} per try, want at most 3)",
        requests as f64 / N as f64
    );
    assert!(g.is_held());
    g.release().await.unwrap();
}

/// A handoff costs the parked waiter no request once the predecessor's deletion arrives:
/// per round, the holder's create + getChildren, its `exists` (the waiter's create fired
/// its children watch) and delete, the waiter's create + getChildren, its two watches
/// (predecessor, own node) and delete: 9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_costs_the_waiter_no_relisting() {
    let _one = MEASURING.lock().await;
    let (holder, waiter) = (client().await, client().await);
    let name = "rt/handoff";
    holder
        .acquire_timeout(name, Duration::from_secs(5))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    let parent = holder.lock_path(&distlock_core::LockName::new(name).unwrap());
    let waiter_session = format!("{:#x}", waiter.zk_client().await.unwrap().session_id().0);
    const ROUNDS: u64 = 20;
    let before = start_count().await;
    for _ in 0..ROUNDS {
        let g = holder.try_acquire(name).await.unwrap().expect("free lock");
        let node = format!("{parent}/_c_{}-lock-", g.owner_token());
        let queued = {
            let waiter = waiter.clone();
            tokio::spawn(async move { waiter.acquire_timeout(name, Duration::from_secs(10)).await })
        };
        // Parked: the waiter's session watches the holder's node.
        let start = std::time::Instant::now();
        while !watched_by(&node, &waiter_session).await {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the waiter never parked"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        g.release().await.unwrap();
        let g = queued.await.unwrap().unwrap();
        g.release().await.unwrap();
    }
    let requests = requests_since(before).await;
    eprintln!("{requests} requests for {ROUNDS} handoff rounds");
    assert!(
        requests <= 9 * ROUNDS + SLACK,
        "{requests} requests for {ROUNDS} handoff rounds ({:.2} per round, want at most 9)",
        requests as f64 / ROUNDS as f64
    );
}

/// An uncontended hold runs no task of its own: its watch stays parked until something
/// happens, and the event its own release's `delete` fires does not wake it into one.
/// Counted as the runtime's live tasks (stable metrics): once with 100 holds at once, and
/// right after each acquire of 100 try + release cycles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontended_hold_spawns_no_task() {
    // Other tests count requests server-wide.
    let _one = MEASURING.lock().await;
    let lock = client().await;
    let names: Vec<String> = (0..100).map(|i| format!("rt/no-task/{i}")).collect();
    // A lock's first acquire creates its parent, so its listing (which failed) set no
    // children watch: that hold sends an `exists`, whose reply runs its watch. The server
    // removes empty parents (containers) every 60 s: a measurement that ran into that is
    // taken again, which cannot happen twice in a row.
    let mut measured = (0, 0, 0, 0);
    for _ in 0..2 {
        for name in names.iter().map(String::as_str).chain(["rt/no-task"]) {
            let g = lock.try_acquire(name).await.unwrap().expect("free lock");
            g.release().await.unwrap();
        }
        measured = live_tasks(&lock, &names).await;
        let (before, while_held, cycles_with_a_task, after) = measured;
        eprintln!(
            "live tasks: {before} before, {while_held} with {} holds, {after} after; \
             {cycles_with_a_task} of 100 cycles had more",
            names.len()
        );
        if (while_held, cycles_with_a_task, after) == (before, 0, before) {
            break;
        }
    }
    let (before, while_held, cycles_with_a_task, after) = measured;
    assert_eq!(
        while_held,
        before,
        "tasks alive while {} holds stood",
        names.len()
    );
    assert_eq!(cycles_with_a_task, 0, "cycles whose hold had a task");
    assert_eq!(after, before, "tasks left after the cycles");
}

/// Live tasks before, while `names` are held, cycles of 100 on one name that had more
/// than before right after the acquire, and after.
async fn live_tasks(lock: &ZkLock, names: &[String]) -> (usize, usize, usize, usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let mut guards = Vec::with_capacity(names.len());
    for name in names {
        guards.push(lock.try_acquire(name).await.unwrap().expect("free lock"));
    }
    let while_held = metrics.num_alive_tasks();
    for g in guards {
        g.release().await.unwrap();
    }
    let mut cycles_with_a_task = 0;
    for _ in 0..100 {
        let g = lock
            .try_acquire("rt/no-task")
            .await
            .unwrap()
            .expect("free lock");
        if metrics.num_alive_tasks() > before {
            cycles_with_a_task += 1;
        }
        g.release().await.unwrap();
    }
    (
        before,
        while_held,
        cycles_with_a_task,
        metrics.num_alive_tasks(),
    )
}
