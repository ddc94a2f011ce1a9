//! Fault tests beyond the conformance suite, on real throwaway servers.
//!
//! A holder process killed with SIGKILL is the suite's `killed_holder_frees_within_backstop`
//! case (tests/conformance.rs and tests/conformance_ensemble.rs run it: the harness sets
//! `child_env`, so the child holds the lock on the parent's server and is SIGKILLed there).

// Helpers outside #[test] fns fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::ZkHarness;
use distlock_core::{ErrorKind, LockExt, LockName};
use distlock_zookeeper::ZkLock;

fn unique(label: &str) -> String {
    format!("faults/{label}/{}", uuid_like())
}

fn uuid_like() -> String {
    distlock_core::backend::new_owner_token()[..12].to_string()
}

async fn children(lock: &ZkLock, name: &str) -> Vec<String> {
    let client = lock.zk_client().await.unwrap();
    let parent = lock.lock_path(&LockName::new(name).unwrap());
    match client.list_children(&parent).await {
        Ok(c) => c,
        Err(distlock_zookeeper::zookeeper_client::Error::NoNode) => Vec::new(),
        Err(e) => panic!("listing {parent}: {e}"),
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_session_fires_lost_and_frees_the_lock_for_another_client() {
    let harness = ZkHarness::single();
    let (a, b) = (
        harness.zk_lock().await.unwrap(),
        harness.zk_lock().await.unwrap(),
    );
    let name = unique("expiry");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let other = a
        .try_acquire(&unique("expiry-other"))
        .await
        .unwrap()
        .expect("free lock");
    let waiter = {
        let (b, name) = (b.clone(), name.clone());
        tokio::spawn(async move { b.acquire_timeout(&name, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());

    let expired = Instant::now();
    harness.expire_session_of(&g).await.unwrap();
    eprintln!("session expired after {:?}", expired.elapsed());
    let lost = tokio::time::timeout(harness.session_timeout(), g.lost())
        .await
        .expect("lost signal after the session expired");
    assert_eq!(lost.kind(), ErrorKind::Lost);
    eprintln!("lost after {:?}", expired.elapsed());
    // Every hold of the session is lost, not only the one whose node we looked at.
    let lost_too = tokio::time::timeout(Duration::from_secs(1), other.lost())
        .await
        .expect("the other hold of the expired session is lost too");
    assert_eq!(lost_too.kind(), ErrorKind::Lost);

    let next = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter got the lock")
        .unwrap()
        .unwrap();
    eprintln!("expired → lost and handed over in {:?}", expired.elapsed());
    assert!(next.fencing_token() > g.fencing_token());
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
    assert_eq!(
        other.release().await.unwrap_err().kind(),
        ErrorKind::NotHeld
    );

    // The client opened a new session for later acquires, and never took the lost hold
    // back behind the user's back.
    assert!(a.try_acquire(&name).await.unwrap().is_none());
    next.release().await.unwrap();
    let again = a
        .try_acquire(&name)
        .await
        .unwrap()
        .expect("free after release");
    again.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_acquires_leave_no_node_behind() {
    let harness = ZkHarness::single();
    let (a, b) = (
        harness.zk_lock().await.unwrap(),
        harness.zk_lock().await.unwrap(),
    );
    let name = unique("cancel");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    // Waiters cancelled while queued, at various points of their round trips.
    for i in 0..20u64 {
        let cut = Duration::from_micros(300 * i);
        let _ = tokio::time::timeout(cut, b.acquire(&name)).await;
    }
    // Limited waits and tries that give up delete their node before returning.
    assert!(b.try_acquire(&name).await.unwrap().is_none());
    assert_eq!(
        b.acquire_timeout(&name, Duration::from_millis(100))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Timeout
    );
    eventually(
        Duration::from_secs(3),
        "only the holder's node left",
        || async { children(&a, &name).await.len() == 1 },
    )
    .await;
    let left = children(&a, &name).await;
    assert!(left[0].contains(g.owner_token()), "{left:?}");
    g.release().await.unwrap();

    // Acquires of a free lock cancelled mid-flight.
    let free = unique("cancel-free");
    for i in 0..20u64 {
        let cut = Duration::from_micros(250 * i);
        let _ = tokio::time::timeout(cut, b.acquire(&free)).await;
    }
    eventually(Duration::from_secs(3), "no node left", || async {
        children(&a, &free).await.is_empty()
    })
    .await;
    // Holds were released: both locks are free.
    for n in [&name, &free] {
        let g = a.try_acquire(n).await.unwrap().expect("free lock");
        g.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_session_serves_many_locks_and_clones_share_it() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let clone = a.clone();
    let id = a.zk_client().await.unwrap().session_id();
    let mut guards = Vec::new();
    for i in 0..10 {
        let lock = if i % 2 == 0 { &a } else { &clone };
        guards.push(
            lock.try_acquire(&unique(&format!("many-{i}")))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(clone.zk_client().await.unwrap().session_id(), id);
    let tokens: Vec<u64> = guards.iter().map(|g| g.fencing_token().unwrap()).collect();
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    for g in guards {
        g.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hold_survives_killing_the_leader_and_waiters_are_served_in_order() {
    let harness = ZkHarness::ensemble();
    let ensemble = harness.ensemble_store().unwrap();
    let name = unique("leader");
    let holder = harness.zk_lock().await.unwrap();
    let g = holder.try_acquire(&name).await.unwrap().expect("free lock");
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..3 {
        let client = harness.zk_lock().await.unwrap();
        let (queued_name, order) = (name.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let g = client
                .acquire_timeout(&queued_name, Duration::from_secs(60))
                .await
                .unwrap();
            order.lock().unwrap().push((i, g.fencing_token().unwrap()));
            g.release().await.unwrap();
        }));
        // Queue them in a known order.
        eventually(Duration::from_secs(5), "waiter queued", || async {
            children(&holder, &name).await.len() == i + 2
        })
        .await;
    }

    let leader = ensemble.leader().expect("a leader");
    let killed = Instant::now();
    ensemble.kill(leader);
    let next =
        tokio::task::spawn_blocking(move || ensemble.wait_leader(Duration::from_secs(20)).unwrap())
            .await
            .unwrap();
    eprintln!(
        "new leader {next} (was {leader}) after {:?}",
        killed.elapsed()
    );
    // Clients on the dead node reconnect elsewhere; give them past the lost-signal grace.
    let grace = harness.session_timeout();
    tokio::time::sleep(grace).await;
    assert!(
        g.is_held(),
        "the hold was reported lost across a leader change"
    );
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "a waiter got a held lock"
    );
    let c = harness.zk_lock().await.unwrap();
    assert!(c.try_acquire(&name).await.unwrap().is_none());

    let first = g.fencing_token().unwrap();
    g.release().await.unwrap();
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("waiters drained")
            .unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "waiters served out of order: {order:?}"
    );
    let mut last = first;
    for (_, t) in &order {
        assert!(
            *t > last,
            "fencing tokens not increasing: {first} then {order:?}"
        );
        last = *t;
    }
    let g = c
        .try_acquire(&name)
        .await
        .unwrap()
        .expect("free after the queue drained");
    g.release().await.unwrap();
    let restart = tokio::task::spawn_blocking(move || ensemble.restart(leader));
    restart.await.unwrap().unwrap();
}

/// A waiter whose node was deleted behind its back (open ACL) must not mistake another
/// contender's node for its own when the parent container was recycled and the sequence
/// numbers restarted: it must never think it holds the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_whose_node_vanished_never_claims_a_reused_sequence_number() {
    use distlock_zookeeper::zookeeper_client::{CreateMode, MultiWriteResult};

    let harness = ZkHarness::single();
    let (a, w) = (
        harness.zk_lock().await.unwrap(),
        harness.zk_lock().await.unwrap(),
    );
    let name = unique("reused-seq");
    let parent = a.lock_path(&LockName::new(&*name).unwrap());
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let waiter = {
        let (w, name) = (w.clone(), name.clone());
        tokio::spawn(async move { w.acquire_timeout(&name, Duration::from_secs(10)).await })
    };
    eventually(Duration::from_secs(5), "the waiter queued", || async {
        children(&a, &name).await.len() == 2
    })
    .await;
    let mut queue = children(&a, &name).await;
    queue.sort_by_key(|c| c.rsplit('-').next().unwrap().to_string());
    let (holder_node, waiter_node) = (queue[0].clone(), queue[1].clone());
    assert!(holder_node.contains(g.owner_token()), "{queue:?}");
    let waiter_seq = waiter_node.rsplit('-').next().unwrap().to_string();

    // Someone deletes the waiter's node (it watches only its predecessor, so it does not
    // notice), then in one transaction the holder's node goes, the empty container is
    // recycled (as the server's container manager does) and a new contender gets the
    // waiter's old sequence number.
    let admin = harness.admin().await;
    admin
        .delete(&format!("{parent}/{waiter_node}"), None)
        .await
        .unwrap();
    let intruder = format!(
        "{parent}/_c_{}-lock-",
        distlock_core::backend::new_owner_token()
    );
    let seq_mode = CreateMode::EphemeralSequential
        .with_acls(distlock_zookeeper::zookeeper_client::Acls::anyone_all());
    let container =
        CreateMode::Container.with_acls(distlock_zookeeper::zookeeper_client::Acls::anyone_all());
    let mut multi = admin.new_multi_writer();
    multi
        .add_delete(&format!("{parent}/{holder_node}"), None)
        .unwrap();
    multi.add_delete(&parent, None).unwrap();
    multi.add_create(&parent, &[], &container).unwrap();
    let mut created = Vec::new();
    let seq: usize = waiter_seq.parse().unwrap();
    for _ in 0..=seq {
        multi.add_create(&intruder, &[], &seq_mode).unwrap();
    }
    let results = multi.commit().await.unwrap();
    for r in results {
        if let MultiWriteResult::Create { path, .. } = r {
            if path.starts_with(&intruder) {
                created.push(path);
            }
        }
    }
    // Keep only the node with the waiter's old sequence number.
    for path in &created[..created.len() - 1] {
        admin.delete(path, None).await.unwrap();
    }
    let reused = created.last().unwrap().clone();
    assert!(reused.ends_with(&waiter_seq), "{reused} vs {waiter_seq}");

    let outcome = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the waiter finished")
        .unwrap();
    match outcome {
        Ok(got) => panic!(
            "the waiter whose node was deleted believes it holds the lock (token {:?}) \
             while {reused} is first in line",
            got.fencing_token()
        ),
        Err(e) => eprintln!("the waiter gave up: {e}"),
    }
    // The holder's node was deleted too: that is a loss.
    let lost = tokio::time::timeout(Duration::from_secs(5), g.lost())
        .await
        .expect("the holder is told its node was deleted");
    assert_eq!(lost.kind(), ErrorKind::Lost);
    drop(admin);
}

/// The server deletes an empty container parent at any moment, also between our creating it
/// and creating the contender node in it: acquires retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parents_deleted_under_our_feet_are_recreated() {
    let harness = ZkHarness::single();
    let root = format!("/recycled-{}", uuid_like());
    let url = format!("{}?root={root}", harness.url());
    let config = distlock_zookeeper::ZkConfig::from_url(&url)
        .unwrap()
        .with_session_timeout(harness.session_timeout());
    let lock = ZkLock::connect(config).await.unwrap();
    let name = "recycled";
    let parent = lock.lock_path(&LockName::new(name).unwrap());
    let admin = harness.admin().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Deletes the parent whenever it is empty, every millisecond or so (the server's
    // container manager does it once a minute). Every acquire then finds no parent, and
    // now and then the parent goes between its creation and the contender's.
    let recycler = {
        let (stop, parent) = (stop.clone(), parent.clone());
        tokio::spawn(async move {
            let mut deleted = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if admin.delete(&parent, None).await.is_ok() {
                    deleted += 1;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            deleted
        })
    };
    let start = Instant::now();
    let mut tokens = Vec::new();
    for _ in 0..100 {
        let g = tokio::time::timeout(Duration::from_secs(10), lock.try_acquire(name))
            .await
            .expect("the acquire finished")
            .expect("no error while the parent keeps disappearing")
            .expect("the lock is free");
        tokens.push(g.fencing_token().unwrap());
        g.release().await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let deleted = recycler.await.unwrap();
    eprintln!(
        "100 acquires in {:?} while the parent was deleted {deleted} times",
        start.elapsed()
    );
    assert!(deleted >= 3, "the race was hardly exercised ({deleted})");
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}

/// No herd: each waiter watches only its immediate predecessor, nobody watches the parent's
/// children, so a release wakes exactly one waiter (asserted on the server's own watch table).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_waiter_watches_only_its_predecessor() {
    let harness = ZkHarness::single();
    let holder = harness.zk_lock().await.unwrap();
    let name = unique("herd");
    let parent = holder.lock_path(&LockName::new(&*name).unwrap());
    let g = holder.try_acquire(&name).await.unwrap().expect("free lock");
    let mut waiters = Vec::new();
    for i in 0..4 {
        let client = harness.zk_lock().await.unwrap();
        let queued = name.clone();
        waiters.push(tokio::spawn(async move {
            let g = client
                .acquire_timeout(&queued, Duration::from_secs(30))
                .await
                .unwrap();
            g.release().await.unwrap();
        }));
        eventually(Duration::from_secs(5), "waiter queued", || async {
            children(&holder, &name).await.len() == i + 2
        })
        .await;
    }
    let mut queue = children(&holder, &name).await;
    queue.sort_by_key(|c| c.rsplit('-').next().unwrap().to_string());
    // Every node but the last is watched by its successor, and every node by its owner
    // (to notice a foreign delete; a waiter's watch on its own node is what lets it take
    // the lock on its predecessor's deletion without listing again).
    let port = common::server().port();
    let start = Instant::now();
    let table = loop {
        let table = tokio::task::spawn_blocking(move || {
            distlock_testkit::zookeeper::four_letter(port, "wchp").unwrap()
        })
        .await
        .unwrap();
        if watch_pattern(&table, &parent, &queue).is_ok() {
            break table;
        }
        if start.elapsed() > Duration::from_secs(5) {
            let wrong = watch_pattern(&table, &parent, &queue).unwrap_err();
            panic!("{wrong}; the server's watches by path:\n{table}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("{table}");
    g.release().await.unwrap();
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("waiters drained")
            .unwrap();
    }
}

/// `wchp` output: a path line, then one indented session id per watcher.
fn watchers_by_path(table: &str) -> std::collections::HashMap<String, Vec<String>> {
    let mut map = std::collections::HashMap::<String, Vec<String>>::new();
    let mut current = None;
    for line in table.lines() {
        if line.starts_with('/') {
            current = Some(line.trim().to_string());
            map.entry(line.trim().to_string()).or_default();
        } else if let (Some(path), false) = (&current, line.trim().is_empty()) {
            map.get_mut(path).unwrap().push(line.trim().to_string());
        }
    }
    map
}

/// Checks that nobody watches the parent, every node but the last is watched twice (by its
/// successor and its owner), the last once (by its owner).
fn watch_pattern(table: &str, parent: &str, queue: &[String]) -> Result<(), String> {
    let watchers = watchers_by_path(table);
    if watchers.contains_key(parent) {
        return Err("someone watches the parent".into());
    }
    for (i, node) in queue.iter().enumerate() {
        let path = format!("{parent}/{node}");
        let n = watchers.get(&path).map_or(0, Vec::len);
        let expected = if i + 1 < queue.len() { 2 } else { 1 };
        if n != expected {
            return Err(format!("{path} is watched {n} times, not {expected}"));
        }
    }
    Ok(())
}

/// A waiter whose session expires while it waits loses its place (its node went with the
/// session): it must never come back believing it holds the lock while the holder still
/// does. It may queue again on a new session and get the lock after the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_whose_session_expires_never_thinks_it_holds_the_lock() {
    use distlock_zookeeper::zookeeper_client::Client;

    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let (w, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let c = harness.zk_lock().await.unwrap();
    let name = unique("waiter-expiry");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let waiter = {
        let (w, name) = (w.clone(), name.clone());
        tokio::spawn(async move { w.acquire_timeout(&name, Duration::from_secs(20)).await })
    };
    eventually(Duration::from_secs(5), "the waiter queued", || async {
        children(&a, &name).await.len() == 2
    })
    .await;
    let old = children(&a, &name).await;

    // Expire the waiter's session: cut it off, take the session over and close it.
    let client = w.zk_client().await.unwrap();
    let info = client.session().clone();
    drop(client);
    proxy.cut();
    let hijack = Client::connector()
        .with_session(info)
        .with_session_timeout(harness.session_timeout())
        .connect(harness.config().hosts())
        .await
        .unwrap();
    drop(hijack);
    eventually(Duration::from_secs(5), "the waiter's node went", || async {
        children(&a, &name).await.len() == 1
    })
    .await;
    proxy.restore();

    // The holder still holds; the waiter must not have come back with a guard.
    tokio::time::sleep(harness.session_timeout() / 2).await;
    assert!(g.is_held());
    if waiter.is_finished() {
        let e = waiter
            .await
            .unwrap()
            .expect_err("the waiter whose session expired returned a guard while the lock is held");
        assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
        g.release().await.unwrap();
        return;
    }
    assert!(c.try_acquire(&name).await.unwrap().is_none());
    // It queued again, with a new node, behind the holder.
    let now = children(&a, &name).await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(
        now.iter().filter(|n| !old.contains(n)).count(),
        1,
        "before {old:?}, after {now:?}"
    );
    let first = g.fencing_token();
    g.release().await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter was served")
        .unwrap()
        .expect("the re-queued waiter gets the lock after the release");
    assert!(next.fencing_token() > first);
    assert!(c.try_acquire(&name).await.unwrap().is_none());
    next.release().await.unwrap();
}

/// An acquire cancelled after its create reached the server but before the reply came back
/// (the connection went silent) leaves no node behind: the background clean-up finds the
/// node by owner token once the client has reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acquire_cancelled_while_its_reply_is_lost_leaves_no_node_behind() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let name = unique("cancel-lost-reply");
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let timeout = harness.session_timeout();
    let (w, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    proxy.mute_replies();
    let acquire = {
        let (w, name) = (w.clone(), name.clone());
        tokio::spawn(async move { w.acquire(&name).await })
    };
    eventually(
        Duration::from_secs(5),
        "the create reached the server",
        || async { children(&a, &name).await.len() == 2 },
    )
    .await;
    acquire.abort();
    assert!(acquire.await.unwrap_err().is_cancelled());
    eventually(
        timeout * 2,
        "the cancelled acquire's node was deleted",
        || async { children(&a, &name).await.len() == 1 },
    )
    .await;
    assert!(g.is_held());
    g.release().await.unwrap();
    let again = w
        .acquire_timeout(&name, timeout)
        .await
        .expect("the client works after reconnecting");
    again.release().await.unwrap();
}

/// The watch that notices a foreign delete of a held node is set by an `exists` sent just
/// before the acquire returns, its reply awaited in the background. When the connection
/// loses that reply (it goes silent and the client reconnects, the session surviving),
/// the hold must still be watched: a later foreign delete reads as a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_node_stays_watched_when_the_watch_reply_is_lost() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let name = unique("watch-reply-lost");
    let timeout = harness.session_timeout();
    let (w, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    let g = w.try_acquire(&name).await.unwrap().expect("free lock");
    // At once: the `exists` is on its way, its reply not back yet.
    proxy.mute_replies();
    // Once this answers, the client has reconnected on the same session.
    tokio::time::timeout(timeout * 2, g.extend(timeout))
        .await
        .expect("the client reconnects")
        .expect("the hold survives the reconnect");
    assert!(g.is_held());
    let nodes = children(&a, &name).await;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let path = format!(
        "{}/{}",
        a.lock_path(&LockName::new(&name).unwrap()),
        nodes[0]
    );
    a.zk_client()
        .await
        .unwrap()
        .delete(&path, None)
        .await
        .unwrap();
    let lost = tokio::time::timeout(timeout, g.lost())
        .await
        .expect("the foreign delete of the held node was noticed");
    assert_eq!(lost.kind(), ErrorKind::Lost);
}

/// A write to a held node (an operator's note, a foreign tool) fires its watch too; the
/// hold must go on watching, so that a delete after it still reads as a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_node_stays_watched_after_its_data_changes() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let w = harness.zk_lock().await.unwrap();
    let name = unique("watch-data-change");
    let timeout = harness.session_timeout();
    let g = w.try_acquire(&name).await.unwrap().expect("free lock");
    let nodes = children(&a, &name).await;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let path = format!(
        "{}/{}",
        a.lock_path(&LockName::new(&name).unwrap()),
        nodes[0]
    );
    // Answered after the hold's `exists` (sent before the acquire returned): the
    // server's session order, then a sync through the holder's session.
    g.extend(timeout).await.unwrap();
    let foreign = a.zk_client().await.unwrap();
    foreign.set_data(&path, b"note", None).await.unwrap();
    // The holder's session has seen the write (and its watch event) once this answers.
    g.extend(timeout).await.unwrap();
    assert!(g.is_held());
    foreign.delete(&path, None).await.unwrap();
    let lost = tokio::time::timeout(timeout, g.lost())
        .await
        .expect("the foreign delete after a write was noticed");
    assert_eq!(lost.kind(), ErrorKind::Lost);
}

/// Takes `name` once, so that its parent exists and the next acquire is the plain one:
/// create and listing in one round trip, the listing's children watch the hold's watch.
async fn warm(lock: &ZkLock, name: &str) {
    let g = lock.try_acquire(name).await.unwrap().expect("free lock");
    g.release().await.unwrap();
}

/// The held node's path, listed by `other`.
async fn held_path(other: &ZkLock, name: &str) -> String {
    let nodes = children(other, name).await;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    format!(
        "{}/{}",
        other.lock_path(&LockName::new(name).unwrap()),
        nodes[0]
    )
}

/// An uncontended hold is watched through the children watch its listing set: a foreign
/// delete reads as a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_uncontended_hold_notices_a_foreign_delete() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let w = harness.zk_lock().await.unwrap();
    let name = unique("watch-uncontended");
    let timeout = harness.session_timeout();
    warm(&w, &name).await;
    let g = w.try_acquire(&name).await.unwrap().expect("free lock");
    let path = held_path(&a, &name).await;
    a.zk_client()
        .await
        .unwrap()
        .delete(&path, None)
        .await
        .unwrap();
    let lost = tokio::time::timeout(timeout, g.lost())
        .await
        .expect("the foreign delete of the held node was noticed");
    assert_eq!(lost.kind(), ErrorKind::Lost);
}

/// When the hold's children watch fires because someone else came and went (a failed
/// try), an `exists` watch on the held node must take over: a later foreign delete still
/// reads as a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_node_stays_watched_after_another_contender_came_and_went() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let w = harness.zk_lock().await.unwrap();
    let name = unique("watch-after-contender");
    let timeout = harness.session_timeout();
    warm(&w, &name).await;
    let g = w.try_acquire(&name).await.unwrap().expect("free lock");
    assert!(a.try_acquire(&name).await.unwrap().is_none());
    // The holder's session has seen both events of the failed try once this answers.
    g.extend(timeout).await.unwrap();
    assert!(g.is_held());
    let path = held_path(&a, &name).await;
    a.zk_client()
        .await
        .unwrap()
        .delete(&path, None)
        .await
        .unwrap();
    let lost = tokio::time::timeout(timeout, g.lost())
        .await
        .expect("the foreign delete after another contender came and went was noticed");
    assert_eq!(lost.kind(), ErrorKind::Lost);
}

/// The children watch that guards an uncontended hold must survive a reconnect on the same
/// session (the client sets it again with the last zxid seen): a foreign delete after the
/// reconnect still reads as a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_uncontended_hold_stays_watched_across_a_reconnect() {
    let harness = ZkHarness::single();
    let a = harness.zk_lock().await.unwrap();
    let name = unique("watch-reconnect");
    let timeout = harness.session_timeout();
    let (w, proxy) = harness.zk_lock_with_proxy().await.unwrap();
    let proxy = proxy.unwrap();
    warm(&w, &name).await;
    let g = w.try_acquire(&name).await.unwrap().expect("free lock");
    proxy.mute_replies();
    // Once this answers, the client has reconnected on the same session.
    tokio::time::timeout(timeout * 2, g.extend(timeout))
        .await
        .expect("the client reconnects")
        .expect("the hold survives the reconnect");
    assert!(g.is_held());
    let path = held_path(&a, &name).await;
    a.zk_client()
        .await
        .unwrap()
        .delete(&path, None)
        .await
        .unwrap();
    let lost = tokio::time::timeout(timeout, g.lost())
        .await
        .expect("the foreign delete after the reconnect was noticed");
    assert_eq!(lost.kind(), ErrorKind::Lost);
}
