//! `distlock run` owns the job's whole process group: grandchildren and escaped processes
//! are stopped on loss, when distlock is SIGKILLed, and when the command leaves them
//! behind, always before the lock is free; SIGTERM comes first, SIGKILL after the grace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::time::{Duration, Instant};

use support::*;

/// A job with a grandchild and a process that escaped into a session of its own; all
/// three pids go to `pids`. `trap` is put first (e.g. `trap "" TERM`).
fn nested_job(pids: &std::path::Path, trap: &str) -> String {
    let p = pids.display();
    format!(
        "{trap}; echo $$ >> {p}; \
         sh -c 'sleep 120 >/dev/null 2>&1 & echo $! >> {p}; wait' & \
         setsid sleep 120 >/dev/null 2>&1 & echo $! >> {p}; \
         wait"
    )
}

#[cfg(feature = "redis")]
#[test]
fn grandchildren_and_escapees_die_when_the_lock_is_lost() {
    let server = distlock_testkit::redis::RedisServer::start().unwrap();
    let d = dir("lost");
    let pids_file = d.join("pids");
    let job = nested_job(&pids_file, "true");
    let (mut child, err) = spawn_logged(
        distlock(&["run", "--url", &server.url(), "--ttl", "1s"]).args([
            "--kill-after",
            "2s",
            "job",
            "-c",
            &job,
        ]),
        &d,
    );
    let pids = support::pids(&pids_file, 3);
    let _reaper = Reaper(pids.clone());
    assert!(pids.iter().all(|p| alive(*p)));
    // The hold vanishes from the store: the next renewal finds it gone.
    distlock_testkit::redis::raw_command(server.port(), "FLUSHALL").unwrap();
    let lost_at = Instant::now();
    let status = wait_status(&mut child, Duration::from_secs(20));
    let err = std::fs::read_to_string(err).unwrap();
    assert_eq!(status.code(), Some(76), "{status:?} {err}");
    assert!(err.contains("stopping the command"), "{err}");
    let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "{survivors:?} of {pids:?} outlived the lost lock"
    );
    // They took SIGTERM: no need for the 2 s grace period.
    assert!(
        lost_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        lost_at.elapsed()
    );
}

#[test]
fn a_sigkilled_distlock_takes_its_whole_job_along_before_the_lock_is_free() {
    let d = dir("sigkill");
    let url = file_url(&d);
    let pids_file = d.join("pids");
    // The job ignores SIGTERM, so it lives through the 1 s grace period: the lock must
    // stay held all that time.
    let job = nested_job(&pids_file, "trap '' TERM");
    let mut first = distlock(&[
        "run",
        "--url",
        &url,
        "--kill-after",
        "1s",
        "job",
        "-c",
        &job,
    ])
    .spawn()
    .unwrap();
    let pids = support::pids(&pids_file, 3);
    let _reaper = Reaper(pids.clone());
    first.kill().unwrap();
    let _ = first.wait();
    let killed_at = Instant::now();
    // The second run's command checks that none of the first job is left. A zombie (dead,
    // not yet reaped by whoever it was re-parented to) runs no code, so it counts as gone,
    // as in `alive` (`kill -0` would count it).
    let check = format!(
        "for p in {}; do s=$(cat /proc/$p/stat 2>/dev/null) || continue; \
         case \"${{s##*) }}\" in Z*) ;; *) echo \"$p still runs\" >&2; exit 99;; esac; done",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = output(
        distlock(&["run", "--url", &url, "-w", "20s", "job", "-c", &check]),
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the second run got the lock while the first job still ran: {out:?}"
    );
    let waited = killed_at.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "the lock was free {waited:?} after the kill, before the 1 s grace period ended"
    );
    assert!(pids.iter().all(|p| !alive(*p)), "{pids:?}");
}

#[test]
fn leftovers_get_sigterm_then_sigkill_after_the_grace_period() {
    let d = dir("grace");
    let url = file_url(&d);
    let pids_file = d.join("pids");
    // The command exits 5 at once, leaving a background sleep that ignores SIGTERM.
    let job = format!(
        "trap '' TERM; sleep 120 >/dev/null 2>&1 & echo $! >> {}; exit 5",
        pids_file.display()
    );
    let start = Instant::now();
    let (mut child, _) = spawn_logged(
        &mut distlock(&[
            "run",
            "--url",
            &url,
            "--kill-after",
            "1500ms",
            "job",
            "-c",
            &job,
        ]),
        &d,
    );
    let pids = support::pids(&pids_file, 1);
    let _reaper = Reaper(pids.clone());
    let status = wait_status(&mut child, Duration::from_secs(20));
    let took = start.elapsed();
    assert_eq!(status.code(), Some(5), "{status:?}");
    assert!(!alive(pids[0]), "the leftover outlived distlock");
    assert!(
        took >= Duration::from_millis(1500),
        "SIGKILL came before the grace period ended: {took:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "the grace period dragged on: {took:?}"
    );

    // A leftover that obeys SIGTERM is stopped without waiting for the grace period.
    let job = format!(
        "sleep 120 >/dev/null 2>&1 & echo $! >> {}; exit 0",
        pids_file.display()
    );
    let start = Instant::now();
    let out = output(
        distlock(&[
            "run",
            "--url",
            &url,
            "--kill-after",
            "20s",
            "job",
            "-c",
            &job,
        ]),
        Duration::from_secs(15),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(support::pids(&pids_file, 2).iter().all(|p| !alive(*p)));
}

#[test]
fn when_the_lock_holder_process_is_killed_the_front_kills_the_job() {
    let d = dir("holder-killed");
    let pids_file = d.join("pids");
    let job = nested_job(&pids_file, "true");
    let (mut front, err) = spawn_logged(
        &mut distlock(&["run", "--url", &file_url(&d), "job", "-c", &job]),
        &d,
    );
    let pids = support::pids(&pids_file, 3);
    let _reaper = Reaper(pids.clone());
    let holders = children_of(front.id());
    assert_eq!(holders.len(), 1, "{holders:?}");
    kill(holders[0], "KILL");
    let status = wait_status(&mut front, Duration::from_secs(20));
    let err = std::fs::read_to_string(err).unwrap();
    assert_eq!(status.code(), Some(76), "{status:?} {err}");
    assert!(err.contains("lock holder process died"), "{err}");
    let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "{survivors:?} outlived the lock holder"
    );
}
