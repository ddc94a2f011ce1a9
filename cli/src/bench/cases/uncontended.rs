//! Uncontended: one client takes and frees one name in a loop, after a warm-up.

use std::time::{Duration, Instant};

use distlock::{LockError, Result};

use crate::bench::report::Row;
use crate::bench::server_stats::{per_cycle, snapshot};
use crate::bench::stats::Samples;
use crate::bench::subject::Subject;
use crate::bench::Ctx;

pub(crate) async fn run(ctx: &mut Ctx, subjects: &[&dyn Subject]) -> Result<()> {
    println!(
        "\nuncontended: try_acquire + release on one client, {} rounds after {} warm-up",
        ctx.plan.rounds, ctx.plan.warmup
    );
    for subject in subjects {
        ctx.step(&format!("uncontended {}", subject.label()));
        let name = ctx.name(&format!("uncontended-{}", subject.label()));
        let mut one = subject.contender(&name).await?;
        for _ in 0..ctx.plan.warmup {
            cycle(&mut *one).await?;
        }
        let before = snapshot(&ctx.target).await;
        let mut samples = Vec::with_capacity(ctx.plan.rounds);
        let started = Instant::now();
        for _ in 0..ctx.plan.rounds {
            samples.push(cycle(&mut *one).await?);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let after = snapshot(&ctx.target).await;
        let mut row = Row::new("uncontended", subject.label())
            .metric("cycles_per_s", ctx.plan.rounds as f64 / elapsed)
            .latencies("cycle", &Samples::new(samples));
        row.server = per_cycle(&before, &after, ctx.plan.rounds as u64);
        ctx.report.add(row);
    }
    ctx.report.ratio("uncontended", "cycles_per_s");
    Ok(())
}

async fn cycle(one: &mut dyn crate::bench::subject::Contender) -> Result<Duration> {
    let start = Instant::now();
    if !one.try_acquire().await? {
        return Err(LockError::backend(
            "the uncontended bench lock was held elsewhere",
        ));
    }
    one.release().await?;
    Ok(start.elapsed())
}
