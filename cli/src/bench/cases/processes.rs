//! Lock files between processes (`file://` only): the contended case with N contender
//! processes (`distlock bench-process`), and the handoff from this process to a waiter
//! process. In one process every contender shares the kernel's view and the backend's
//! in-process wake-ups; between processes only the lock file connects them.

use std::process::Stdio;
use std::time::Duration;

use distlock::{LockError, LockExt, Result};
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::bench::child::epoch_micros;
use crate::bench::counter::{Counter, FileCounter};
use crate::bench::report::Row;
use crate::bench::stats::Samples;
use crate::bench::Ctx;

pub(crate) async fn run(ctx: &mut Ctx) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| LockError::backend("cannot find the distlock binary").with_source(e))?;
    contended(ctx, &exe).await?;
    handoff(ctx, &exe).await
}

fn child(exe: &std::path::Path, url: &str, name: &str, role: &str) -> Command {
    let mut command = Command::new(exe);
    command
        .args([
            "bench-process",
            "--url",
            url,
            "--name",
            name,
            "--role",
            role,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

async fn contended(ctx: &mut Ctx, exe: &std::path::Path) -> Result<()> {
    let processes = ctx.plan.clients;
    let seconds = ctx.plan.contended.as_secs_f64();
    println!(
        "\nlock files between processes: {processes} processes for {seconds:.1} s, a counter file read and written inside the lock"
    );
    ctx.step("processes contended");
    let name = ctx.name("processes-contended");
    let path = ctx.target.dir()?.join("processes.counter");
    let mut counter = FileCounter(path.clone());
    counter.set(0).await?;
    let mut children = Vec::with_capacity(processes);
    for _ in 0..processes {
        let mut command = child(exe, &ctx.target.lock_url, &name, "contend");
        command
            .arg("--counter")
            .arg(&path)
            .args(["--seconds", &seconds.to_string()]);
        children.push(
            command
                .spawn()
                .map_err(|e| LockError::backend("cannot start a bench process").with_source(e))?,
        );
    }
    let mut counts = Vec::with_capacity(processes);
    for one in children {
        let out = one
            .wait_with_output()
            .await
            .map_err(|e| LockError::backend("a bench process").with_source(e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let count: u64 = text.trim().parse().map_err(|_| {
            LockError::backend(format!(
                "a bench process failed ({}), said {text:?}",
                out.status
            ))
        })?;
        counts.push(count);
    }
    // Each process loops for `seconds` after its start-up, which is not counted.
    let elapsed = seconds;
    let total: u64 = counts.iter().sum();
    let counted = counter.get().await?;
    counter.remove().await?;
    ctx.report
        .add(Row::new("processes_contended", "distlock").contention(&counts, counted, elapsed));
    if counted != total {
        ctx.report.note(format!(
            "EXCLUSION BROKEN: {total} acquisitions between processes but the counter says {counted}"
        ));
        ctx.broken = true;
    }
    Ok(())
}

async fn handoff(ctx: &mut Ctx, exe: &std::path::Path) -> Result<()> {
    println!(
        "\nlock files between processes: handoff from this process to a parked waiter process, {} rounds",
        ctx.plan.handoffs
    );
    ctx.step("processes handoff");
    let name = ctx.name("processes-handoff");
    let locks = distlock::connect(&ctx.target.lock_url).await?;
    let mut waiter = child(exe, &ctx.target.lock_url, &name, "wait")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| LockError::backend("cannot start a bench process").with_source(e))?;
    let mut input = waiter
        .stdin
        .take()
        .ok_or_else(|| LockError::backend("no stdin"))?;
    let mut output = BufReader::new(
        waiter
            .stdout
            .take()
            .ok_or_else(|| LockError::backend("no stdout"))?,
    )
    .lines();
    let io = |e: std::io::Error| LockError::backend("the waiter process").with_source(e);
    let mut samples = Vec::with_capacity(ctx.plan.handoffs);
    for _ in 0..ctx.plan.handoffs {
        let guard = locks
            .acquire_timeout(&name, Duration::from_secs(60))
            .await?;
        input.write_all(b"go\n").await.map_err(io)?;
        input.flush().await.map_err(io)?;
        // Time is the subject: the hold must last long enough for the waiter to park.
        let hold = rand::rng().random_range(20..=220);
        tokio::time::sleep(Duration::from_millis(hold)).await;
        let released = epoch_micros();
        guard.release().await?;
        let acquired: u128 = output
            .next_line()
            .await
            .map_err(io)?
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| LockError::backend("the waiter process failed"))?;
        if acquired < released {
            return Err(LockError::backend(
                "EXCLUSION BROKEN: the waiter process acquired while this one held",
            ));
        }
        samples.push(Duration::from_micros(
            u64::try_from(acquired - released).unwrap_or(u64::MAX),
        ));
        output.next_line().await.map_err(io)?; // "released"
    }
    drop(input);
    let _ = waiter.wait().await;
    ctx.report.add(
        Row::new("processes_handoff", "distlock").latencies("handoff", &Samples::new(samples)),
    );
    Ok(())
}
