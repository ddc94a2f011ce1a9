//! Issue 8: with nothing listening, every backend fails fast with a `Connection` error that
//! names the address and the refusal (MySQL used to say "pool timed out" after 6 s,
//! ZooKeeper "timeout" with no address). Schemes are case-insensitive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::{Duration, Instant};

use distlock::ErrorKind;

/// How long a refused connect may take to be reported, with slack for a loaded machine.
const PROMPT: Duration = Duration::from_millis(1500);

#[allow(dead_code)] // unused when no server backend is built
async fn assert_refused_promptly(url: &str, port: u16) {
    let started = Instant::now();
    let e = match distlock::connect(url).await {
        Ok(_) => panic!("{url}: connected to nothing"),
        Err(e) => e,
    };
    let took = started.elapsed();
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Connection, "{url}: {shown}");
    assert!(
        shown.contains(&format!("127.0.0.1:{port}")),
        "{url}: {shown}"
    );
    assert!(shown.to_lowercase().contains("refused"), "{url}: {shown}");
    assert!(!shown.contains("hunter2"), "{url}: {shown}");
    assert!(took < PROMPT, "{url}: took {took:?}: {shown}");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis() {
    let port = distlock_testkit::free_port();
    assert_refused_promptly(&format!("REDIS://:hunter2@127.0.0.1:{port}/"), port).await;
}

#[cfg(feature = "zookeeper")]
#[tokio::test]
async fn zookeeper() {
    let port = distlock_testkit::free_port();
    assert_refused_promptly(&format!("ZK://u:hunter2@127.0.0.1:{port}/app"), port).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql() {
    let port = distlock_testkit::free_port();
    assert_refused_promptly(&format!("MySQL://app:hunter2@127.0.0.1:{port}/locks"), port).await;
}
