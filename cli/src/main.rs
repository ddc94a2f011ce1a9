//! `distlock`: run a command under a distributed lock, watch a demo, benchmark a backend.

mod bench;
mod demo;
mod ops;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The lock URL used when none is given: lock files in the system's temp directory, so the
/// demo needs no server.
fn default_url() -> String {
    format!("file://{}", std::env::temp_dir().join("distlock").display())
}

#[derive(Parser, Debug)]
#[command(
    name = "distlock",
    version,
    about = "Distributed locks over Redis, ZooKeeper, MySQL/MariaDB or lock files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A flash sale: buyer processes oversell without a lock, sell exactly the stock with
    /// it, and a paused holder's late write is rejected by the fence (exit code 3 if the
    /// locked sale was not exact, 2 for bad input).
    Demo(demo::DemoArgs),
    /// One buyer process of the demo (started by `distlock demo`).
    #[command(hide = true)]
    DemoBuyer(demo::BuyerArgs),
    /// Runs a command while holding a lock (exit code 75 if the lock was not taken in time
    /// or was lost, which kills the command).
    Run(run::RunArgs),
    /// Measures a backend against the raw store primitive it is built on, in one run.
    Bench(bench::BenchArgs),
    /// Lists the held locks (name, fencing token, age, time left, holder host:pid and
    /// label), optionally under a name prefix; `--json` for scripts.
    Holders(ops::holders::HoldersArgs),
    /// Forcibly frees a stuck lock: its holder's lost signal fires and the next holder gets
    /// a larger fencing token. Asks first unless --yes (exit code 2 without --yes on a
    /// non-interactive stdin). Lock files cannot be broken (error).
    Break(ops::break_lock::BreakArgs),
    /// Checks the store's settings and prints PASS/WARN/FAIL with the fix. Exit code 0 when
    /// all pass, 3 on a warning, 4 on a failure.
    Doctor(ops::doctor::DoctorArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::demo(args).await,
        Command::DemoBuyer(args) => demo::buyer(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Bench(args) => bench::bench(args).await,
        Command::Holders(args) => ops::holders::holders(args).await,
        Command::Break(args) => ops::break_lock::break_lock(args).await,
        Command::Doctor(args) => ops::doctor::doctor(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("distlock: {e}");
            ExitCode::from(1)
        }
    }
}
