//! Where an uncontended ZooKeeper cycle spends its time: `zk_overhead URL MODE N [ROUNDS]` runs
//! N cycles of MODE on the CLI's runtime (2 workers, the loop in `block_on`) and prints
//! cycles/s and the p50, ROUNDS times. MODE is `distlock` (`try_acquire` + `release`) or a
//! raw request mix on one session:
//! - `raw`: create EPHEMERAL + delete (the bench's raw loop)
//! - `raw-list`: create EPHEMERAL_SEQUENTIAL with a `getChildren` (setting a children
//!   watch) pipelined behind, delete (whose event fires the watch): distlock's request mix
//! - `raw-list-exists`: the same plus an `exists` watch on the node, its reply not awaited
//!   before the delete (distlock's request mix before the children watch took over)
//! - `all`: each mode in turn, ROUNDS times (same-run comparison)
//!
//! For instruction counts run it under `valgrind --tool=callgrind` for two values of N and
//! divide the difference by the difference in N (see scripts/overhead.sh).

use std::time::{Duration, Instant};

use distlock_core::LockExt;
use distlock_zookeeper::ZkLock;
use zookeeper_client::{Acls, Client, CreateMode};

const MODES: [&str; 4] = ["raw", "raw-list", "raw-list-exists", "distlock"];

fn hosts(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or("").to_string()
}

struct Raw {
    client: Client,
    parent: String,
}

impl Raw {
    async fn new(url: &str, tag: &str) -> Raw {
        let client = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&hosts(url))
            .await
            .unwrap_or_else(fail);
        let parent = format!("/distlock-overhead-{}-{tag}", std::process::id());
        let mode = CreateMode::Persistent.with_acls(Acls::anyone_all());
        let _ = client.create(&parent, &[], &mode).await;
        Raw { client, parent }
    }

    async fn cycle(&self, mode: &str) {
        let c = &self.client;
        match mode {
            "raw" => {
                let path = format!("{}/n", self.parent);
                let m = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
                c.create(&path, &[], &m).await.unwrap_or_else(fail);
                c.delete(&path, None).await.unwrap_or_else(fail);
            }
            _ => {
                let prefix = format!("{}/_c_x-lock-", self.parent);
                let m = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
                let created = c.create(&prefix, &[], &m);
                let listed = c.list_and_watch_children(&self.parent);
                let (created, listed) = futures::join!(created, listed);
                let (_, seq) = created.unwrap_or_else(fail);
                let (_, children) = listed.unwrap_or_else(fail);
                let path = format!("{prefix}{seq}");
                let watch = if mode == "raw-list-exists" {
                    Some(c.check_and_watch_stat(&path))
                } else {
                    None
                };
                let deleted = c.delete(&path, None);
                if let Some(w) = watch {
                    let (w, d) = futures::join!(w, deleted);
                    d.unwrap_or_else(fail);
                    let (_, watcher) = w.unwrap_or_else(fail);
                    watcher.changed().await;
                } else {
                    deleted.await.unwrap_or_else(fail);
                }
                children.changed().await;
            }
        }
    }
}

fn fail<T>(e: impl std::fmt::Debug) -> T {
    eprintln!("zk_overhead: {e:?}");
    std::process::exit(1)
}

async fn run(url: &str, mode: &str, n: usize, lock: &ZkLock) -> (f64, Duration) {
    let raw = if mode == "distlock" {
        None
    } else {
        Some(Raw::new(url, mode).await)
    };
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        match &raw {
            Some(raw) => raw.cycle(mode).await,
            None => {
                let guard = lock.try_acquire("overhead").await;
                match guard {
                    Ok(Some(g)) => g.release().await.unwrap_or_else(fail),
                    other => fail(other),
                }
            }
        }
        samples.push(t.elapsed());
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    samples.sort_unstable();
    (rate, samples[n / 2])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| fail("usage: zk_overhead URL MODE N [ROUNDS]"));
    let mode = args.next().unwrap_or_else(|| "all".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(fail);
    runtime.block_on(async {
        let lock = ZkLock::from_url(&url).await.unwrap_or_else(fail);
        let modes: Vec<&str> = if mode == "all" {
            MODES.to_vec()
        } else {
            vec![mode.as_str()]
        };
        for round in 0..rounds {
            for m in &modes {
                let (rate, p50) = run(&url, m, n, &lock).await;
                println!(
                    "round {round} {m:16} {rate:7.0} cycles/s  p50 {:6.1} us",
                    p50.as_secs_f64() * 1e6
                );
            }
        }
    });
}
