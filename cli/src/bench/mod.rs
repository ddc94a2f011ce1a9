//! `distlock bench`: a backend against its raw store primitive, in the same run.
//!
//! The machine is shared and noisy, so only figures from one run are compared: the
//! uncontended acquire+release latency of distlock and of the raw primitive (as a ratio),
//! and the contended throughput of distlock with several clients.

mod raw;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use distlock::{LockError, LockExt};
use tokio::sync::Mutex;

use stats::{ms, Samples};

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Lock URL of the backend to measure.
    #[arg(long, env = "DISTLOCK_URL", hide_env_values = true, default_value_t = crate::default_url())]
    url: String,
    /// Uncontended acquire+release rounds, for distlock and for the raw primitive each.
    #[arg(long, default_value_t = 500)]
    iterations: usize,
    /// Clients (each with its own connections) contending for one lock.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long the contended phase runs, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

/// Runs the benchmark and prints its report.
pub(crate) async fn bench(args: BenchArgs) -> distlock::Result<ExitCode> {
    println!(
        "distlock bench on {}: {} uncontended rounds, {} clients for {:.1} s",
        crate::demo::redact(&args.url),
        args.iterations,
        args.clients,
        args.seconds
    );
    let run = uuid::Uuid::new_v4().simple().to_string();

    let locks = crate::store::connect(&args.url).await?;
    let name = format!("distlock-bench/{run}/solo");
    let mut solo = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let start = Instant::now();
        let guard = locks
            .try_acquire(&name)
            .await?
            .ok_or_else(|| LockError::backend("the uncontended bench lock was taken"))?;
        guard.release().await?;
        solo.push(start.elapsed());
    }
    let solo = Samples::new(solo);
    println!(
        "distlock try_acquire + release   p50 {}  p99 {}  ({} rounds)",
        ms(solo.p50()),
        ms(solo.p99()),
        solo.len()
    );
    match raw::measure(&args.url, args.iterations).await? {
        Some((what, samples)) => {
            let raw = Samples::new(samples);
            println!("raw {what}   p50 {}  p99 {}", ms(raw.p50()), ms(raw.p99()));
            let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
            println!(
                "ratio distlock/raw   p50 {:.2}x  p99 {:.2}x",
                ratio(solo.p50(), raw.p50()),
                ratio(solo.p99(), raw.p99())
            );
        }
        None => println!("raw primitive: none to compare with for this URL"),
    }
    contended(&args, &format!("distlock-bench/{run}/hot")).await?;
    Ok(ExitCode::SUCCESS)
}

async fn contended(args: &BenchArgs, name: &str) -> distlock::Result<()> {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let phase = Duration::try_from_secs_f64(args.seconds).map_err(|e| {
        LockError::config(format!("invalid --seconds {}", args.seconds)).with_source(e)
    })?;
    let until = Instant::now() + phase;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let locks = crate::store::connect(&args.url).await?;
        let (name, waits) = (name.to_string(), waits.clone());
        tasks.push(tokio::spawn(async move {
            let mut count = 0u64;
            while Instant::now() < until {
                let start = Instant::now();
                let guard = locks
                    .acquire_timeout(&name, Duration::from_secs(30))
                    .await?;
                waits.lock().await.push(start.elapsed());
                guard.release().await?;
                count += 1;
            }
            Ok::<u64, LockError>(count)
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(
            task.await
                .map_err(|e| LockError::backend(format!("a bench client failed: {e}")))??,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: u64 = counts.iter().sum();
    let waits = Samples::new(std::mem::take(&mut *waits.lock().await));
    println!(
        "contended: {total} acquisitions in {elapsed:.1} s = {:.0}/s; acquire wait p50 {}  p99 {}; per client min {} max {}",
        total as f64 / elapsed,
        ms(waits.p50()),
        ms(waits.p99()),
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0)
    );
    Ok(())
}
