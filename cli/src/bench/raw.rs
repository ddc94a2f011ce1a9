//! The raw store primitive each backend is built on, on one connection, without distlock:
//! the baseline the benchmark compares against.

use std::time::{Duration, Instant};

use distlock::{LockError, Result};

/// One raw take-and-free, timed per iteration. `None` when the URL's backend has no
/// single-connection primitive to compare with (cluster, Redlock, memory).
pub(crate) async fn measure(
    url: &str,
    iterations: usize,
) -> Result<Option<(&'static str, Vec<Duration>)>> {
    // Each backend's own scheme list (case-insensitive), not a copy of it.
    let scheme = distlock::settings::scheme_of(url).unwrap_or_default();
    let of = |schemes: &[&str]| schemes.contains(&scheme.as_str());
    if of(distlock::file::SCHEMES) {
        return file(url, iterations).map(Some);
    }
    #[cfg(feature = "redis")]
    if of(distlock::redis::SCHEMES) {
        let (mode, _) = distlock::redis::parse_url(url)?;
        if mode == distlock::redis::Mode::Single {
            return redis_raw(url, iterations).await.map(Some);
        }
    }
    #[cfg(feature = "mysql")]
    if of(distlock::mysql::SCHEMES) {
        return mysql_raw(url, iterations).await.map(Some);
    }
    #[cfg(feature = "zookeeper")]
    if of(distlock::zookeeper::SCHEMES) {
        return zk_raw(url, iterations).await.map(Some);
    }
    Ok(None)
}

fn file(url: &str, iterations: usize) -> Result<(&'static str, Vec<Duration>)> {
    let dir = url.trim_start_matches("file://");
    std::fs::create_dir_all(dir).map_err(|e| LockError::config("lock directory").with_source(e))?;
    // Not a name the file backend can produce (its lock files are `<escaped>.lock` or
    // `<prefix>.<32 hex>.lock`), so the raw run never contends with a real lock.
    let path = std::path::Path::new(dir).join("distlock-bench.raw");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| LockError::backend("open").with_source(e))?;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        file.try_lock()
            .map_err(|e| LockError::backend(format!("raw flock: {e}")))?;
        file.unlock()
            .map_err(|e| LockError::backend("unlock").with_source(e))?;
        samples.push(start.elapsed());
    }
    Ok(("flock try_lock + unlock on one open file", samples))
}

#[cfg(feature = "redis")]
async fn redis_raw(url: &str, iterations: usize) -> Result<(&'static str, Vec<Duration>)> {
    let plain = url.split('?').next().unwrap_or(url);
    let fail = |e: redis::RedisError| LockError::connection(format!("raw redis: {:?}", e.kind()));
    let client = redis::Client::open(plain).map_err(fail)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(fail)?;
    let release = redis::Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
    );
    let key = "distlock-bench-raw";
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut conn)
            .await
            .map_err(fail)?;
        if set.is_none() {
            return Err(LockError::backend("raw SET NX found the bench key taken"));
        }
        let _: i64 = release
            .key(key)
            .arg(&token)
            .invoke_async(&mut conn)
            .await
            .map_err(fail)?;
        samples.push(start.elapsed());
    }
    Ok((
        "SET NX PX + compare-and-delete (EVALSHA) on one connection",
        samples,
    ))
}

#[cfg(feature = "mysql")]
async fn mysql_raw(url: &str, iterations: usize) -> Result<(&'static str, Vec<Duration>)> {
    use sqlx::Connection;
    // The backend's own URL parsing, so both runs connect the same way.
    let config = distlock::mysql::MySqlConfig::from_url(url)?;
    let fail = |e: sqlx::Error| LockError::connection("raw mysql").with_source(e);
    let mut conn = sqlx::MySqlConnection::connect_with(config.connect_options())
        .await
        .map_err(fail)?;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let got: (Option<i64>,) = sqlx::query_as("SELECT GET_LOCK('distlock-bench-raw', 0)")
            .fetch_one(&mut conn)
            .await
            .map_err(fail)?;
        if got.0 != Some(1) {
            return Err(LockError::backend(
                "raw GET_LOCK found the bench lock taken",
            ));
        }
        let _: (Option<i64>,) = sqlx::query_as("SELECT RELEASE_LOCK('distlock-bench-raw')")
            .fetch_one(&mut conn)
            .await
            .map_err(fail)?;
        samples.push(start.elapsed());
    }
    let _ = conn.close().await;
    Ok((
        "GET_LOCK(name, 0) + RELEASE_LOCK on one connection",
        samples,
    ))
}

#[cfg(feature = "zookeeper")]
async fn zk_raw(url: &str, iterations: usize) -> Result<(&'static str, Vec<Duration>)> {
    use zookeeper_client::{Acls, Client, CreateMode};
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let hosts = rest.split(['/', '?']).next().unwrap_or("");
    let fail = |e: zookeeper_client::Error| LockError::connection(format!("raw zookeeper: {e}"));
    let client = Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(hosts)
        .await
        .map_err(fail)?;
    let mode = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let path = format!("/distlock-bench-raw-{}", uuid::Uuid::new_v4().simple());
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        client.create(&path, &[], &mode).await.map_err(fail)?;
        client.delete(&path, None).await.map_err(fail)?;
        samples.push(start.elapsed());
    }
    Ok(("create EPHEMERAL + delete on one session", samples))
}
