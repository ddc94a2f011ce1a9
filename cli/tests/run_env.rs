//! The lock URL and its password from the environment: nothing secret on the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::time::Duration;

use support::*;

const LIMIT: Duration = Duration::from_secs(30);
/// A password that breaks naive URL splicing.
const PASSWORD: &str = "p@ss:w/rd?#%";

#[test]
fn the_url_comes_from_distlock_url() {
    let d = dir("env-url");
    let out = output(
        distlock(&["run", "job", "-c", "exit 4"]).env("DISTLOCK_URL", file_url(&d)),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // The lock files went where DISTLOCK_URL said.
    assert!(std::fs::read_dir(&d).unwrap().next().is_some());
}

#[cfg(feature = "redis")]
#[test]
fn the_password_comes_from_the_environment_not_argv() {
    let server = distlock_testkit::redis::RedisServer::start().unwrap();
    // Set after the start: the testkit's readiness PING carries no password.
    let reply = distlock_testkit::redis::raw_command(
        server.port(),
        &format!("CONFIG SET requirepass \"{PASSWORD}\""),
    )
    .unwrap();
    assert!(reply.starts_with("+OK"), "{reply}");
    let url = server.url();
    assert!(!url.contains(PASSWORD));
    let job = ["job", "-c", "test -n \"$DISTLOCK_FENCING_TOKEN\" && exit 5"];

    // No password: refused by the server, and the command never runs.
    let out = output(distlock(&["run", "--url", &url]).args(job), LIMIT);
    assert!(
        matches!(out.status.code(), Some(69 | 78)),
        "ran without the password: {out:?}"
    );

    let out = output(
        distlock(&["run", "--url", &url])
            .args(job)
            .env("DISTLOCK_PASSWORD", PASSWORD),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");

    let d = dir("env-password");
    let file = d.join("redis-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let out = output(
        distlock(&["run", "job", "-c", "exit 6"])
            .env("DISTLOCK_URL", &url)
            .env("DISTLOCK_PASSWORD_FILE", &file),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(6), "{out:?}");

    // A wrong password fails without being shown.
    let out = output(
        distlock(&["-vvv", "run", "--url", &url])
            .args(job)
            .env("DISTLOCK_PASSWORD", "wrong-p@ss"),
        LIMIT,
    );
    assert!(matches!(out.status.code(), Some(69 | 78)), "{out:?}");
    let said = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(
        !said.contains("wrong-p@ss") && !said.contains("wrong-p%40ss"),
        "{said}"
    );
}
