//! No server outlives its test process: not when the test panics, not when the process is
//! killed with SIGKILL. Each case re-runs this binary as a child that starts a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use distlock_testkit::redis::RedisServer;

const ROLE: &str = "TESTKIT_NO_SURVIVORS_ROLE";

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

/// The child: start a server, report its pid, then panic or wait to be killed.
fn child(role: &str) {
    let server = RedisServer::start().unwrap();
    println!("server-pid {}", server.pid().unwrap());
    match role {
        "panic" => panic!("deliberate panic with a live server"),
        _ => std::thread::sleep(Duration::from_secs(120)),
    }
}

fn run_child(test: &str, role: &str, kill: bool) -> (u32, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid = loop {
        let line = lines.next().expect("child output").unwrap();
        if let Some(at) = line.find("server-pid ") {
            break line[at + 11..].trim().parse::<u32>().unwrap();
        }
    };
    assert!(alive(pid));
    if kill {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (pid, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_gone(pid: u32) {
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "redis-server {pid} outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_panicking_test_kills_its_server_and_prints_its_log() {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role);
    }
    let (pid, stderr) = run_child(
        "a_panicking_test_kills_its_server_and_prints_its_log",
        "panic",
        false,
    );
    assert_gone(pid);
    assert!(
        stderr.contains("testkit: last lines of redis"),
        "no server log on panic:\n{stderr}"
    );
}

#[test]
fn a_killed_test_process_takes_its_server_with_it() {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role);
    }
    let (pid, _) = run_child(
        "a_killed_test_process_takes_its_server_with_it",
        "wait",
        true,
    );
    assert_gone(pid);
}
