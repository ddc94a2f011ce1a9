//! Contended: N clients (their own connections) take one name in a loop and, inside the
//! critical section, read a counter in the store and write it back incremented. Throughput,
//! fairness (the least over the most acquisitions of a client), and the exclusion check
//! (the counter ends at the number of acquisitions only if no two holds overlapped).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use distlock::{LockError, Result};

use crate::bench::counter;
use crate::bench::report::Row;
use crate::bench::server_stats::{per_cycle, snapshot};
use crate::bench::stats::Samples;
use crate::bench::subject::Subject;
use crate::bench::Ctx;

pub(crate) async fn run(ctx: &mut Ctx, subjects: &[&dyn Subject]) -> Result<()> {
    let clients = ctx.plan.clients;
    println!(
        "\ncontended: {clients} clients for {:.1} s, each a read-modify-write of a counter in the store inside the lock",
        ctx.plan.contended.as_secs_f64()
    );
    for subject in subjects {
        ctx.step(&format!("contended {}", subject.label()));
        let name = ctx.name(&format!("contended-{}", subject.label()));
        let counter_id = format!("contended-{}", subject.label());
        let shared = Arc::new(AtomicU64::new(0));
        let mut check = counter::open(&ctx.target, &counter_id, &shared).await?;
        check.set(0).await?;
        if !ctx.counter_shown {
            println!("  (the counter: {})", check.describe());
            ctx.counter_shown = true;
        }
        let mut tasks = Vec::with_capacity(clients);
        let mut parts = Vec::with_capacity(clients);
        for _ in 0..clients {
            parts.push((
                subject.contender(&name).await?,
                counter::open(&ctx.target, &counter_id, &shared).await?,
            ));
        }
        let before = snapshot(&ctx.target).await;
        let started = Instant::now();
        let until = started + ctx.plan.contended;
        for (mut one, mut count) in parts {
            tasks.push(tokio::spawn(async move {
                let mut waits = Vec::new();
                while Instant::now() < until {
                    let start = Instant::now();
                    one.acquire(Duration::from_secs(60)).await?;
                    waits.push(start.elapsed());
                    let value = count.get().await?;
                    count.set(value + 1).await?;
                    one.release().await?;
                }
                Ok::<_, LockError>(waits)
            }));
        }
        let mut per_client = Vec::with_capacity(clients);
        let mut waits = Vec::new();
        for task in tasks {
            let mine = task
                .await
                .map_err(|e| LockError::backend(format!("a bench client failed: {e}")))??;
            per_client.push(mine.len() as u64);
            waits.extend(mine);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let after = snapshot(&ctx.target).await;
        let total: u64 = per_client.iter().sum();
        let counted = check.get().await?;
        check.remove().await?;
        let mut row = Row::new("contended", subject.label())
            .contention(&per_client, counted, elapsed)
            .latencies("wait", &Samples::new(waits));
        row.server = per_cycle(&before, &after, total);
        ctx.report.add(row);
        if counted != total {
            ctx.report.note(format!(
                "EXCLUSION BROKEN: {} made {total} acquisitions but the counter says {counted}",
                subject.label()
            ));
            ctx.broken = true;
        }
    }
    ctx.report.ratio("contended", "acq_per_s");
    Ok(())
}
