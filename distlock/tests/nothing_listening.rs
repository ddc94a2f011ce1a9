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

/// A server that accepts connections and never answers (a hung proxy, a frozen server)
/// must not hang the connect: it fails as `Connection` within the probe timeout.
#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_that_never_answers_is_a_bounded_connection_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut accepted = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            accepted.push(socket); // held open, never written to
        }
    });
    let url = format!("mysql://app:hunter2@127.0.0.1:{port}/locks?probe_timeout=1s");
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), distlock::connect(&url)).await;
    let took = started.elapsed();
    silent.abort();
    let e = match outcome {
        Err(_) => panic!("connect still hung after {took:?}"),
        Ok(Ok(_)) => panic!("connected to a server that never answers"),
        Ok(Err(e)) => e,
    };
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Connection, "{shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {shown}");
}
