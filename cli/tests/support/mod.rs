//! Helpers for the `distlock run` end-to-end tests: start `distlock`, wait for files the
//! jobs write, look at processes in `/proc`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A fresh scratch directory under target/.
pub fn dir(label: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "run-{label}-{}-{}",
        std::process::id(),
        uuid_ish()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// `file://DIR`.
pub fn file_url(d: &Path) -> String {
    format!("file://{}", d.display())
}

/// `distlock ARGS` with a clean environment for its variables.
pub fn distlock(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_distlock"));
    c.args(args)
        .env_remove("DISTLOCK_URL")
        .env_remove("DISTLOCK_PASSWORD")
        .env_remove("DISTLOCK_PASSWORD_FILE")
        .env_remove("RUST_LOG");
    c
}

/// Runs to the end, bounded: a hung distlock fails the test instead of the whole run.
pub fn output(mut command: impl std::borrow::BorrowMut<Command>, limit: Duration) -> Output {
    let child = command
        .borrow_mut()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, limit)
}

/// Waits for `child` (spawned with piped output), killing it after `limit`.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            // Not its output: what the job left behind may hold the pipes open.
            panic!("distlock did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Starts `command` with stdout and stderr going to files in `d` (not pipes, which what a
/// broken job leaves behind could hold open); returns the child and the stderr file.
pub fn spawn_logged(command: &mut Command, d: &Path) -> (Child, PathBuf) {
    let err = d.join("distlock.stderr");
    let child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(d.join("distlock.stdout")).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    (child, err)
}

/// Waits for `child`, killing it and failing after `limit`.
pub fn wait_status(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("distlock did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `check` until true, failing after `limit` with `what`.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what} (after {limit:?})");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids a job wrote to `file`, one per line, once it has `count` of them. Jobs write
/// `$$` lines with `echo $$ >> file` (whole short lines are appended atomically).
pub fn pids(file: &Path, count: usize) -> Vec<u32> {
    let mut found = Vec::new();
    eventually(Duration::from_secs(20), "the job never started", || {
        found = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        found.len() >= count
    });
    found
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends `signal` (a `kill` name like `TERM`) to `pid`.
pub fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Kills leftovers of a failed test so that they do not outlive the run.
pub struct Reaper(pub Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in &self.0 {
            if alive(*pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(p);
        }
    }
    found
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
