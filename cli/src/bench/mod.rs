//! `distlock bench`: distlock beside the raw store primitive it is built on (and a peer
//! library where users have one), in the same run on the same server, in the cases users
//! compare: uncontended, contended with work inside the lock, handoff, and growth in held
//! locks and in waiters. Server counters back the round-trip figures; `--json` and `--svg`
//! keep the results. Everything the run creates in the store is deleted at the end.

mod cases;
mod chart;
mod child;
mod cleanup;
mod counter;
mod peer;
mod plan;
mod progress;
mod raw;
mod report;
mod server_stats;
mod stats;
mod subject;
mod target;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use distlock::{LockError, Result};
use indicatif::ProgressBar;
use serde_json::json;

use plan::Plan;
use report::Report;
use subject::Subject;
use target::Target;

/// Exit code when a check failed (the counter, a waiter in early), as the demo's.
const CHECK_FAILED: u8 = 3;

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Lock URL of the backend to measure (memory:// and file:// need no server).
    #[arg(long, env = "DISTLOCK_URL", hide_env_values = true, default_value_t = crate::default_url())]
    url: String,
    /// A short run: about a minute on a server, seconds on file:// and memory://.
    #[arg(long)]
    quick: bool,
    /// Writes every figure as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draws latency distributions and growth curves as an SVG chart in FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Runs every case this many times and reports the median of each figure as well.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
    runs: u8,
    /// Uncontended rounds per subject (after the warm-up).
    #[arg(long)]
    iterations: Option<usize>,
    /// Clients (each with its own connections) in the contended case.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    clients: Option<u16>,
    /// How long the contended case runs per subject, in seconds.
    #[arg(long)]
    seconds: Option<f64>,
    /// Only these cases (comma-separated): uncontended, contended, handoff, holds, waiters,
    /// processes (lock files between processes; file:// only).
    #[arg(long, value_delimiter = ',', value_parser = ["uncontended", "contended", "handoff", "holds", "waiters", "processes"])]
    only: Vec<String>,
}

pub(crate) use child::{run as process, ProcessArgs};

/// What the cases share: the store, the plan, the findings so far.
pub(crate) struct Ctx {
    pub(crate) target: Target,
    pub(crate) plan: Plan,
    pub(crate) report: Report,
    /// Every lock name the run used, for the clean-up.
    pub(crate) names: BTreeSet<String>,
    /// A check failed (the counter, a waiter in early): exit code 3.
    pub(crate) broken: bool,
    /// The contended case has said what its counter is.
    pub(crate) counter_shown: bool,
    bar: ProgressBar,
}

impl Ctx {
    /// A lock name of this run.
    pub(crate) fn name(&mut self, what: &str) -> String {
        let name = format!("distlock-bench/{}/{what}", self.target.run);
        self.names.insert(name.clone());
        name
    }

    /// Moves the progress bar on to `what`.
    pub(crate) fn step(&self, what: &str) {
        if self.bar.message().is_empty() {
            self.bar.set_message(what.to_string());
        } else {
            self.bar.inc(1);
            self.bar.set_message(what.to_string());
        }
    }
}

/// Runs the benchmark and prints its report.
///
/// # Cancel safety
/// Not cancel safe: dropped midway, the run's keys, nodes, rows or files stay behind.
pub(crate) async fn bench(args: BenchArgs) -> Result<ExitCode> {
    if cfg!(debug_assertions) {
        crate::diag::error(
            "warning: this distlock was built without optimisations, its figures are not \
             comparable (build it with `cargo build --release -p distlock-cli`)",
        );
    }
    let target = Target::new(&distlock::url_with_password_from_env(&args.url)?)?;
    let plan = Plan::new(&args, target.kind)?;
    let distlock = subject::Distlock {
        url: target.lock_url.clone(),
    };
    let raw = raw::subject(&target);
    let peer = peer::subject(&target);
    let mut all: Vec<&dyn Subject> = vec![&distlock];
    all.extend(raw.as_deref());
    all.extend(peer.as_deref());
    let mut growth: Vec<&dyn Subject> = vec![&distlock];
    growth.extend(raw.as_deref());

    println!(
        "distlock bench on {} ({}, {} run, {} build, run id {})",
        target.shown(),
        target.kind.label(),
        if args.quick { "quick" } else { "full" },
        if cfg!(debug_assertions) {
            "DEBUG"
        } else {
            "release"
        },
        target.run
    );
    for subject in &all {
        println!("  {:<9} {}", subject.label(), subject.describe());
    }
    let steps = plan.steps(all.len(), growth.len()) * u64::from(args.runs);
    let mut ctx = Ctx {
        target,
        plan,
        report: Report::default(),
        names: BTreeSet::new(),
        broken: false,
        counter_shown: false,
        bar: progress::bar(steps),
    };
    if raw.is_none() {
        ctx.report.note(format!(
            "no raw primitive to compare with on {}",
            ctx.target.kind.label()
        ));
    }
    if ctx.target.kind == target::Kind::File {
        let dir = ctx.target.dir()?;
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            LockError::config(format!("cannot create {}", dir.display())).with_source(e)
        })?;
    }
    let mut reports = Vec::with_capacity(usize::from(args.runs));
    let mut outcome = Ok(());
    for run in 1..=args.runs {
        if args.runs > 1 {
            println!("\n=== run {run} of {}", args.runs);
        }
        outcome = run_cases(&mut ctx, &all, &growth).await;
        reports.push(std::mem::take(&mut ctx.report));
        if outcome.is_err() {
            break;
        }
    }
    ctx.report = if reports.len() > 1 {
        println!("\n=== medians of {} runs", reports.len());
        Report::median(reports)
    } else {
        reports.pop().unwrap_or_default()
    };
    ctx.bar.finish_and_clear();
    let cleaned = cleanup::clean(&ctx.target, &ctx.names).await;
    outcome?;
    cleaned?;
    println!(
        "\ncleaned up: every key, node, row and file of run {}",
        ctx.target.run
    );
    write_outputs(&args, &ctx)?;
    Ok(if ctx.broken {
        ExitCode::from(CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn run_cases(ctx: &mut Ctx, all: &[&dyn Subject], growth: &[&dyn Subject]) -> Result<()> {
    if ctx.plan.runs("uncontended") {
        cases::uncontended::run(ctx, all).await?;
    }
    if ctx.plan.runs("contended") {
        cases::contended::run(ctx, all).await?;
    }
    if ctx.plan.runs("handoff") {
        cases::handoff::run(ctx, all).await?;
    }
    if ctx.plan.runs("holds") {
        cases::holds::run(ctx).await?;
    }
    if ctx.plan.runs("waiters") {
        cases::waiters::run(ctx, growth).await?;
    }
    if ctx.plan.runs("processes") {
        cases::processes::run(ctx).await?;
    }
    Ok(())
}

fn write_outputs(args: &BenchArgs, ctx: &Ctx) -> Result<()> {
    if let Some(path) = &args.json {
        let header = json!({
            "url": ctx.target.shown(),
            "backend": ctx.target.kind.label(),
            "quick": args.quick,
            "optimised": !cfg!(debug_assertions),
            "plan": ctx.plan.json(),
        });
        let text = serde_json::to_string_pretty(&ctx.report.json(header))
            .map_err(|e| LockError::backend(format!("the JSON report: {e}")))?;
        std::fs::write(path, text + "\n").map_err(|e| {
            LockError::config(format!("cannot write {}", path.display())).with_source(e)
        })?;
    }
    if let Some(path) = &args.svg {
        chart::draw(
            path,
            &ctx.report,
            &format!("distlock bench on {}", ctx.target.kind.label()),
        )?;
    }
    Ok(())
}
