//! Growth in held locks: one client holds more and more names at once (1 → 100,000). Per
//! step: the acquire latency of the step's new holds, resident memory per hold (RSS delta
//! over the holds), and, over a window longer than the lease, the server operations per
//! second the holds cost (renewals where holds are leased) and how many holds were lost.

use std::time::{Duration, Instant};

use distlock::{AcquireOptions, DistributedLock, LockError, LockExt, LockGuard, Result};
use futures::{StreamExt, TryStreamExt};

use crate::bench::report::Row;
use crate::bench::server_stats::{per_cycle, snapshot};
use crate::bench::stats::Samples;
use crate::bench::target::Kind;
use crate::bench::Ctx;

/// The lease of the held locks where holds are leased: renewal must keep up with it.
const TTL: Duration = Duration::from_secs(3);
/// Acquires in flight at once while growing.
const PARALLEL: usize = 64;

pub(crate) async fn run(ctx: &mut Ctx) -> Result<()> {
    let locks = distlock::connect(&ctx.target.lock_url).await?;
    let leased = locks.capabilities().leases;
    let cap = cap(ctx.target.kind);
    let steps: Vec<usize> = ctx
        .plan
        .holds
        .iter()
        .copied()
        .filter(|&n| n <= cap)
        .collect();
    let window = if leased {
        TTL + TTL / 6
    } else {
        Duration::from_secs(1)
    };
    println!(
        "\nheld locks on one client{}: acquire latency, memory per hold, server ops/s over {:.1} s, holds lost",
        if leased { " (TTL 3 s, renewed)" } else { "" },
        window.as_secs_f64()
    );
    if ctx.plan.holds.iter().any(|&n| n > cap) {
        let why = match ctx.target.kind {
            Kind::MySqlGetLock | Kind::MySqlRowLock => "each hold pins a connection",
            Kind::ZooKeeper => "each hold is a node on the test server's small heap",
            _ => "each hold keeps a file descriptor open",
        };
        ctx.report.note(format!(
            "held locks stop at {cap} on {} ({why})",
            ctx.target.kind.label()
        ));
    }
    let options = if leased {
        AcquireOptions::try_once().with_ttl(TTL)
    } else {
        AcquireOptions::try_once()
    };
    let base_rss = rss_bytes();
    let mut guards: Vec<LockGuard> = Vec::new();
    for step in steps {
        ctx.step(&format!("held locks {step}"));
        let run = ctx.target.run.clone();
        let names: Vec<String> = (guards.len()..step)
            .map(|i| format!("distlock-bench/{run}/held-{i}"))
            .collect();
        ctx.names.extend(names.iter().cloned());
        let new = grow(&*locks, names, &options).await?;
        let latencies: Vec<Duration> = new.iter().map(|(_, d)| *d).collect();
        guards.extend(new.into_iter().map(|(g, _)| g));
        let rss = rss_bytes().saturating_sub(base_rss);
        let before = snapshot(&ctx.target).await;
        let started = Instant::now();
        tokio::time::sleep(window).await;
        let after = snapshot(&ctx.target).await;
        let seconds = started.elapsed().as_secs_f64();
        let lost = guards.iter().filter(|g| !g.is_held()).count();
        let ops: f64 = per_cycle(&before, &after, 1).values().sum::<f64>() / seconds;
        let mut row = Row::new("holds", "distlock");
        row.step = Some(step as u64);
        let mut row = row
            .latencies("acquire", &Samples::new(latencies))
            .metric("rss_per_hold_bytes", rss as f64 / step as f64);
        if !after.is_empty() {
            row = row.metric("server_ops_per_s", ops);
        }
        let mut row = row.metric("lost", lost as f64);
        row.server = per_cycle(&before, &after, 1)
            .into_iter()
            .map(|(k, v)| (k, v / seconds))
            .collect();
        ctx.report.add(row);
    }
    futures::stream::iter(guards)
        .map(|g| async move {
            // A hold lost in the window fails its release; the row already counted it.
            let _ = g.release().await;
            Ok::<_, LockError>(())
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Takes every name, `PARALLEL` at a time; each with its acquire latency.
async fn grow(
    locks: &dyn DistributedLock,
    names: Vec<String>,
    options: &AcquireOptions,
) -> Result<Vec<(LockGuard, Duration)>> {
    futures::stream::iter(names)
        .map(|name| async move {
            let start = Instant::now();
            let guard = locks
                .acquire_opts(&name, options)
                .await?
                .ok_or_else(|| LockError::backend("a fresh bench name was held elsewhere"))?;
            Ok::<_, LockError>((guard, start.elapsed()))
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await
}

/// How many holds one client can keep on this store: MySQL pins a connection per hold,
/// lock files an open file, ZooKeeper's small test JVM a node per hold.
fn cap(kind: Kind) -> usize {
    match kind {
        Kind::MySqlGetLock | Kind::MySqlRowLock => 100,
        Kind::ZooKeeper => 10_000,
        Kind::File => {
            let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .current
                .unwrap_or(1024);
            usize::try_from(limit.saturating_sub(256))
                .unwrap_or(usize::MAX)
                .max(16)
        }
        Kind::Redis | Kind::Memory => usize::MAX,
    }
}

/// This process's resident memory, from /proc (0 where there is none).
fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64
}
