//! Growth in waiters: W clients wait for one name that a holder releases; each takes it
//! and frees it at once. Per step: the first handoff (release → first waiter in) and the
//! drain time per waiter (release → last waiter done, over W).

use std::time::{Duration, Instant};

use distlock::{LockError, Result};

use crate::bench::report::Row;
use crate::bench::server_stats::{per_cycle, snapshot};
use crate::bench::subject::Subject;
use crate::bench::target::Kind;
use crate::bench::Ctx;

pub(crate) async fn run(ctx: &mut Ctx, subjects: &[&dyn Subject]) -> Result<()> {
    let cap = match ctx.target.kind {
        // Every waiter holds a connection; the server allows 151 by default.
        Kind::MySqlGetLock | Kind::MySqlRowLock => 64,
        _ => usize::MAX,
    };
    println!("\nwaiters on one name: release to the first waiter in, and drain time per waiter");
    if ctx.plan.waiters.iter().any(|&w| w > cap) {
        ctx.report.note(format!(
            "waiters stop at {cap} on {} (a connection per waiter)",
            ctx.target.kind.label()
        ));
    }
    let steps: Vec<usize> = ctx
        .plan
        .waiters
        .iter()
        .copied()
        .filter(|&w| w <= cap)
        .collect();
    for subject in subjects {
        for &count in &steps {
            ctx.step(&format!("waiters {} {count}", subject.label()));
            let name = ctx.name(&format!("waiters-{}-{count}", subject.label()));
            let mut holder = subject.contender(&name).await?;
            let mut waiters = Vec::with_capacity(count);
            for _ in 0..count {
                waiters.push(subject.contender(&name).await?);
            }
            holder.acquire(Duration::from_secs(60)).await?;
            let tasks: Vec<_> = waiters
                .into_iter()
                .map(|mut one| {
                    tokio::spawn(async move {
                        one.acquire(Duration::from_secs(120)).await?;
                        let got = Instant::now();
                        one.release().await?;
                        Ok::<_, LockError>(got)
                    })
                })
                .collect();
            // Time is the subject: every waiter must be parked before the release; there
            // is no signal for "parked on the server".
            tokio::time::sleep(Duration::from_millis(100 + 2 * count as u64)).await;
            let before = snapshot(&ctx.target).await;
            let released = Instant::now();
            holder.release().await?;
            let mut first = None::<Duration>;
            let mut last = Duration::ZERO;
            for task in tasks {
                let got = task
                    .await
                    .map_err(|e| LockError::backend(format!("a waiter failed: {e}")))??;
                let after = got.saturating_duration_since(released);
                first = Some(first.map_or(after, |f| f.min(after)));
                last = last.max(after);
            }
            let drained = released.elapsed().max(last);
            let after = snapshot(&ctx.target).await;
            let mut row = Row::new("waiters", subject.label());
            row.step = Some(count as u64);
            let mut row = row
                .metric(
                    "first_handoff_us",
                    first.unwrap_or_default().as_secs_f64() * 1e6,
                )
                .metric(
                    "drain_per_waiter_us",
                    drained.as_secs_f64() * 1e6 / count as f64,
                );
            row.server = per_cycle(&before, &after, count as u64);
            ctx.report.add(row);
        }
    }
    Ok(())
}
