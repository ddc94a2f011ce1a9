//! One buyer process (`distlock demo-buyer`, started by the demo, hidden from help).
//!
//! It talks to the demo over its stdin and stdout, one word per line: it says `ready` once
//! connected and waits for `go` (the barrier that makes the buyers overlap), then says
//! `sold <item>` for every item it buys. Act 3's stale buyer says `holding <token>` and
//! waits for `write`, then says `rejected` or `accepted`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use distlock::{AcquireOptions, DistributedLock, ErrorKind, LockError, LockExt, Result};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

use super::args::{BuyerArgs, Role, URL_ENV};
use super::stock::Stock;

/// How long a buyer waits for the lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(120);
/// Act 3's stale holder: its lease (Redis) or session (ZooKeeper, unless the URL sets one).
/// Short, so the other buyer takes over soon after the pause.
const STALE_LEASE: Duration = Duration::from_secs(1);

/// The lock every buyer of demo run `run` contends for.
pub(crate) fn lock_name(run: &str) -> String {
    format!("distlock-demo/{run}")
}

/// Runs one buyer.
pub(crate) async fn buyer(args: BuyerArgs) -> Result<ExitCode> {
    let url = std::env::var(URL_ENV)
        .map_err(|_| LockError::config("demo-buyer is started by `distlock demo`"))?;
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    match args.role {
        Role::Unlocked => crowd(&args, &url, None, &mut commands).await?,
        Role::Locked => {
            let locks = distlock::connect(&url).await?;
            crowd(&args, &url, Some(locks.as_ref()), &mut commands).await?;
        }
        Role::Stale => stale(&args, &url, &mut commands).await?,
        Role::Fresh => fresh(&args, &url).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Acts 1 and 2: buy until sold out, inside the lock when there is one.
async fn crowd(
    args: &BuyerArgs,
    url: &str,
    locks: Option<&dyn DistributedLock>,
    commands: &mut Lines<BufReader<Stdin>>,
) -> Result<()> {
    let mut stock = Stock::open(url, &args.run).await?;
    let name = lock_name(&args.run);
    say("ready")?;
    wait_for(commands, "go").await?;
    loop {
        let guard = match locks {
            Some(locks) => Some(locks.acquire_timeout(&name, LOCK_WAIT).await?),
            None => None,
        };
        let token = guard.as_ref().and_then(|g| g.fencing_token());
        let left = stock.read().await?;
        if left > 0 {
            tokio::time::sleep(args.payment).await; // the customer pays
            stock.write(left - 1, token).await?;
            say(&format!("sold {}", args.stock - left + 1))?;
        }
        if let Some(guard) = guard {
            guard.release().await?;
        }
        if left == 0 {
            return Ok(());
        }
    }
}

/// Act 3, the holder that gets paused: takes the lock, reads the stock, and writes only
/// when told to, long after its hold has ended.
async fn stale(args: &BuyerArgs, url: &str, commands: &mut Lines<BufReader<Stdin>>) -> Result<()> {
    let locks = distlock::connect(&short_session(url)).await?;
    let options = AcquireOptions::wait_up_to(LOCK_WAIT).with_ttl(STALE_LEASE);
    let guard = locks
        .acquire_opts(&lock_name(&args.run), &options)
        .await?
        .ok_or_else(|| LockError::timeout("the stale buyer did not get the lock"))?;
    let left = Stock::open(url, &args.run).await?.read().await?;
    say(&format!("holding {}", guard.fencing_token().unwrap_or(0)))?;
    wait_for(commands, "write").await?;
    // Paused (SIGSTOP) until just now: like a process back from a long GC pause it goes
    // on as if it still held the lock. Its old connections may have died with its session,
    // so it opens the stock anew, and writes with its (old) token.
    let mut stock = Stock::open(url, &args.run).await?;
    let verdict = match stock
        .write(left.saturating_sub(1), guard.fencing_token())
        .await
    {
        Ok(()) => "accepted",
        Err(e) if e.kind() == ErrorKind::Fenced => "rejected",
        Err(e) => return Err(e),
    };
    say(verdict)?;
    // The hold is gone: a NotHeld / Lost answer here is the expected outcome.
    let _ = guard.release().await;
    Ok(())
}

/// Act 3, the buyer that takes over once the paused holder's hold has ended.
async fn fresh(args: &BuyerArgs, url: &str) -> Result<()> {
    let locks = distlock::connect(url).await?;
    let mut stock = Stock::open(url, &args.run).await?;
    say("ready")?;
    let guard = locks
        .acquire_timeout(&lock_name(&args.run), LOCK_WAIT)
        .await?;
    let left = stock.read().await?;
    if left > 0 {
        stock.write(left - 1, guard.fencing_token()).await?;
        say(&format!("sold {}", args.stock - left + 1))?;
    }
    guard.release().await
}

/// A ZooKeeper URL with a short session unless it sets one (Redis uses the short lease).
fn short_session(url: &str) -> String {
    // Schemes are case-insensitive (`ZK://` connects as well as `zk://`).
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let zk = scheme.eq_ignore_ascii_case("zk") || scheme.eq_ignore_ascii_case("zookeeper");
    if !zk || url.contains("session_timeout=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}session_timeout={}ms", STALE_LEASE.as_millis())
}

/// Says one line to the demo.
fn say(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| LockError::backend("the demo stopped listening").with_source(e))
}

/// Waits for the demo's `word`.
async fn wait_for(commands: &mut Lines<BufReader<Stdin>>, word: &str) -> Result<()> {
    match commands.next_line().await {
        Ok(Some(line)) if line.trim() == word => Ok(()),
        Ok(Some(line)) => Err(LockError::backend(format!(
            "expected {word:?} from the demo, got {line:?}"
        ))),
        Ok(None) => Err(LockError::backend(
            "the demo ended before this buyer started",
        )),
        Err(e) => Err(LockError::backend("reading from the demo").with_source(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_session_only_for_zookeeper_without_one() {
        use super::short_session;
        assert_eq!(short_session("zk://h:1"), "zk://h:1?session_timeout=1000ms");
        assert_eq!(
            short_session("zk://h:1/a?x=1"),
            "zk://h:1/a?x=1&session_timeout=1000ms"
        );
        assert_eq!(
            short_session("zk://h:1?session_timeout=5s"),
            "zk://h:1?session_timeout=5s"
        );
        assert_eq!(short_session("redis://h:1/"), "redis://h:1/");
        assert_eq!(short_session("ZK://h:1"), "ZK://h:1?session_timeout=1000ms");
        assert_eq!(
            short_session("ZooKeeper://h:1"),
            "ZooKeeper://h:1?session_timeout=1000ms"
        );
    }
}
