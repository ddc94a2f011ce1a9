//! A closed stdout (`distlock demo | head -1`) ends the program quietly: no panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use support::*;

/// Runs `distlock ARGS`, reads one line of its output and closes the pipe, like `head -1`.
fn head_1(args: &[&str]) {
    let mut child = distlock(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.is_empty());
    // The reader is dropped here: the pipe is closed.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    let quiet = out.status.code() == Some(0) || out.status.signal() == Some(libc_sigpipe());
    assert!(quiet, "{args:?}: {:?}\n{err}", out.status);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    // A debug build of `bench` says, as it must, that its figures are not comparable.
    let complaints: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("built without optimisations"))
        .collect();
    assert!(complaints.is_empty(), "{args:?} complained: {err}");
}

fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn demo_into_head_ends_quietly() {
    let url = file_url(&dir("pipe-demo"));
    // Only --url: the demo's other options are its own business.
    head_1(&["demo", "--url", &url]);
}

#[test]
fn bench_into_head_ends_quietly() {
    let url = file_url(&dir("pipe-bench"));
    head_1(&[
        "bench",
        "--url",
        &url,
        "--iterations",
        "50",
        "--clients",
        "2",
        "--seconds",
        "0.3",
    ]);
}

#[test]
fn run_with_a_closed_stderr_still_runs_and_releases() {
    let d = dir("pipe-run");
    let go = d.join("go");
    let mut child = distlock(&["-vv", "run", "--url", &file_url(&d), "job", "-c"])
        .arg(format!(
            "while [ ! -e {0} ]; do sleep 0.01; done; exit 3",
            go.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before distlock reports the end of the command and the release.
    drop(child.stderr.take());
    std::fs::write(&go, "").unwrap();
    let status = wait_status(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(3), "{status:?}");
    let again = output(
        distlock(&["run", "--url", &file_url(&d), "-n", "job", "true"]),
        Duration::from_secs(20),
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "the lock stayed held: {again:?}"
    );
}
