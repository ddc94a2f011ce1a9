//! Signals: caught before acquiring (a signal while waiting cancels the wait and leaves
//! nothing held), forwarded to the job once it runs, a second one escalates to SIGKILL,
//! and the exit status is the command's own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use distlock::LockExt;
use support::*;

/// Starts `distlock run` on `url` with the shell command `job`, which must write its pid
/// to `pids` once ready; returns the distlock child and the job's pid.
fn start(url: &str, pids_file: &std::path::Path, job: &str) -> (std::process::Child, u32) {
    let child = distlock(&["run", "--url", url, "job", "-c", job])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = pids(pids_file, 1)[0];
    (child, pid)
}

#[test]
fn after_a_forwarded_signal_the_exit_status_is_the_commands_own() {
    let d = dir("own-status");
    let pids_file = d.join("pids");
    let job = format!(
        "trap 'exit 7' TERM; echo $$ >> {}; while :; do sleep 0.05; done",
        pids_file.display()
    );
    let (child, pid) = start(&file_url(&d), &pids_file, &job);
    let _reaper = Reaper(vec![pid]);
    kill(child.id(), "TERM");
    let out = wait_output(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(!alive(pid));
}

#[test]
fn a_second_signal_sends_sigkill() {
    let d = dir("escalate");
    let pids_file = d.join("pids");
    let job = format!(
        "trap '' TERM INT; echo $$ >> {}; while :; do sleep 0.05; done",
        pids_file.display()
    );
    let (child, pid) = start(&file_url(&d), &pids_file, &job);
    let _reaper = Reaper(vec![pid]);
    kill(child.id(), "TERM");
    // The job ignores the first one; distlock must still be holding and waiting.
    let mut child = child;
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "distlock gave up after one signal"
    );
    assert!(alive(pid));
    kill(child.id(), "INT");
    let out = wait_output(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    assert!(!alive(pid));
}

#[test]
fn one_signal_to_every_process_of_the_service_keeps_the_grace_period() {
    // A service manager stopping the service (systemd's KillMode=control-group) sends
    // SIGTERM to every process: the lock holder gets its own and the one distlock passes
    // on. That is one request to stop, not an insistence: the command keeps its grace.
    let d = dir("service-stop");
    let pids_file = d.join("pids");
    let marks = d.join("marks");
    let job = format!(
        "trap 'echo term >> {marks}; sleep 1; exit 7' TERM; echo $$ >> {pids}; \
         while :; do sleep 0.05; done",
        marks = marks.display(),
        pids = pids_file.display()
    );
    let (child, pid) = start(&file_url(&d), &pids_file, &job);
    let _reaper = Reaper(vec![pid]);
    let holder = children_of(child.id());
    assert_eq!(holder.len(), 1, "one lock holder: {holder:?}");
    kill(holder[0], "TERM");
    eventually(Duration::from_secs(10), "the job never got SIGTERM", || {
        std::fs::read_to_string(&marks).is_ok_and(|m| m.contains("term"))
    });
    kill(child.id(), "TERM");
    let out = wait_output(child, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(7),
        "the job was killed during its grace period: {out:?}"
    );
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_signal_while_waiting_cancels_the_wait_with_128_plus_n() {
    let d = dir("waiting");
    let holder = distlock_file::FileLock::new(&d).unwrap();
    let guard = holder.try_acquire("job").await.unwrap().unwrap();
    let log = d.join("stderr");
    let child = distlock(&["-vv", "run", "--url", &file_url(&d), "job", "--", "true"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The signal must find it waiting, not starting up.
    eventually(Duration::from_secs(20), "it never started waiting", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("acquiring"))
    });
    kill(child.id(), "TERM");
    let out = wait_output(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(128 + 15), "{out:?}");
    guard.release().await.unwrap();
}

#[cfg(feature = "zookeeper")]
#[tokio::test]
async fn ctrl_c_while_waiting_on_zookeeper_leaves_no_queue_node() {
    use distlock_testkit::zookeeper::{four_letter, ZkServer};

    let server = ZkServer::start().unwrap();
    let ephemerals = || {
        four_letter(server.port(), "mntr")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("zk_ephemerals_count"))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap()
    };
    let url = format!("{}?session_timeout=10s", server.url());
    let holder = distlock::connect(&url).await.unwrap();
    let guard = holder.try_acquire("job").await.unwrap().unwrap();
    assert_eq!(ephemerals(), 1);
    let child = distlock(&["run", "--url", &url, "job", "--", "true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), "the waiter never queued", || {
        ephemerals() == 2
    });
    kill(child.id(), "INT");
    let signalled = Instant::now();
    let out = wait_output(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(128 + 2), "{out:?}");
    assert_eq!(ephemerals(), 1, "the cancelled waiter left its queue node");
    // Cleaning up must not mean waiting out a timeout.
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "{:?}",
        signalled.elapsed()
    );
    guard.release().await.unwrap();
    let next = distlock::connect(&url).await.unwrap();
    let start = Instant::now();
    let g = next
        .acquire_timeout("job", Duration::from_secs(1))
        .await
        .expect("the next acquirer waited behind the cancelled one");
    assert!(start.elapsed() < Duration::from_secs(1));
    g.release().await.unwrap();
    // An ordinary run on ZooKeeper ends promptly too (its session closes on the way out).
    let start = Instant::now();
    let out = output(
        distlock(&["run", "--url", &url, "-n", "job", "true"]),
        LIMIT_ZK,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ephemerals(), 0, "the run's session outlived it");
}

#[cfg(feature = "zookeeper")]
const LIMIT_ZK: Duration = Duration::from_secs(20);
