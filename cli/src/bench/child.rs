//! `distlock bench-process` (hidden): one contender process of the cross-process cases of
//! lock files, started by `distlock bench`. It reports on stdout, one line per event.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use distlock::{LockError, LockExt, Result};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::counter::{Counter, FileCounter};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Role {
    /// Takes the lock in a loop for `--seconds`, incrementing the counter file inside;
    /// prints its acquisition count.
    Contend,
    /// For each line on stdin: acquires (the parent holds), prints the wall-clock time
    /// in µs since the epoch at which the acquire returned, releases, prints `released`.
    Wait,
}

#[derive(Args, Debug)]
pub(crate) struct ProcessArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    name: String,
    #[arg(long, value_enum)]
    role: Role,
    #[arg(long)]
    counter: Option<PathBuf>,
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

/// Runs one contender process.
///
/// # Cancel safety
/// Not needed: it is the whole process.
pub(crate) async fn run(args: ProcessArgs) -> Result<std::process::ExitCode> {
    let locks = distlock::connect(&args.url).await?;
    let limit = Duration::from_secs(60);
    match args.role {
        Role::Contend => {
            let path = args
                .counter
                .ok_or_else(|| LockError::config("--role contend needs --counter"))?;
            let mut counter = FileCounter(path);
            let phase = Duration::try_from_secs_f64(args.seconds)
                .map_err(|_| LockError::config("--seconds must be a positive number"))?;
            let until = Instant::now() + phase;
            let mut count = 0u64;
            while Instant::now() < until {
                let guard = locks.acquire_timeout(&args.name, limit).await?;
                let value = counter.get().await?;
                counter.set(value + 1).await?;
                guard.release().await?;
                count += 1;
            }
            println!("{count}");
        }
        Role::Wait => {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(_)) = lines.next_line().await {
                let guard = locks.acquire_timeout(&args.name, limit).await?;
                println!("{}", epoch_micros());
                guard.release().await?;
                println!("released");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Wall-clock µs since the epoch: comparable between processes of one host.
pub(crate) fn epoch_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}
