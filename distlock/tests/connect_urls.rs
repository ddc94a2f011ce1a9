//! `distlock::connect` reaches every backend compiled in, by URL alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use distlock::{DistributedLock, LockExt};

/// Two clients from one URL exclude each other, and the lock is released on request.
async fn exclude_by_url(url: &str) {
    let a: Box<dyn DistributedLock> = distlock::connect(url).await.unwrap();
    let b = distlock::connect(url).await.unwrap();
    let g = a
        .try_acquire("facade/url")
        .await
        .unwrap()
        .expect("free lock");
    assert!(b.try_acquire("facade/url").await.unwrap().is_none());
    g.release().await.unwrap();
    let g = b
        .try_acquire("facade/url")
        .await
        .unwrap()
        .expect("freed lock");
    g.release().await.unwrap();
}

#[tokio::test]
async fn file_url() {
    let dir = std::env::temp_dir().join(format!("distlock-facade-{}", std::process::id()));
    exclude_by_url(&format!("file://{}", dir.display())).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_url() {
    let server = distlock_testkit::mariadb::MariaDbServer::start().unwrap();
    exclude_by_url(&server.url()).await;
    let rows = server.url_for(distlock_testkit::mariadb::ROW_LOCK_DATABASE);
    exclude_by_url(&format!("{rows}?mode=row_lock")).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_urls() {
    let servers = distlock_testkit::redis::start_many(3).unwrap();
    exclude_by_url(&servers[0].url()).await;
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    exclude_by_url(&format!("redis+redlock://{}/", hosts.join(","))).await;
}

#[cfg(feature = "zookeeper")]
#[tokio::test]
async fn zookeeper_url() {
    let server = distlock_testkit::zookeeper::ZkServer::start().unwrap();
    exclude_by_url(&server.url()).await;
}
