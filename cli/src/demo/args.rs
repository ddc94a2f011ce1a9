//! The demo's command lines: the one users type and the hidden one of each buyer process.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Most buyer processes a demo starts.
pub(crate) const MAX_BUYERS: u32 = 256;
/// Most items a demo sells.
pub(crate) const MAX_STOCK: u64 = 10_000;
/// Longest "payment" a buyer makes between reading and writing the stock.
const MAX_PAYMENT: Duration = Duration::from_secs(10);

/// `distlock demo`.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Lock URL (file:///dir, redis://…, zk://…, mysql://…). Default: lock files in a fresh
    /// temporary directory, removed afterwards.
    #[arg(long, env = "DISTLOCK_URL")]
    pub(crate) url: Option<String>,
    /// Buyer processes racing for the stock (1 to 256).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BUYERS)))]
    pub(crate) buyers: u32,
    /// Items on sale (1 to 10000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_STOCK))]
    pub(crate) stock: u64,
    /// How long a buyer "pays" between reading the stock and writing it back (up to 10s).
    #[arg(long, default_value = "100ms", value_parser = payment)]
    pub(crate) payment: Duration,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

fn payment(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 100ms, 1s)"))?;
    if d > MAX_PAYMENT {
        return Err(format!(
            "at most {}",
            humantime::format_duration(MAX_PAYMENT)
        ));
    }
    Ok(d)
}

/// What a buyer process does in its act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// Act 1: read, pay, write, with no lock.
    Unlocked,
    /// Act 2: the same inside the lock, with fenced writes where the backend fences.
    Locked,
    /// Act 3: takes the lock, reads, and waits to be paused and told to write.
    Stale,
    /// Act 3: takes the lock over once the stale holder's hold is gone and buys.
    Fresh,
}

/// The hidden `distlock demo-buyer` each buyer process runs. The lock URL comes in the
/// `DISTLOCK_DEMO_URL` environment variable, so no password shows in a process list.
#[derive(Args, Debug)]
pub(crate) struct BuyerArgs {
    /// The demo run this buyer belongs to (names the lock and the stock).
    #[arg(long)]
    pub(crate) run: String,
    /// The act's part this buyer plays.
    #[arg(long, value_enum)]
    pub(crate) role: Role,
    /// Items the sale started with (to number the items).
    #[arg(long)]
    pub(crate) stock: u64,
    /// The payment delay.
    #[arg(long, value_parser = payment)]
    pub(crate) payment: Duration,
}

/// The environment variable that hands the lock URL to buyer processes.
pub(crate) const URL_ENV: &str = "DISTLOCK_DEMO_URL";
