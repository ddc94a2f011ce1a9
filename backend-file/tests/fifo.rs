//! The lock-file waiter queue: FIFO order, dead tickets skipped, cancelled waiters leave no
//! ticket, and a try never jumps the queue.
//!
//! The public API has no "now queued" signal; the tests watch the queue directory instead
//! (`<name>.lock.q/`, one ticket file per waiter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock_core::LockExt;
use distlock_file::FileLock;

/// Set in the child process of the killed-waiter test: the directory to queue in.
const CHILD_DIR: &str = "DISTLOCK_FIFO_CHILD_DIR";

fn scratch(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fifo-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn queue(dir: &Path) -> PathBuf {
    dir.join("q.lock.q")
}

fn tickets(dir: &Path) -> usize {
    match std::fs::read_dir(queue(dir)) {
        Ok(entries) => entries.count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("listing the queue: {e}"),
    }
}

/// Waits until the queue holds `n` tickets (the filesystem is the only signal there is).
async fn until_tickets(dir: &Path, n: usize) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while tickets(dir) != n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the queue never held {n} tickets (holds {})", tickets(dir)));
}

/// A ticket file as a waiter makes it: number `seq`, locked with `flock` when `live`.
fn ticket(dir: &Path, seq: u64, live: bool) -> File {
    std::fs::create_dir_all(queue(dir)).unwrap();
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(queue(dir).join(format!("{seq:020}")))
        .unwrap();
    if live {
        file.try_lock().unwrap();
    }
    file
}

fn bounded<F: Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(60), f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_acquire_in_the_order_they_queued() {
    bounded(async {
        const WAITERS: usize = 6;
        let dir = scratch("order");
        let holder = FileLock::new(&dir).unwrap();
        let g = holder.try_acquire("q").await.unwrap().expect("free");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..WAITERS {
            // Each its own client: no shared in-process wake-up decides the order.
            let client = FileLock::new(&dir).unwrap();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let g = client
                    .acquire_timeout("q", Duration::from_secs(30))
                    .await
                    .unwrap();
                order.lock().unwrap().push(i);
                g.release().await.unwrap();
            }));
            until_tickets(&dir, i + 1).await;
        }
        g.release().await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
        assert_eq!(tickets(&dir), 0);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_does_not_jump_the_queue() {
    bounded(async {
        let dir = scratch("try");
        let (a, b) = (FileLock::new(&dir).unwrap(), FileLock::new(&dir).unwrap());

        // A live ticket (its flock held) with the lock free: a try must not take it.
        let queued = ticket(&dir, 1, true);
        assert!(a.try_acquire("q").await.unwrap().is_none());
        drop(queued);
        // Its flock is free now: a dead ticket, which the next try removes and passes.
        a.try_acquire("q")
            .await
            .unwrap()
            .expect("a dead ticket blocked a try")
            .release()
            .await
            .unwrap();
        assert_eq!(tickets(&dir), 0);

        // A holder that releases and tries again at once is behind the queued waiter.
        let g = a.try_acquire("q").await.unwrap().expect("free");
        let waiter = tokio::spawn(async move {
            b.acquire_timeout("q", Duration::from_secs(30))
                .await
                .unwrap()
        });
        until_tickets(&dir, 1).await;
        g.release().await.unwrap();
        assert!(
            a.try_acquire("q").await.unwrap().is_none(),
            "the releasing holder re-took the lock ahead of a queued waiter"
        );
        waiter.await.unwrap().release().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_or_timed_out_waiter_leaves_no_ticket() {
    bounded(async {
        let dir = scratch("cancel");
        let (a, b) = (FileLock::new(&dir).unwrap(), FileLock::new(&dir).unwrap());
        let g = a.try_acquire("q").await.unwrap().expect("free");

        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire_timeout("q", Duration::from_secs(30)).await })
        };
        until_tickets(&dir, 1).await;
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(tickets(&dir), 0, "a cancelled waiter left its ticket");

        let timed_out = b.acquire_timeout("q", Duration::from_millis(200)).await;
        assert!(timed_out.is_err(), "acquired a held lock");
        assert_eq!(tickets(&dir), 0, "a timed-out waiter left its ticket");

        g.release().await.unwrap();
        // Nothing queued: a try gets the lock.
        b.try_acquire("q")
            .await
            .unwrap()
            .expect("free")
            .release()
            .await
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test took too long");
}

/// A waiter in a child process: queues on "q" in `CHILD_DIR` and waits until killed.
async fn child_waits(dir: &str) {
    let lock = FileLock::new(dir).unwrap();
    let _ = lock.acquire_timeout("q", Duration::from_secs(60)).await;
    panic!("the child waiter was meant to be killed while queued");
}

fn spawn_child_waiter(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_waiter_does_not_block_the_queue",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_waiter_does_not_block_the_queue() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        return child_waits(&dir).await;
    }
    bounded(async {
        let dir = scratch("killed");
        let (a, b) = (FileLock::new(&dir).unwrap(), FileLock::new(&dir).unwrap());
        let g = a.try_acquire("q").await.unwrap().expect("free");

        // First in the queue: a waiter process, then killed (its ticket's flock is freed,
        // the file stays until someone finds it).
        let mut child = spawn_child_waiter(&dir);
        until_tickets(&dir, 1).await;
        let waiter = tokio::spawn(async move {
            b.acquire_timeout("q", Duration::from_secs(30))
                .await
                .unwrap()
        });
        until_tickets(&dir, 2).await;
        child.kill().unwrap();
        child.wait().unwrap();

        g.release().await.unwrap();
        let g = waiter.await.unwrap();
        assert_eq!(tickets(&dir), 0);
        g.release().await.unwrap();

        // A dead ticket ahead of a queued waiter (made by hand, numbered below the
        // waiter's, as a killed process leaves it) is passed too.
        let g = a.try_acquire("q").await.unwrap().expect("free");
        let b = FileLock::new(&dir).unwrap();
        let waiter =
            tokio::spawn(async move { b.acquire_timeout("q", Duration::from_secs(30)).await });
        until_tickets(&dir, 1).await;
        drop(ticket(&dir, 0, false));
        // The queued waiter removes the dead ticket on its next check (at the latest its
        // backstop wake-up, 0.25 s). Released before that, the lock could be taken in the
        // same turn as a check that ran before the ticket was made, leaving it behind.
        until_tickets(&dir, 1).await;
        g.release().await.unwrap();
        waiter.await.unwrap().unwrap().release().await.unwrap();
        assert_eq!(tickets(&dir), 0);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test took too long");
}

/// A served (or given-up) ticket must stop counting as queued when it leaves, not when its
/// file is finally closed off the acquire's path: while the runtime's blocking pool is busy
/// (long `spawn_blocking` work, `tokio::fs`), the waiter behind a served one still gets the
/// lock once that one releases it.
#[test]
fn a_busy_blocking_pool_does_not_stall_the_queue() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = scratch("busy-pool");
        let lock = FileLock::new(&dir).unwrap();
        let holder = lock.acquire("q").await.unwrap();
        // The only blocking thread is taken until the end of the test.
        let (free_pool, parked) = std::sync::mpsc::channel::<()>();
        let pool = tokio::task::spawn_blocking(move || {
            let _ = parked.recv();
        });
        let first = {
            let lock = lock.clone();
            tokio::spawn(async move { lock.acquire("q").await })
        };
        until_tickets(&dir, 1).await;
        let second = {
            let lock = lock.clone();
            tokio::spawn(async move { lock.acquire_timeout("q", Duration::from_secs(5)).await })
        };
        until_tickets(&dir, 2).await;
        holder.release().await.unwrap();
        let first = first.await.unwrap().unwrap();
        first.release().await.unwrap();
        let second = second
            .await
            .unwrap()
            .expect("the second waiter gets the free lock while the blocking pool is busy");
        second.release().await.unwrap();
        free_pool.send(()).unwrap();
        pool.await.unwrap();
    });
}
