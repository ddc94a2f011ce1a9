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
    assert!(err.is_empty(), "{args:?} complained: {err}");
}

fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn demo_into_head_ends_quietly() {
    let url = file_url(&dir("pipe-demo"));
    head_1(&["demo", "--url", &url, "--workers", "4", "--rounds", "50"]);
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
