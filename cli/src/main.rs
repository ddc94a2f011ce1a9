//! `distlock`: run a command under a distributed lock, watch a demo, benchmark a backend.

mod bench;
mod check;
mod demo;
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
    /// Several workers take turns in one critical section and show their fencing tokens.
    Demo(demo::DemoArgs),
    /// Runs a command while holding a lock (exit code 75 if the lock was not taken in time
    /// or was lost, which kills the command).
    Run(run::RunArgs),
    /// Measures a backend against the raw store primitive it is built on, in one run.
    Bench(bench::BenchArgs),
    /// Contends from several processes under injected faults and checks the histories.
    Check(check::args::CheckArgs),
    /// One contending process of `distlock check` (internal).
    #[command(hide = true)]
    CheckWorker(check::args::WorkerArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::demo(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Bench(args) => bench::bench(args).await,
        Command::Check(args) => check::check(args).await,
        Command::CheckWorker(args) => check::worker::worker(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("distlock: {e}");
            ExitCode::from(1)
        }
    }
}
