//! The client's cost of one uncontended `try_acquire` + `release` on a networked store,
//! beside the raw primitive the bench compares with, on the bench's runtime (a 2-worker
//! multi-thread Tokio runtime, as the CLI) or, with `DISTLOCK_OVERHEAD_CURRENT_THREAD` set,
//! on a current-thread one:
//!
//! ```text
//! overhead_net distlock|raw|paired URL N
//! ```
//!
//! `paired` alternates a distlock cycle and a raw cycle N times and prints both medians:
//! on a shared machine, the only wall-clock comparison that both sides see under the same
//! load.
//!
//! `raw` is the bench's raw loop for the URL's scheme: Redis `SET NX PX` + compare-and-delete
//! `EVALSHA` on one multiplexed connection; MySQL `SELECT GET_LOCK(?, 0)` +
//! `SELECT RELEASE_LOCK(?)` on one connection. Run it under
//! `valgrind --tool=callgrind` (instructions) or `strace -c -f` (system calls) for two
//! values of N and divide the difference by the difference in N: the per-cycle cost without
//! the start-up. Prints the wall-clock time per cycle too (meaningless under valgrind).

use std::time::Instant;

use distlock::{DistributedLock, LockExt};

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

fn die(what: impl std::fmt::Display) -> ! {
    eprintln!("overhead_net: {what}");
    std::process::exit(1)
}

struct Distlock(Box<dyn DistributedLock>);

impl Distlock {
    async fn new(url: &str) -> Self {
        Distlock(distlock::connect(url).await.unwrap_or_else(|e| die(e)))
    }

    async fn cycle(&mut self) {
        match self.0.try_acquire("overhead-net").await {
            Ok(Some(guard)) => {
                if let Err(e) = guard.release().await {
                    die(e)
                }
            }
            other => die(format!("acquire: {other:?}")),
        }
    }
}

struct RawRedis {
    conn: redis::aio::MultiplexedConnection,
    release: redis::Script,
    token: String,
}

impl RawRedis {
    async fn new(url: &str) -> Self {
        let client = redis::Client::open(url).unwrap_or_else(|e| die(e));
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| die(e));
        RawRedis {
            conn,
            release: redis::Script::new(RELEASE),
            token: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    async fn cycle(&mut self) {
        let key = "distlock-overhead-raw";
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(&self.token)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut self.conn)
            .await
            .unwrap_or_else(|e| die(e));
        if set.is_none() {
            die("raw SET NX refused");
        }
        let deleted: i64 = self
            .release
            .key(key)
            .arg(&self.token)
            .invoke_async(&mut self.conn)
            .await
            .unwrap_or_else(|e| die(e));
        if deleted != 1 {
            die("raw release found another owner");
        }
    }
}

struct RawMySql(sqlx::MySqlConnection);

impl RawMySql {
    async fn new(url: &str) -> Self {
        use sqlx::Connection;
        let config = distlock::mysql::MySqlConfig::from_url(url).unwrap_or_else(|e| die(e));
        RawMySql(
            sqlx::MySqlConnection::connect_with(config.connect_options())
                .await
                .unwrap_or_else(|e| die(e)),
        )
    }

    async fn cycle(&mut self) {
        let key = "distlock-overhead-raw";
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(key)
            .bind(0.0f64)
            .fetch_one(&mut self.0)
            .await
            .unwrap_or_else(|e| die(e));
        if got != Some(1) {
            die("raw GET_LOCK refused");
        }
        let freed: Option<i64> = sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
            .bind(key)
            .fetch_one(&mut self.0)
            .await
            .unwrap_or_else(|e| die(e));
        if freed != Some(1) {
            die("raw RELEASE_LOCK found another owner");
        }
    }
}

enum Raw {
    Redis(RawRedis),
    MySql(RawMySql),
}

impl Raw {
    async fn new(url: &str) -> Self {
        match url.split(':').next().unwrap_or("") {
            "redis" => Raw::Redis(RawRedis::new(url).await),
            "mysql" | "mariadb" => Raw::MySql(RawMySql::new(url).await),
            _ => die("usage: overhead_net distlock|raw|paired redis://…|mysql://… N"),
        }
    }

    async fn cycle(&mut self) {
        match self {
            Raw::Redis(r) => r.cycle().await,
            Raw::MySql(r) => r.cycle().await,
        }
    }
}

/// distlock and raw cycles alternating (which goes first alternates too), so both meet the
/// same machine load: the per-cycle medians of the two and their ratio.
async fn paired(url: &str, n: u64) {
    let mut ours = Distlock::new(url).await;
    let mut raw = Raw::new(url).await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..n + 200 {
        let mut time_ours = async || {
            let t = Instant::now();
            ours.cycle().await;
            t.elapsed()
        };
        let (x, y) = if i % 2 == 0 {
            let x = time_ours().await;
            let t = Instant::now();
            raw.cycle().await;
            (x, t.elapsed())
        } else {
            let t = Instant::now();
            raw.cycle().await;
            let y = t.elapsed();
            (time_ours().await, y)
        };
        if i >= 200 {
            a.push(x);
            b.push(y);
        }
    }
    a.sort();
    b.sort();
    let q = |v: &[std::time::Duration], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    println!(
        "paired, {n} cycles each: distlock p50 {:?} p90 {:?}; raw p50 {:?} p90 {:?}; p50 ratio raw/distlock {:.3}",
        q(&a, 0.5),
        q(&a, 0.9),
        q(&b, 0.5),
        q(&b, 0.9),
        q(&b, 0.5).as_secs_f64() / q(&a, 0.5).as_secs_f64()
    );
}

async fn run(which: &str, url: &str, n: u64) {
    match which {
        "distlock" => {
            let mut ours = Distlock::new(url).await;
            for _ in 0..n {
                ours.cycle().await;
            }
        }
        "raw" => {
            let mut raw = Raw::new(url).await;
            for _ in 0..n {
                raw.cycle().await;
            }
        }
        "paired" => paired(url, n).await,
        _ => die("usage: overhead_net distlock|raw|paired redis://…|mysql://… N"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let url = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let runtime = if std::env::var_os("DISTLOCK_OVERHEAD_CURRENT_THREAD").is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    let runtime = runtime.unwrap_or_else(|e| die(e));
    // The CLI keeps warnings only; so does this, to measure what its users get.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .init();
    let started = Instant::now();
    // Like the bench, the loop runs in `block_on` (not on a worker), unless
    // DISTLOCK_OVERHEAD_SPAWN says to run it as a task on a worker.
    if std::env::var_os("DISTLOCK_OVERHEAD_SPAWN").is_some() {
        let task = runtime.spawn(async move { run(&which, &url, n).await });
        if let Err(e) = runtime.block_on(task) {
            die(e)
        }
    } else {
        runtime.block_on(run(&which, &url, n));
    }
    let per = started.elapsed() / u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    eprintln!("{n} cycles, {per:?} per cycle (start-up included)");
}
