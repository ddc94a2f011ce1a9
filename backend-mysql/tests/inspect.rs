//! `Inspect` on MariaDB in both modes: holders, break, doctor, on a throwaway server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use distlock_core::{DistributedLock, ErrorKind, Inspect, LockExt, LockName, Severity};
use distlock_mysql::{server_key, MySqlLock};
use distlock_testkit::mariadb::MariaDbServer;

/// The testkit's database for `mode` (the modes refuse to share one).
async fn client(port: u16, mode: &str) -> MySqlLock {
    let database = match mode {
        "get_lock" => distlock_testkit::mariadb::GET_LOCK_DATABASE,
        _ => distlock_testkit::mariadb::ROW_LOCK_DATABASE,
    };
    MySqlLock::connect(&format!(
        "mysql://root@127.0.0.1:{port}/{database}?mode={mode}&probe_interval=300ms&probe_timeout=1s"
    ))
    .await
    .unwrap()
}

fn inspector(lock: &MySqlLock) -> &dyn Inspect {
    lock.inspect().expect("MySQL offers Inspect")
}

fn key(name: &str) -> String {
    server_key(&LockName::new(name).unwrap())
}

async fn holders_and_break(port: u16, mode: &str) {
    let (a, b, c) = (
        client(port, mode).await,
        client(port, mode).await,
        client(port, mode).await,
    );
    let ga = a.acquire("jobs/a").await.unwrap();
    let gb = b.acquire("jobs/b").await.unwrap();
    let gc = c.acquire("other").await.unwrap();
    a.acquire("jobs/free")
        .await
        .unwrap()
        .release()
        .await
        .unwrap();

    let mut all = inspector(&c).holders("").await.unwrap();
    all.sort_by(|x, y| x.name.cmp(&y.name));
    let names: Vec<&str> = all.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [key("jobs/a"), key("jobs/b"), key("other")],
        "{mode}"
    );
    for (h, g) in all.iter().zip([&ga, &gb, &gc]) {
        assert_eq!(h.fencing_token, g.fencing_token(), "{mode}: {h:?}");
        assert!(
            h.session.is_some() && h.meta.host.is_some(),
            "{mode}: {h:?}"
        );
    }
    assert_eq!(
        inspector(&a).holders("jobs/").await.unwrap().len(),
        2,
        "{mode}"
    );

    let broken = inspector(&b)
        .break_lock(&LockName::new("jobs/a").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(broken.name, key("jobs/a"));
    let lost = tokio::time::timeout(Duration::from_secs(3), ga.lost())
        .await
        .unwrap_or_else(|_| panic!("{mode}: no lost signal within the probe backstop"));
    assert_eq!(lost.kind(), ErrorKind::Lost);
    assert_eq!(ga.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
    let next = b
        .acquire_timeout("jobs/a", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(next.fencing_token() > broken.fencing_token, "{mode}");

    for g in [next, gb, gc] {
        g.release().await.unwrap();
    }
    assert!(
        inspector(&a).holders("").await.unwrap().is_empty(),
        "{mode}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_break_and_doctor_in_both_modes() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let server = MariaDbServer::start().unwrap();
        let port = server.port();
        holders_and_break(port, "get_lock").await;
        holders_and_break(port, "row_lock").await;

        let lock = client(port, "get_lock").await;
        let findings = inspector(&lock).doctor().await.unwrap();
        assert!(
            findings.iter().all(|f| f.severity == Severity::Pass),
            "{findings:?}"
        );

        // A wait_timeout below the probe interval: new sessions get it.
        sqlx_set(port, "SET GLOBAL wait_timeout = 1").await;
        let slow_probe = MySqlLock::connect(&format!(
            "{}?probe_interval=2s",
            server.url_for(distlock_testkit::mariadb::GET_LOCK_DATABASE)
        ))
        .await
        .unwrap();
        let findings = inspector(&slow_probe).doctor().await.unwrap();
        let wait = findings.iter().find(|f| f.check == "wait_timeout").unwrap();
        assert_eq!(wait.severity, Severity::Warn, "{findings:?}");
        assert!(wait.fix.as_deref().unwrap().contains("wait_timeout"));
    })
    .await
    .unwrap();
}

async fn sqlx_set(port: u16, statement: &'static str) {
    use sqlx::Connection;
    let mut conn = sqlx::MySqlConnection::connect(&format!("mysql://root@127.0.0.1:{port}/"))
        .await
        .unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}
