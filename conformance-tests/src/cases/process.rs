//! Cases across OS processes. The suite re-runs the current test binary, filtered to the
//! same test, with `DISTLOCK_CONFORMANCE_CHILD` set; [`crate::run_test`] then plays the
//! child's role instead of the case.

use std::fs;
use std::io::ErrorKind as IoErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use distlock_core::{AcquireOptions, LockExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{ok, within, Ctx, SLACK};
use crate::harness::Harness;

pub(crate) const CHILD_ROLE: &str = "DISTLOCK_CONFORMANCE_CHILD";
const CHILD_NAME: &str = "DISTLOCK_CONFORMANCE_NAME";
const CHILD_DIR: &str = "DISTLOCK_CONFORMANCE_DIR";
const CHILD_ROUNDS: &str = "DISTLOCK_CONFORMANCE_ROUNDS";
const MARK: &str = "distlock-conformance-child:";

const PROCESSES: usize = 3;
const ROUNDS: usize = 10;

fn scratch() -> PathBuf {
    let base = std::env::var_os("DISTLOCK_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!(
        "distlock-conformance-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

fn spawn_child(ctx: &Ctx, role: &str, name: &str, dir: &Path) -> Child {
    let path = ctx.test_path.clone().unwrap_or_else(|| {
        panic!("cross-process cases need run_test (the conformance_tests! macro)")
    });
    let exe = std::env::current_exe().expect("current test binary");
    Command::new(exe)
        .args([
            path.as_str(),
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .envs(ctx.harness.child_env())
        .env(CHILD_ROLE, role)
        .env(CHILD_NAME, name)
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUNDS, ROUNDS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn a child test process")
}

/// Reads the child's stdout until a line `MARK word` and returns the word(s).
async fn next_report(child: &mut Child) -> String {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // libtest may print "test name ... " on the same line first.
        if let Some(at) = line.find(MARK) {
            return line[at + MARK.len()..].trim().to_string();
        }
    }
    String::from("eof")
}

pub(crate) async fn exclusion_across_processes(ctx: &Ctx) {
    if !ctx.caps.cross_process {
        return ctx.skip("the backend is in-process only");
    }
    let dir = scratch();
    fs::create_dir_all(&dir).expect("scratch dir");
    fs::write(dir.join("counter"), "0").expect("counter file");
    let name = ctx.name("shared");
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| spawn_child(ctx, "exclusion", &name, &dir))
        .collect();
    let mut reports = Vec::new();
    within(Duration::from_secs(120), "child processes", async {
        for child in &mut children {
            reports.push(next_report(child).await);
            let status = child.wait().await.expect("child status");
            assert!(status.success(), "a child process failed: {status}");
        }
    })
    .await;
    let counter: usize = fs::read_to_string(dir.join("counter"))
        .expect("counter")
        .trim()
        .parse()
        .expect("number");
    let _ = fs::remove_dir_all(&dir);
    assert!(
        !reports.iter().any(|r| r == "eof"),
        "a child process ended without reporting: did the test filter {:?} select this test \
         in the re-run binary?",
        ctx.test_path
    );
    assert!(
        reports.iter().all(|r| r == "done"),
        "children reported {reports:?}: two processes were inside at once"
    );
    assert_eq!(
        counter,
        PROCESSES * ROUNDS,
        "updates across processes were lost"
    );
}

pub(crate) async fn killed_holder(ctx: &Ctx) {
    if !ctx.caps.cross_process {
        return ctx.skip("the backend is in-process only");
    }
    let dir = scratch();
    let name = ctx.name("orphan");
    let mut child = spawn_child(ctx, "holder", &name, &dir);
    let report = within(
        Duration::from_secs(60),
        "the holder child",
        next_report(&mut child),
    )
    .await;
    assert_eq!(report, "held", "the holder child did not take the lock");
    let b = ctx.client().await;
    assert!(
        ok(b.try_acquire(&name).await, "try_acquire").is_none(),
        "the lock was free while the child held it"
    );
    child.start_kill().expect("SIGKILL the holder");
    let _ = child.wait().await;
    let killed = Instant::now();
    let limit = ctx.harness.backstop() + SLACK;
    let g = b
        .acquire_timeout(&name, limit)
        .await
        .unwrap_or_else(|e| panic!("the killed holder's lock was not freed within {limit:?}: {e}"));
    assert!(killed.elapsed() <= limit + SLACK);
    ok(g.release().await, "release");
}

/// The child side: runs the role named in the environment with a client of `harness`.
pub(crate) async fn run_child(role: &str, harness: &dyn Harness) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("child without {k}"));
    let name = var(CHILD_NAME);
    let dir = PathBuf::from(var(CHILD_DIR));
    let client = ok(harness.client().await, "child client");
    match role {
        "exclusion" => {
            let rounds: usize = var(CHILD_ROUNDS).parse().expect("rounds");
            for _ in 0..rounds {
                let g = ok(
                    client.acquire_timeout(&name, Duration::from_secs(60)).await,
                    "child acquire",
                );
                // Creating the marker fails if another process is inside.
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(dir.join("inside"))
                {
                    Ok(_) => {}
                    Err(e) if e.kind() == IoErrorKind::AlreadyExists => {
                        println!("{MARK} overlap");
                        std::process::exit(3);
                    }
                    Err(e) => panic!("marker: {e}"),
                }
                let seen: usize = fs::read_to_string(dir.join("counter"))
                    .expect("counter")
                    .trim()
                    .parse()
                    .expect("number");
                tokio::time::sleep(Duration::from_millis(2)).await;
                fs::write(dir.join("counter"), (seen + 1).to_string()).expect("counter");
                fs::remove_file(dir.join("inside")).expect("marker");
                ok(g.release().await, "child release");
            }
            println!("{MARK} done");
        }
        "holder" => {
            let options = AcquireOptions::try_once().with_ttl(harness.short_ttl());
            let g = ok(client.acquire_opts(&name, &options).await, "child acquire")
                .expect("a free lock");
            println!("{MARK} held");
            // Held until the parent kills this process.
            tokio::time::sleep(Duration::from_secs(300)).await;
            drop(g);
        }
        other => panic!("unknown child role {other}"),
    }
}
