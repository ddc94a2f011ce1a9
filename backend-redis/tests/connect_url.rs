//! `connect(url)` reaches every mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use distlock_core::LockExt;
use distlock_testkit::redis::{start_many, RedisCluster, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_cluster_and_redlock_urls_connect_and_lock() {
    let server = RedisServer::start().unwrap();
    let url = format!("redis://127.0.0.1:{}/1?prefix=app:&ttl=2s", server.port());
    let locks = distlock_redis::connect(&url).await.unwrap();
    assert!(locks.capabilities().fencing);
    let g = locks.try_acquire("by-url").await.unwrap().unwrap();
    let mut side = redis::Client::open(format!("redis://127.0.0.1:{}/1", server.port()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg("app:{by-url}:lock")
        .query_async(&mut side)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 2000,
        "prefix or ttl not applied: PTTL {ttl}"
    );
    g.release().await.unwrap();

    let cluster = RedisCluster::start().unwrap();
    let hosts: Vec<String> = cluster
        .ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let locks = distlock_redis::connect(&format!("redis+cluster://{}/", hosts.join(",")))
        .await
        .unwrap();
    let g = locks.try_acquire("by-url").await.unwrap().unwrap();
    assert!(g.fencing_token().is_some());
    g.release().await.unwrap();

    let servers = start_many(3).unwrap();
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let locks = distlock_redis::connect(&format!("redis+redlock://{}/", hosts.join(",")))
        .await
        .unwrap();
    assert!(!locks.capabilities().fencing);
    let g = locks.try_acquire("by-url").await.unwrap().unwrap();
    assert!(g.fencing_token().is_none());
    g.release().await.unwrap();
}
