//! Every row of `distlock run`'s EXIT STATUS table, and how durations are read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::time::{Duration, Instant};

use distlock::LockExt;
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn run(url: &str, args: &[&str]) -> std::process::Output {
    output(distlock(&["run", "--url", url]).args(args), LIMIT)
}

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn the_commands_own_status() {
    let url = file_url(&dir("own"));
    for (job, want) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 75", 75),
        ("kill -USR1 $$", 138),
    ] {
        let out = run(&url, &["job", "-c", job]);
        assert_eq!(code(&out), Some(want), "{job}: {out:?}");
    }
    let out = run(&url, &["job", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
}

#[test]
fn usage_errors_exit_2() {
    let url = file_url(&dir("usage"));
    for args in [
        &[][..],
        &["job"],
        &["", "true"],
        &["job", "-c", "true", "--", "false"],
        &["--bogus-option", "job", "true"],
        &["-n", "-w", "1s", "job", "true"],
        &["-E", "256", "job", "true"],
    ] {
        let out = run(&url, args);
        assert_eq!(code(&out), Some(2), "{args:?}: {out:?}");
        assert!(!stderr(&out).contains("panicked"), "{out:?}");
    }
}

#[test]
fn durations_read_units_and_reject_nonsense() {
    let url = file_url(&dir("durations"));
    for wait in ["500ms", "30s", "2m", "1h 30m", "1.5", "0"] {
        let out = run(&url, &["-w", wait, "job", "true"]);
        assert_eq!(code(&out), Some(0), "--wait {wait}: {out:?}");
    }
    for flag in ["--wait", "--ttl", "--kill-after"] {
        for bad in ["-1", "-1s", "nan", "inf", "1e30", "soon", "5 parsecs", ""] {
            let out = run(&url, &[flag, bad, "job", "true"]);
            assert_eq!(code(&out), Some(2), "{flag} {bad:?}: {out:?}");
            assert!(stderr(&out).contains("invalid value"), "{out:?}");
        }
    }
}

#[tokio::test]
async fn not_acquired_is_75_or_the_chosen_code_within_the_wait() {
    let d = dir("conflict");
    let url = file_url(&d);
    let holder = distlock_file::FileLock::new(&d).unwrap();
    let guard = holder.try_acquire("job").await.unwrap().unwrap();
    let start = Instant::now();
    let out = run(&url, &["--wait", "300ms", "job", "--", "true"]);
    let took = start.elapsed();
    assert_eq!(code(&out), Some(75), "{out:?}");
    assert!(stderr(&out).contains("held elsewhere"), "{out:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "--wait 300ms took {took:?}"
    );
    let out = run(&url, &["-n", "-E", "9", "job", "--", "true"]);
    assert_eq!(code(&out), Some(9), "{out:?}");
    let out = run(
        &url,
        &["--conflict-exit-code", "0", "-w", "0", "job", "true"],
    );
    assert_eq!(code(&out), Some(0), "{out:?}");
    guard.release().await.unwrap();
    let out = run(&url, &["-n", "job", "--", "true"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
}

#[test]
fn configuration_errors_exit_78() {
    let d = dir("config");
    let out = run("bogus://x", &["job", "true"]);
    assert_eq!(code(&out), Some(78), "{out:?}");
    assert!(stderr(&out).contains("scheme"), "{out:?}");
    let file = d.join("password");
    std::fs::write(&file, "pw").unwrap();
    let out = output(
        distlock(&["run", "--url", "redis://127.0.0.1:1/", "job", "true"])
            .env("DISTLOCK_PASSWORD", "s3cret-pw")
            .env("DISTLOCK_PASSWORD_FILE", &file),
        LIMIT,
    );
    assert_eq!(code(&out), Some(78), "{out:?}");
    assert!(!stderr(&out).contains("s3cret-pw"), "{out:?}");
    let out = output(
        distlock(&["run", "--url", "redis://127.0.0.1:1/", "job", "true"])
            .env("DISTLOCK_PASSWORD_FILE", d.join("missing")),
        LIMIT,
    );
    assert_eq!(code(&out), Some(78), "{out:?}");
}

#[test]
fn an_unreachable_store_exits_69_without_the_password() {
    let port = distlock_testkit::free_port();
    let out = output(
        distlock(&[
            "run",
            "--url",
            &format!("redis://app@127.0.0.1:{port}/"),
            "j",
            "true",
        ])
        .env("DISTLOCK_PASSWORD", "s3cret-pw"),
        LIMIT,
    );
    assert_eq!(code(&out), Some(69), "{out:?}");
    assert!(!stderr(&out).contains("s3cret-pw"), "{out:?}");
}

#[test]
fn a_missing_command_is_127_and_a_non_executable_one_126() {
    let d = dir("exec");
    let url = file_url(&d);
    let out = run(&url, &["job", "--", "/nonexistent/command"]);
    assert_eq!(code(&out), Some(127), "{out:?}");
    let out = run(&url, &["job", "--", "no-such-command-anywhere"]);
    assert_eq!(code(&out), Some(127), "{out:?}");
    let script = d.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let out = run(&url, &["job", "--", script.to_str().unwrap()]);
    assert_eq!(code(&out), Some(126), "{out:?}");
    let out = run(&url, &["job", "--", d.to_str().unwrap()]);
    assert_eq!(code(&out), Some(126), "{out:?}");
    // The lock was released each time.
    let out = run(&url, &["-n", "job", "true"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
}

#[test]
fn the_command_gets_the_lock_name_and_fencing_token() {
    let url = file_url(&dir("env"));
    let out = output(
        distlock(&["run", "--url", &url, "reports/nightly", "-c"])
            .arg("echo \"$DISTLOCK_LOCK_NAME|$DISTLOCK_FENCING_TOKEN|${DISTLOCK_RUN_HOLDER_FOR-unset}\"")
            .env("DISTLOCK_FENCING_TOKEN", "outer"),
        LIMIT,
    );
    assert_eq!(code(&out), Some(0), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(fields[0], "reports/nightly");
    assert!(fields[1].parse::<u64>().is_ok(), "{line}");
    assert_eq!(fields[2], "unset", "{line}");
}

#[test]
fn verbose_and_rust_log_show_tracing_events() {
    let url = file_url(&dir("verbose"));
    let quiet = run(&url, &["job", "true"]);
    assert!(!stderr(&quiet).contains("acquired"), "{quiet:?}");
    let verbose = output(
        distlock(&["-v", "run", "--url", &url, "job", "true"]),
        LIMIT,
    );
    assert!(stderr(&verbose).contains("acquired"), "{verbose:?}");
    let logged = output(
        distlock(&["run", "--url", &url, "job", "true"]).env("RUST_LOG", "distlock=info"),
        LIMIT,
    );
    assert!(stderr(&logged).contains("acquired"), "{logged:?}");
}
