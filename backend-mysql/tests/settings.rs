//! What a client is told about its settings and its server: a missing database, a server
//! nobody listens on, two modes on one database, and a free name among many holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::{Duration, Instant};

use distlock_core::{ErrorKind, LockExt};
use distlock_mysql::MySqlLock;
use distlock_testkit::mariadb::MariaDbServer;

use common::shared_server;

/// Issue 10: a missing database was created (`CREATE DATABASE distlock`); now it is a
/// clear `Config` error, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_database_is_a_config_error_and_is_not_created() {
    let server = shared_server().expect("own server");
    let url = server.url_for("no_such_db");
    let e = MySqlLock::connect(&url).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("no_such_db"), "{e}");
    let databases = server.sql("SHOW DATABASES").unwrap();
    assert!(!databases.contains("no_such_db"), "{databases}");
}

/// Issue 10: `GET_LOCK` and row-lock clients of one name did not exclude each other; now a
/// database serves one mode and a client of the other is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_modes_refuse_to_share_a_database() {
    let server = shared_server().expect("own server");
    server
        .sql("CREATE DATABASE IF NOT EXISTS shared_modes")
        .unwrap();
    let url = server.url_for("shared_modes");
    let get_lock = MySqlLock::connect(&format!("{url}?mode=get_lock"))
        .await
        .unwrap();
    let g = get_lock.try_acquire("both").await.unwrap().expect("free");
    let e = MySqlLock::connect(&format!("{url}?mode=row_lock"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("get_lock"), "{e}");
    // A row-lock client built without connecting is refused at its first acquire.
    let lazy = MySqlLock::new(
        distlock_mysql::MySqlConfig::from_url(&format!("{url}?mode=row_lock")).unwrap(),
    );
    assert_eq!(
        lazy.try_acquire("both").await.unwrap_err().kind(),
        ErrorKind::Config
    );
    g.release().await.unwrap();
}

/// Issue 8: with nothing listening, the error came after a 6 s pool timeout and named
/// neither the address nor the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_prompt_connection_error_naming_the_address() {
    let port = distlock_testkit::free_port();
    let started = Instant::now();
    let e = MySqlLock::connect(&format!("mysql://app:pw@127.0.0.1:{port}/x"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    let shown = e.to_string();
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
    assert!(took < Duration::from_secs(1), "took {took:?}: {shown}");
}

/// Issue 10: with about 230 names held in row-lock mode, a never-used name read as busy
/// (its row's insert waited on a gap lock of an unrelated holder's open transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_lock_a_fresh_name_is_free_among_a_thousand_holds() {
    const HOLDS: usize = 1000;
    let server = MariaDbServer::start_with(&["--max-connections=1100"]).unwrap();
    let url = format!(
        "{}?mode=row_lock&probe_interval=30s",
        server.url_for(distlock_testkit::mariadb::ROW_LOCK_DATABASE)
    );
    let locks = MySqlLock::connect(&url).await.unwrap();
    let run = async {
        let mut guards = Vec::with_capacity(HOLDS);
        // Sixteen at a time: the machine is small, and this is about the number held.
        for chunk in (0..HOLDS).collect::<Vec<_>>().chunks(16) {
            let batch = chunk.iter().map(|i| {
                let locks = locks.clone();
                async move { locks.try_acquire(&format!("held/{i:04}")).await }
            });
            for got in futures::future::join_all(batch).await {
                guards.push(got.unwrap().expect("a free name among the holds"));
            }
        }
        // Server keys are the lower-cased name, a dot and a digest, so "held/0042x" sorts
        // between the rows of "held/0042" and "held/0043": every gap between two held
        // rows (and before the first and after the last) gets a new row.
        let mut fresh: Vec<String> = (0..HOLDS).map(|i| format!("held/{i:04}x")).collect();
        fresh.extend(["aaa".to_string(), "zzz".to_string()]);
        for chunk in fresh.chunks(16) {
            let batch = chunk.iter().map(|name| {
                let locks = locks.clone();
                async move {
                    let got = locks.try_acquire(name).await.unwrap();
                    let g = got.unwrap_or_else(|| panic!("{name:?} is free but read as busy"));
                    g.release().await.unwrap();
                }
            });
            futures::future::join_all(batch).await;
        }
        for fresh in ["fresh/a", "zzz/fresh", "aaa/b", "held/0500y"] {
            let started = Instant::now();
            let g = locks
                .try_acquire(fresh)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{fresh:?} is free but read as busy"));
            assert!(started.elapsed() < Duration::from_secs(2));
            g.release().await.unwrap();
            let g = locks
                .acquire_timeout(&format!("{fresh}/wait"), Duration::from_secs(2))
                .await
                .unwrap();
            g.release().await.unwrap();
        }
        for g in guards {
            g.release().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("test took too long");
}

/// Settings built in code without a database are refused at the first acquire, before
/// any connection is made (distlock never creates or picks a database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_without_a_database_are_refused() {
    let options = distlock_mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(distlock_testkit::free_port());
    let locks = MySqlLock::new(distlock_mysql::MySqlConfig::new(options));
    let e = locks.try_acquire("no-db").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("database"), "{e}");
}
