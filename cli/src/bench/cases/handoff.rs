//! Handoff: a holder keeps the lock a random 20–220 ms so that the waiter (another client)
//! is parked; the figure is the time from the holder's `release()` call to the waiter's
//! acquire returning.

use std::time::{Duration, Instant};

use distlock::{LockError, Result};
use rand::Rng;

use crate::bench::report::Row;
use crate::bench::stats::Samples;
use crate::bench::subject::Subject;
use crate::bench::Ctx;

pub(crate) async fn run(ctx: &mut Ctx, subjects: &[&dyn Subject]) -> Result<()> {
    println!(
        "\nhandoff: release() to the parked waiter's acquire returning, {} rounds (holds of 20-220 ms)",
        ctx.plan.handoffs
    );
    for subject in subjects {
        ctx.step(&format!("handoff {}", subject.label()));
        let name = ctx.name(&format!("handoff-{}", subject.label()));
        let mut holder = subject.contender(&name).await?;
        let mut waiter = Some(subject.contender(&name).await?);
        let mut samples = Vec::with_capacity(ctx.plan.handoffs);
        for _ in 0..ctx.plan.handoffs {
            holder.acquire(Duration::from_secs(60)).await?;
            let mut parked = waiter
                .take()
                .ok_or_else(|| LockError::backend("the handoff waiter went missing"))?;
            let wait = tokio::spawn(async move {
                parked.acquire(Duration::from_secs(60)).await?;
                Ok::<_, LockError>((parked, Instant::now()))
            });
            // Time is the subject here: the hold must last long enough for the waiter to park.
            let hold = rand::rng().random_range(20..=220);
            tokio::time::sleep(Duration::from_millis(hold)).await;
            if wait.is_finished() {
                return Err(LockError::backend(format!(
                    "EXCLUSION BROKEN: the {} waiter acquired while the holder held",
                    subject.label()
                )));
            }
            let released = Instant::now();
            holder.release().await?;
            let (mut back, acquired) = wait
                .await
                .map_err(|e| LockError::backend(format!("the handoff waiter failed: {e}")))??;
            samples.push(acquired.saturating_duration_since(released));
            back.release().await?;
            waiter = Some(back);
        }
        let row = Row::new("handoff", subject.label()).latencies("handoff", &Samples::new(samples));
        ctx.report.add(row);
    }
    ctx.report.ratio("handoff", "handoff_p50_us");
    Ok(())
}
