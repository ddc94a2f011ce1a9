//! `distlock demo`: a flash sale. Buyer processes race for a few items, first without a
//! lock (the stock is oversold), then with one (exactly the stock is sold, each item once),
//! then, on backends whose holds can end while the holder lives, a holder is paused past
//! its lease or session and its late write is rejected by the fence.
//!
//! Exit codes: 0 when act 2 was exact (and act 3, if run, rejected the late write), 3 when
//! not, 2 for bad input, 1 when the store could not be used.

mod acts;
mod args;
mod buyer;
mod progress;
mod report;
mod signal;
mod stock;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use distlock::{LockExt, Result};

pub(crate) use args::{BuyerArgs, DemoArgs};
pub(crate) use buyer::buyer;

use acts::{Sale, Sales};
use args::Role;
use stock::Stock;

/// Exit code when the locked sale was not exact.
const WRONG: u8 = 3;
/// Exit code for bad input.
const USAGE: u8 = 2;

/// Runs the demo.
pub(crate) async fn demo(args: DemoArgs) -> Result<ExitCode> {
    let (url, scratch) = match &args.url {
        Some(url) => (distlock::url_with_password_from_env(url)?, None),
        None => {
            let dir = scratch_dir();
            (format!("file://{}", dir.display()), Some(dir))
        }
    };
    let backend = match stock::backend_of(&url) {
        Ok(b) => b,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "distlock demo: {message}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let sale = Sale {
        url: &url,
        run: &run,
        buyers: args.buyers,
        stock: args.stock,
        payment: args.payment,
    };
    let result = run_acts(&sale, backend.loses_holds).await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    let outcome = result?;
    let mut out = std::io::stdout().lock();
    match outcome.write(&mut out, args.json) {
        Ok(()) => {}
        // `distlock demo | head -1`: the reader has all it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(distlock::LockError::backend("writing the report").with_source(e)),
    }
    Ok(if outcome.correct() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(WRONG)
    })
}

/// The acts, then the store's cleanup whatever happened.
async fn run_acts(sale: &Sale<'_>, loses_holds: bool) -> Result<report::Outcome> {
    // Connect once up front: a bad URL or a dead server fails here, before 16 processes
    // fail the same way. The first acquire also creates what the backend needs (tables).
    let locks = distlock::connect(sale.url).await?;
    let name = buyer::lock_name(sale.run);
    if let Some(guard) = locks.try_acquire(&name).await? {
        guard.release().await?;
    }
    let act3 = loses_holds && locks.capabilities().fencing;
    let mut stock = Stock::open(sale.url, sale.run).await?;
    let acts = async {
        let steps = 2 * u64::from(sale.buyers) + if act3 { 2 } else { 0 };
        let progress = progress::bar(steps);
        progress.set_message("act 1: without a lock");
        let without_lock = acts::crowd(sale, &mut stock, Role::Unlocked, &progress).await?;
        progress.set_message("act 2: with the lock");
        let with_lock = acts::crowd(sale, &mut stock, Role::Locked, &progress).await?;
        let stale_write_rejected = if act3 {
            progress.set_message("act 3: a holder paused");
            Some(acts::stale_write(sale, &mut stock, &progress).await?)
        } else {
            None
        };
        progress.finish_and_clear();
        Ok::<_, distlock::LockError>((without_lock, with_lock, stale_write_rejected))
    }
    .await;
    let store = stock.describe();
    let removed = stock.remove().await;
    let (without_lock, with_lock, stale_write_rejected): (Sales, Sales, Option<bool>) = acts?;
    removed?;
    Ok(report::Outcome {
        stock: sale.stock,
        buyers: sale.buyers,
        url: redact(sale.url),
        store,
        without_lock,
        with_lock,
        stale_write_rejected,
    })
}

/// A fresh directory for the default run's lock files and stock, removed afterwards.
fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "distlock-demo-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))
}

/// The URL without its password, for printing (core's one redactor).
pub(crate) fn redact(url: &str) -> String {
    distlock::settings::RedactedUrl::new(url).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            super::redact("mysql://app:s3cret@db:3306/x"),
            "mysql://app:***@db:3306/x"
        );
        assert_eq!(super::redact("file:///tmp/x"), "file:///tmp/x");
        assert_eq!(super::redact("mysql://root@db/x"), "mysql://root@db/x");
        assert_eq!(
            super::redact("redis+redlock://:pw@a:1,b:2/"),
            "redis+redlock://:***@a:1,b:2/"
        );
    }
}
