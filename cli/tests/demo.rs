//! `distlock demo` end to end: the flash sale on lock files and on throwaway servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distlock"))
        .arg("demo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run distlock demo")
}

/// Runs `demo --json` and returns its one JSON object, after checking its shape.
fn demo_json(args: &[&str]) -> Value {
    let started = Instant::now();
    let out = demo(&[&["--json"], args].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert_eq!(stdout.lines().count(), 1, "exactly one JSON line: {stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "buyers",
            "stale_write_rejected",
            "stock",
            "with_lock",
            "without_lock"
        ],
        "{v}"
    );
    eprintln!("demo {args:?}: {v} in {:.1?}", started.elapsed());
    v
}

/// Act 1 oversold, act 2 sold exactly the stock.
fn assert_sale(v: &Value, stock: u64) {
    assert_eq!(v["stock"], stock, "{v}");
    assert!(
        v["without_lock"]["sold"].as_u64().unwrap() > stock,
        "no oversell without the lock: {v}"
    );
    assert_eq!(v["with_lock"]["sold"], stock, "{v}");
    assert_eq!(v["with_lock"]["sold_twice"], 0, "{v}");
}

#[test]
fn file_default_oversells_without_the_lock_and_sells_exactly_with_it() {
    let started = Instant::now();
    let v = demo_json(&[]);
    assert_sale(&v, 1);
    assert_eq!(v["buyers"], 16);
    assert_eq!(v["stale_write_rejected"], Value::Null);
    // "A few seconds" on a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    let v = demo_json(&["--buyers", "5", "--stock", "3"]);
    assert_sale(&v, 3);
    assert_eq!(v["buyers"], 5);
}

#[test]
fn the_table_names_the_oversell_and_the_exact_sale() {
    let out = demo(&["--buyers", "4"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("OVERSOLD"), "{stdout}");
    assert!(stdout.contains("exact: every item sold once"), "{stdout}");
    assert!(stdout.contains("item 1 went to buyer"), "{stdout}");
}

#[test]
fn bad_input_is_a_usage_error() {
    for args in [
        &["--buyers", "0"][..],
        &["--buyers", "257"],
        &["--stock", "0"],
        &["--stock", "10001"],
        &["--payment", "soon"],
        &["--payment", "1h"],
        &["--url", "memory://"],
        &["--url", "redis+redlock://a:1,b:2,c:3/"],
    ] {
        let out = demo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Not a usage error, but no password in the complaint either.
    let out = demo(&["--url", "postgres://u:hunter2@db/x"]);
    assert_ne!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn a_closed_stdout_does_not_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args(["demo", "--buyers", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -0`: the reader is gone before the report is written.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn redis_fences_the_paused_holder() {
    let server = distlock_testkit::redis::RedisServer::start().unwrap();
    let v = demo_json(&["--url", &server.url(), "--buyers", "8"]);
    assert_sale(&v, 1);
    assert_eq!(v["stale_write_rejected"], true, "{v}");
    // The stock and its fence token are gone (the lock backend's own fencing counter for
    // the run's lock name, `distlock:{…}:fence`, is the backend's, kept by design).
    let keys = distlock_testkit::redis::raw_command(server.port(), "KEYS distlock-demo*").unwrap();
    assert_eq!(keys, "*0\r\n", "left behind: {keys}");
}

#[test]
fn zookeeper_fences_the_paused_holder() {
    let server = distlock_testkit::zookeeper::ZkServer::start().unwrap();
    let v = demo_json(&["--url", &server.url(), "--buyers", "6"]);
    assert_sale(&v, 1);
    assert_eq!(v["stale_write_rejected"], true, "{v}");
}

#[test]
fn mariadb_sells_exactly() {
    let server = distlock_testkit::mariadb::MariaDbServer::start().unwrap();
    let v = demo_json(&["--url", &server.url(), "--buyers", "6", "--stock", "2"]);
    assert_sale(&v, 2);
    assert_eq!(v["stale_write_rejected"], Value::Null);
    // The tables live in the URL's database.
    let db = distlock_testkit::mariadb::GET_LOCK_DATABASE;
    let rows = server
        .sql(&format!(
            "SELECT COUNT(*) FROM {db}.distlock_demo_stock; \
             SELECT COUNT(*) FROM {db}.distlock_fenced_writes;"
        ))
        .unwrap();
    assert_eq!(
        rows.split_whitespace().filter(|w| *w == "0").count(),
        2,
        "rows left: {rows}"
    );
}
