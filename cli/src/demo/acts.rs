//! The three acts: buyer processes started at a barrier, their sales collected.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use distlock::{LockError, Result};
use indicatif::ProgressBar;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinSet;

use super::args::{Role, URL_ENV};
use super::signal;
use super::stock::Stock;

/// What one demo run shares with its acts.
pub(crate) struct Sale<'a> {
    pub(crate) url: &'a str,
    pub(crate) run: &'a str,
    pub(crate) buyers: u32,
    pub(crate) stock: u64,
    pub(crate) payment: Duration,
}

/// Who bought which item in one act.
#[derive(Debug, Default)]
pub(crate) struct Sales {
    /// item → the buyers it was sold to (more than one is an oversell).
    pub(crate) items: BTreeMap<u64, Vec<u32>>,
    /// Items the store says are left once every buyer is done.
    pub(crate) left: u64,
}

impl Sales {
    /// Items sold, counting an item sold twice twice.
    pub(crate) fn sold(&self) -> u64 {
        self.items.values().map(|b| b.len() as u64).sum()
    }

    /// Sales beyond the first of each item.
    pub(crate) fn sold_twice(&self) -> u64 {
        self.sold() - self.items.len() as u64
    }

    /// Exactly the stock sold, each item once, and the store agrees it is sold out.
    pub(crate) fn exact(&self, stock: u64) -> bool {
        self.sold() == stock && self.sold_twice() == 0 && self.left == 0
    }
}

/// Acts 1 and 2: every buyer buys until the stock is gone (act 1 without the lock).
pub(crate) async fn crowd(
    sale: &Sale<'_>,
    stock: &mut Stock,
    role: Role,
    progress: &ProgressBar,
) -> Result<Sales> {
    stock.reset(sale.stock).await?;
    let mut buyers = Vec::new();
    for id in 0..sale.buyers {
        buyers.push(Buyer::spawn(sale, role, id)?);
    }
    for buyer in &mut buyers {
        buyer.expect("ready").await?;
    }
    // The barrier: everyone connected, now all start at once.
    for buyer in &mut buyers {
        buyer.tell("go").await?;
    }
    let mut running = JoinSet::new();
    for buyer in buyers {
        running.spawn(buyer.purchases());
    }
    let mut sales = Sales::default();
    let limit = crowd_limit(sale);
    let collected = tokio::time::timeout(limit, async {
        while let Some(done) = running.join_next().await {
            let (id, items) =
                done.map_err(|e| LockError::backend(format!("a buyer task failed: {e}")))??;
            for item in items {
                sales.items.entry(item).or_default().push(id);
            }
            progress.inc(1);
        }
        Ok::<(), LockError>(())
    })
    .await;
    match collected {
        Ok(result) => result?,
        // Dropping the JoinSet kills the buyers (kill_on_drop).
        Err(_) => {
            return Err(LockError::timeout(format!(
                "the buyers did not finish in {limit:?}"
            )))
        }
    }
    sales.left = stock.read().await?;
    Ok(sales)
}

/// Act 3: a holder paused past its lease, another buyer takes over and buys, the first
/// wakes up and writes. `true` when its late write was rejected and the new value stayed.
pub(crate) async fn stale_write(
    sale: &Sale<'_>,
    stock: &mut Stock,
    progress: &ProgressBar,
) -> Result<bool> {
    stock.reset(sale.stock).await?;
    let mut stale = Buyer::spawn(sale, Role::Stale, 0)?;
    let stale_pid = stale.pid;
    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        stale.expect("holding").await?;
        signal::pause(stale_pid)?;
        let mut fresh = Buyer::spawn(sale, Role::Fresh, 1)?;
        fresh.expect("ready").await?;
        // The fresh buyer gets the lock only once the paused holder's lease or session is gone.
        let (_, bought) = fresh.purchases().await?;
        progress.inc(1);
        signal::resume(stale_pid)?;
        stale.tell("write").await?;
        let verdict = stale.next_line().await?;
        stale.finish().await?;
        progress.inc(1);
        Ok::<_, LockError>((bought, verdict))
    })
    .await;
    // Never leave a stopped process behind (kill_on_drop's SIGKILL works on it anyway).
    let _ = signal::resume(stale_pid);
    let (bought, verdict) =
        outcome.map_err(|_| LockError::timeout("act 3 did not finish in 120s"))??;
    let left = stock.read().await?;
    Ok(verdict.as_deref() == Some("rejected") && bought.len() == 1 && left == sale.stock - 1)
}

/// A generous bound on one crowd act, so a stuck buyer cannot hang the demo.
fn crowd_limit(sale: &Sale<'_>) -> Duration {
    let handoffs = u32::try_from(sale.stock)
        .unwrap_or(u32::MAX)
        .saturating_add(sale.buyers);
    Duration::from_secs(60)
        + sale
            .payment
            .saturating_mul(3)
            .saturating_mul(u32::try_from(sale.stock).unwrap_or(u32::MAX))
        + Duration::from_millis(100).saturating_mul(handoffs)
}

/// One buyer process and its two pipes.
struct Buyer {
    id: u32,
    pid: u32,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Buyer {
    /// Starts `distlock demo-buyer` (this very binary) in `role`.
    fn spawn(sale: &Sale<'_>, role: Role, id: u32) -> Result<Buyer> {
        let exe = std::env::current_exe()
            .map_err(|e| LockError::backend("finding the distlock binary").with_source(e))?;
        let role_name = match role {
            Role::Unlocked => "unlocked",
            Role::Locked => "locked",
            Role::Stale => "stale",
            Role::Fresh => "fresh",
        };
        let mut child = Command::new(exe)
            .args(["demo-buyer", "--run", sale.run, "--role", role_name])
            .args(["--stock", &sale.stock.to_string()])
            .args(["--payment", &format!("{}ms", sale.payment.as_millis())])
            // The URL (maybe with a password) goes by environment, not by argv.
            .env(URL_ENV, sale.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| LockError::backend("starting a buyer process").with_source(e))?;
        let (Some(stdin), Some(stdout), Some(pid)) =
            (child.stdin.take(), child.stdout.take(), child.id())
        else {
            return Err(LockError::backend("a buyer process started without pipes"));
        };
        Ok(Buyer {
            id,
            pid,
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    async fn next_line(&mut self) -> Result<Option<String>> {
        self.lines
            .next_line()
            .await
            .map_err(|e| LockError::backend(format!("reading buyer {}", self.id)).with_source(e))
    }

    /// Waits for a line starting with `word`; an early end is the buyer's failure.
    async fn expect(&mut self, word: &str) -> Result<String> {
        match self.next_line().await? {
            Some(line) if line.starts_with(word) => Ok(line),
            Some(line) => Err(LockError::backend(format!(
                "buyer {} said {line:?}, expected {word:?}",
                self.id
            ))),
            None => Err(self.failed().await),
        }
    }

    async fn tell(&mut self, word: &str) -> Result<()> {
        let line = format!("{word}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| LockError::backend(format!("telling buyer {}", self.id)).with_source(e))
    }

    /// Collects the buyer's `sold <item>` lines until it exits, successfully.
    async fn purchases(mut self) -> Result<(u32, Vec<u64>)> {
        let mut items = Vec::new();
        while let Some(line) = self.next_line().await? {
            let item = line
                .strip_prefix("sold ")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| LockError::backend(format!("buyer {} said {line:?}", self.id)))?;
            items.push(item);
        }
        let id = self.id;
        self.finish().await?;
        Ok((id, items))
    }

    /// Waits for the buyer to exit; a failure exit is an error (its reason is on stderr).
    async fn finish(mut self) -> Result<()> {
        drop(self.stdin);
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| LockError::backend("waiting for a buyer").with_source(e))?;
        if status.success() {
            Ok(())
        } else {
            Err(LockError::backend(format!(
                "buyer {} failed ({status})",
                self.id
            )))
        }
    }

    async fn failed(&mut self) -> LockError {
        let status = self.child.wait().await;
        LockError::backend(format!(
            "buyer {} ended early ({}); its error is above",
            self.id,
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        ))
    }
}
