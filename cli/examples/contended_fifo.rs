//! The floor under a fair Redis lock's contended rate on this machine: the fastest strict
//! FIFO lock a client of the same `redis` crate can have, beside distlock and the `rslock`
//! crate, in alternating rounds in one process on the bench's runtime:
//!
//! ```text
//! contended_fifo redis://127.0.0.1:PORT/ [SECONDS] [ROUNDS]
//! ```
//!
//! As in `distlock bench`'s contended case, 8 clients (their own connections) take one name
//! in a loop and read a counter in the store and write it back incremented inside the
//! lock. The bare FIFO lock is two one-line scripts and no checks: a failed `SET NX` joins a
//! list and waits for a message on its client's own channel; the release pops the next
//! waiter, hands it the key and publishes to it (or deletes the key when nobody waits).
//! Every acquisition under contention is then a handoff to another client, as distlock's
//! are. Prints acquisitions/s, fairness, and the CPU time per acquisition of the server
//! (`INFO cpu`) and of this process (`/proc/self/stat`) per round, and the medians.

use std::pin::Pin;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use distlock::{DistributedLock, LockExt, LockGuard};
use futures::{Stream, StreamExt};

const CLIENTS: usize = 8;
const PREFIX: &str = "contended-fifo:";

/// KEYS: lock, queue. ARGV: this client's id.
const TAKE_OR_QUEUE: &str = "if redis.call('set', KEYS[1], ARGV[1], 'nx') then return 1 end \
     redis.call('rpush', KEYS[2], ARGV[1]) return 0";
/// KEYS: lock, queue. ARGV: the wake channels' prefix.
const HAND_ON: &str = "local n = redis.call('lpop', KEYS[2]) \
     if n then redis.call('set', KEYS[1], n) redis.call('publish', ARGV[1] .. n, '1') \
     else redis.call('del', KEYS[1]) end return 1";

fn die(what: impl std::fmt::Display) -> ! {
    eprintln!("contended_fifo: {what}");
    std::process::exit(1)
}

#[async_trait]
trait Contender: Send {
    async fn acquire(&mut self);
    async fn release(&mut self);
}

struct Fifo {
    conn: redis::aio::MultiplexedConnection,
    wakes: Pin<Box<dyn Stream<Item = redis::Msg> + Send>>,
    me: String,
}

impl Fifo {
    async fn new(url: &str, me: usize) -> Self {
        let client = redis::Client::open(url).unwrap_or_else(|e| die(e));
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| die(e));
        let mut pubsub = client.get_async_pubsub().await.unwrap_or_else(|e| die(e));
        let me = me.to_string();
        pubsub
            .subscribe(format!("{PREFIX}wake:{me}"))
            .await
            .unwrap_or_else(|e| die(e));
        Fifo {
            conn,
            wakes: Box::pin(pubsub.into_on_message()),
            me,
        }
    }
}

#[async_trait]
impl Contender for Fifo {
    async fn acquire(&mut self) {
        let took: i64 = redis::Script::new(TAKE_OR_QUEUE)
            .key(format!("{PREFIX}lock"))
            .key(format!("{PREFIX}queue"))
            .arg(&self.me)
            .invoke_async(&mut self.conn)
            .await
            .unwrap_or_else(|e| die(e));
        if took == 0 && self.wakes.next().await.is_none() {
            die("the subscription ended");
        }
    }

    async fn release(&mut self) {
        let _: i64 = redis::Script::new(HAND_ON)
            .key(format!("{PREFIX}lock"))
            .key(format!("{PREFIX}queue"))
            .arg(format!("{PREFIX}wake:"))
            .invoke_async(&mut self.conn)
            .await
            .unwrap_or_else(|e| die(e));
    }
}

struct Distlock {
    client: Box<dyn DistributedLock>,
    guard: Option<LockGuard>,
}

#[async_trait]
impl Contender for Distlock {
    async fn acquire(&mut self) {
        let guard = self
            .client
            .acquire("contended-fifo-distlock")
            .await
            .unwrap_or_else(|e| die(e));
        self.guard = Some(guard);
    }

    async fn release(&mut self) {
        if let Some(guard) = self.guard.take() {
            guard.release().await.unwrap_or_else(|e| die(e));
        }
    }
}

struct Rslock {
    manager: rslock::LockManager,
    lock: Option<rslock::Lock>,
}

#[async_trait]
impl Contender for Rslock {
    async fn acquire(&mut self) {
        let lock = self
            .manager
            .acquire_no_guard(
                format!("{PREFIX}rslock").as_bytes(),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| die(e));
        self.lock = Some(lock);
    }

    async fn release(&mut self) {
        if let Some(lock) = self.lock.take() {
            self.manager.unlock(&lock).await;
        }
    }
}

async fn contender(url: &str, which: &str, me: usize) -> Box<dyn Contender> {
    match which {
        "fifo" => Box::new(Fifo::new(url, me).await),
        "distlock" => Box::new(Distlock {
            client: distlock::connect(url).await.unwrap_or_else(|e| die(e)),
            guard: None,
        }),
        _ => Box::new(Rslock {
            manager: rslock::LockManager::from_clients(vec![
                redis::Client::open(url).unwrap_or_else(|e| die(e))
            ]),
            lock: None,
        }),
    }
}

/// The server's CPU time so far (`used_cpu_sys` + `used_cpu_user`), in µs.
async fn server_cpu_us(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap_or_else(|e| die(e));
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| *k == "used_cpu_sys" || *k == "used_cpu_user")
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum::<f64>()
        * 1e6
}

/// This process's CPU time so far, every thread, in µs (clock ticks of 10 ms).
fn own_cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_else(|e| die(e));
    // After the command name in parentheses: utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks * 10_000.0
}

struct Figures {
    rate: f64,
    fairness: f64,
    server_us: f64,
    client_us: f64,
}

/// One round of `which`: acquisitions per second, fairness (least / most of a client), and
/// CPU time per acquisition.
async fn round(url: &str, which: &'static str, length: Duration) -> Figures {
    let client = redis::Client::open(url).unwrap_or_else(|e| die(e));
    let counter_key = format!("{PREFIX}counter:{which}");
    let mut parts = Vec::with_capacity(CLIENTS);
    for me in 0..CLIENTS {
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| die(e));
        parts.push((contender(url, which, me).await, conn));
    }
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| die(e));
    let (server_before, own_before) = (server_cpu_us(&mut conn).await, own_cpu_us());
    let started = Instant::now();
    let until = started + length;
    let mut tasks = Vec::with_capacity(CLIENTS);
    for (mut lock, mut conn) in parts {
        let key = counter_key.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = 0u64;
            while Instant::now() < until {
                lock.acquire().await;
                let value: Option<u64> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_else(|e| die(e));
                let _: () = redis::cmd("SET")
                    .arg(&key)
                    .arg(value.unwrap_or(0) + 1)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_else(|e| die(e));
                lock.release().await;
                mine += 1;
            }
            mine
        }));
    }
    let mut per_client = Vec::with_capacity(CLIENTS);
    for task in tasks {
        per_client.push(task.await.unwrap_or_else(|e| die(e)));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (server_after, own_after) = (server_cpu_us(&mut conn).await, own_cpu_us());
    let counted: Option<u64> = redis::cmd("GET")
        .arg(&counter_key)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| die(e));
    let total: u64 = per_client.iter().sum();
    if counted.unwrap_or(0) != total {
        die(format!(
            "{which}: {total} acquisitions but the counter says {counted:?}"
        ));
    }
    let _: () = redis::cmd("DEL")
        .arg(&counter_key)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| die(e));
    let least = per_client.iter().min().copied().unwrap_or(0) as f64;
    let most = per_client.iter().max().copied().unwrap_or(1).max(1) as f64;
    let per = total.max(1) as f64;
    Figures {
        rate: total as f64 / elapsed,
        fairness: least / most,
        server_us: (server_after - server_before) / per,
        client_us: (own_after - own_before) / per,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(url: &str, length: Duration, rounds: usize) {
    let order = ["fifo", "distlock", "rslock"];
    let mut figures: Vec<Vec<Figures>> = order.iter().map(|_| Vec::new()).collect();
    let show = |which: &str, f: &Figures| {
        format!(
            "{which:8} {:7.0} acq/s, fairness {:.2}, CPU per acquisition: server {:5.1} µs, this process {:5.1} µs",
            f.rate, f.fairness, f.server_us, f.client_us
        )
    };
    for r in 0..rounds {
        // Each round starts with the next subject, so none always runs first.
        for k in 0..order.len() {
            let i = (r + k) % order.len();
            let f = round(url, order[i], length).await;
            println!("round {r}: {}", show(order[i], &f));
            figures[i].push(f);
        }
    }
    for (which, runs) in order.iter().zip(figures) {
        let of = |pick: fn(&Figures) -> f64| median(runs.iter().map(pick).collect());
        let f = Figures {
            rate: of(|f| f.rate),
            fairness: of(|f| f.fairness),
            server_us: of(|f| f.server_us),
            client_us: of(|f| f.client_us),
        };
        println!("median of {rounds}: {}", show(which, &f));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| die("usage: contended_fifo redis://… [SECONDS] [ROUNDS]"));
    let seconds: f64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5.0);
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(e));
    runtime.block_on(run(&url, Duration::from_secs_f64(seconds), rounds.max(1)));
}
