//! The `distlock` binary end to end, on the file backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::process::Command;

use distlock::LockExt;

fn dir(label: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{label}-{}", std::process::id()))
}

#[test]
fn run_passes_the_exit_code_and_the_fencing_token() {
    let url = format!("file://{}", dir("run").display());
    let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args(["run", "--url", &url, "--name", "job", "--"])
        .args(["sh", "-c", "test -n \"$DISTLOCK_FENCING_TOKEN\" && exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
}

#[tokio::test]
async fn run_exits_75_when_the_lock_is_held_elsewhere() {
    let d = dir("held");
    let holder = distlock_file::FileLock::new(&d).unwrap();
    let guard = holder.try_acquire("job").await.unwrap().unwrap();
    let url = format!("file://{}", d.display());
    let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args([
            "run", "--url", &url, "--name", "job", "--wait", "0.2", "--", "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    guard.release().await.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args([
            "run", "--url", &url, "--name", "job", "--wait", "0", "--", "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Starts `distlock run` holding `job` in `d` around a `sleep 30` whose pid it returns.
fn run_sleeper(d: &std::path::Path) -> (std::process::Child, String) {
    std::fs::create_dir_all(d).unwrap();
    let pidfile = d.join("command.pid");
    let url = format!("file://{}", d.display());
    let child = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args(["run", "--url", &url, "--name", "job", "--"])
        .args([
            "sh",
            "-c",
            &format!(
                "echo $$ > {}.tmp && mv {0}.tmp {0} && exec sleep 30",
                pidfile.display()
            ),
        ])
        .spawn()
        .unwrap();
    let mut child = child;
    let start = std::time::Instant::now();
    loop {
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            return (child, pid.trim().to_string());
        }
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command never started");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn wait_dead(pid: &str) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Do not leave it behind for the rest of the run.
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -9 {pid}")])
        .status();
    false
}

#[tokio::test]
async fn run_forwards_sigterm_and_keeps_the_lock_until_the_command_exited() {
    let d = dir("sigterm");
    let (mut distlock, pid) = run_sleeper(&d);
    let other = distlock_file::FileLock::new(&d).unwrap();
    assert!(other.try_acquire("job").await.unwrap().is_none());
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", distlock.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = distlock.wait().unwrap();
    assert!(
        wait_dead(&pid),
        "the command kept running after distlock was stopped (and its lock freed)"
    );
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    let g = other.try_acquire("job").await.unwrap();
    assert!(g.is_some(), "the lock stayed held");
}

#[test]
fn a_killed_distlock_takes_its_command_with_it() {
    let d = dir("sigkill");
    let (mut distlock, pid) = run_sleeper(&d);
    distlock.kill().unwrap();
    let _ = distlock.wait();
    assert!(
        wait_dead(&pid),
        "the command outlived a SIGKILLed distlock, running without the lock"
    );
}

#[test]
fn run_rejects_a_nonsense_wait_without_panicking() {
    let url = format!("file://{}", dir("nan").display());
    for wait in ["nan", "inf", "1e30"] {
        let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
            .args([
                "run", "--url", &url, "--name", "job", "--wait", wait, "--", "true",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--wait {wait}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid value"), "{out:?}");
        assert!(!stderr.contains("panicked"), "{out:?}");
    }
}
