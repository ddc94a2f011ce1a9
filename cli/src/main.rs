//! `distlock`: run a command under a distributed lock, watch a demo, benchmark a backend.

mod bench;
mod check;
mod demo;
mod diag;
mod duration;
mod exit;
mod ops;
mod pipes;
mod run;
mod store;

use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};

pub(crate) use store::default_url;

const EXAMPLES: &str = "\
Examples:
  distlock demo                                  # the flash sale on lock files, no server
  distlock run -w 30s nightly-report -- ./report.sh
  DISTLOCK_URL=redis://127.0.0.1:6379/0 distlock bench --clients 8";

#[derive(Parser, Debug)]
#[command(
    name = "distlock",
    version,
    about = "Distributed locks over Redis, ZooKeeper, MySQL/MariaDB or lock files",
    after_help = format!("{EXAMPLES}\n\n{}\n\n{}", exit::HELP, store::ENV_HELP),
)]
struct Cli {
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A flash sale: buyer processes oversell without a lock, sell exactly the stock with
    /// it, and a paused holder's late write is rejected by the fence (exit code 3 if the
    /// locked sale was not exact, 2 for bad input).
    #[command(after_help = "Examples:\n  \
        distlock demo\n  \
        distlock demo --buyers 32 --stock 3 --json\n  \
        distlock demo --url zk://127.0.0.1:2181")]
    Demo(demo::DemoArgs),
    /// One buyer process of the demo (started by `distlock demo`).
    #[command(hide = true)]
    DemoBuyer(demo::BuyerArgs),
    /// Runs a command while holding a lock; the command never outlives the lock.
    Run(run::RunArgs),
    /// Measures a backend against the raw store primitive it is built on, in one run.
    #[command(after_help = "Examples:\n  \
        distlock bench\n  \
        distlock bench --url redis://127.0.0.1:6379/0 --quick\n  \
        distlock bench --url zk://127.0.0.1:2181 --runs 3 --json bench.json --svg bench.svg\n  \
        scripts/bench.sh mariadb --only contended,handoff   # throwaway server (source tree)")]
    Bench(bench::BenchArgs),
    /// One contender process of `distlock bench` (started by it).
    #[command(hide = true)]
    BenchProcess(bench::ProcessArgs),
    /// Contends from several processes under injected faults and checks the histories
    /// (exit code 1 on any violation; 78 bad settings, 69 store unreachable).
    #[command(after_help = "Examples:\n  \
        distlock check --url redis://127.0.0.1:6379/0 --duration 2m\n  \
        distlock check --quick        # throwaway servers (build with --features testkit)")]
    Check(check::args::CheckArgs),
    /// One contending process of `distlock check` (internal).
    #[command(hide = true)]
    CheckWorker(check::args::WorkerArgs),
    /// Lists the held locks (name, fencing token, age, time left, holder host:pid and
    /// label), optionally under a name prefix; `--json` for scripts.
    Holders(ops::holders::HoldersArgs),
    /// Forcibly frees a stuck lock: its holder's lost signal fires and the next holder gets
    /// a larger fencing token. Asks first unless --yes (exit code 2 without --yes on a
    /// non-interactive stdin). Lock files cannot be broken (error).
    Break(ops::break_lock::BreakArgs),
    /// Checks the store's settings and prints PASS/WARN/FAIL with the fix. Exit code 0 when
    /// all pass, 3 on a warning, 4 on a failure (69 when the store cannot be reached).
    Doctor(ops::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    diag::init_tracing(cli.verbose);
    if matches!(cli.command, Command::Bench(_)) {
        pipes::die_quietly_on_closed_stdout();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            diag::error(format_args!("cannot start the async runtime: {e}"));
            return ExitCode::from(exit::OS_ERROR);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    let result = match command {
        Command::Demo(args) => demo::demo(args).await,
        Command::DemoBuyer(args) => demo::buyer(args).await,
        Command::Bench(args) => bench::bench(args).await,
        Command::BenchProcess(args) => bench::process(args).await,
        Command::Check(args) => check::check(args).await,
        Command::CheckWorker(args) => check::worker::worker(args).await,
        Command::Holders(args) => ops::holders::holders(args).await,
        Command::Break(args) => ops::break_lock::break_lock(args).await,
        Command::Doctor(args) => ops::doctor::doctor(args).await,
        Command::Run(args) => {
            return run::run(args)
                .await
                .unwrap_or_else(|message| usage_error("run", &message))
        }
    };
    result.unwrap_or_else(|e| {
        diag::error(&e);
        ExitCode::from(exit::for_error(&e))
    })
}

/// Reports a usage error found after parsing, the way clap reports its own (exit 2).
fn usage_error(subcommand: &str, message: &str) -> ExitCode {
    let mut cli = Cli::command();
    cli.build();
    let err = match cli.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(clap::error::ErrorKind::MissingRequiredArgument, message),
        None => cli.error(clap::error::ErrorKind::MissingRequiredArgument, message),
    };
    let _ = err.print();
    ExitCode::from(exit::USAGE)
}
