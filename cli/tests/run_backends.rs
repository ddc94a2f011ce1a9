//! `distlock run` on each server backend: the command runs with the lock's name and
//! fencing token, a contender is turned away, and the run ends promptly (no background
//! clean-up left to wait out).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::time::{Duration, Instant};

use support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn check(url: &str) {
    let start = Instant::now();
    let out = output(
        distlock(&["run", "--url", url, "-n", "job", "-c"])
            .arg("test \"$DISTLOCK_LOCK_NAME\" = job && test -n \"$DISTLOCK_FENCING_TOKEN\""),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{url}: {out:?}");
    eprintln!("{url}: a plain run took {:?}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{url}: a plain run took {:?}",
        start.elapsed()
    );
    // While one run holds the lock, another is turned away with the conflict code.
    let d = dir("backend");
    let ready = d.join("ready");
    let (mut holder, _) = spawn_logged(
        distlock(&["run", "--url", url, "-n", "job", "-c"])
            .arg(format!("echo $$ > {}; sleep 30", ready.display())),
        &d,
    );
    let pid = pids(&ready, 1)[0];
    let _reaper = Reaper(vec![pid]);
    let out = output(distlock(&["run", "--url", url, "-n", "job", "true"]), LIMIT);
    assert_eq!(out.status.code(), Some(75), "{url}: {out:?}");
    kill(holder.id(), "TERM");
    let status = wait_status(&mut holder, LIMIT);
    assert_eq!(status.code(), Some(128 + 15), "{url}");
}

#[cfg(feature = "redis")]
#[test]
fn on_redis() {
    let server = distlock_testkit::redis::RedisServer::start().unwrap();
    check(&server.url());
}

#[cfg(feature = "zookeeper")]
#[test]
fn on_zookeeper() {
    let server = distlock_testkit::zookeeper::ZkServer::start().unwrap();
    check(&server.url());
}

#[cfg(feature = "mysql")]
#[test]
fn on_mariadb() {
    let server = distlock_testkit::mariadb::MariaDbServer::start().unwrap();
    check(&server.url());
}
