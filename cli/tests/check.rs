//! `distlock check` must be able to fail: on deliberately unsafe setups it reports the
//! double holds (exit code 1), and on a sound one it passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use distlock_testkit::mariadb::MariaDbServer;

fn dir(label: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("check-{label}-{}", std::process::id()))
}

fn check(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .arg("check")
        .args(args)
        .output()
        .expect("run distlock check");
    eprintln!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_sound_file_backend_passes_under_holder_faults() {
    let url = format!("file://{}", dir("sound").display());
    let out = check(&[
        "--url",
        &url,
        "--duration",
        "3s",
        "--processes",
        "3",
        "--faults",
        "none,holder-kill",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("verdict: PASS (0 violation(s))"),
        "{stdout}"
    );
}

/// Test-only broken backend: each worker locks in its own directory (node-local locks).
#[test]
fn file_locks_that_exclude_nothing_are_caught() {
    let url = format!("file://{}", dir("split").display());
    let out = check(&[
        "--url",
        &url,
        "--duration",
        "3s",
        "--processes",
        "3",
        "--faults",
        "none",
        "--unsafe-split-file-locks-for-tests",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("unexplained overlap of"), "{stdout}");
    assert!(
        stdout.contains("fenced write accepted out of order"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: FAIL"), "{stdout}");
}

/// A round-robin TCP balancer in front of independent servers: each new connection goes
/// to the next server, as a load balancer in front of Galera nodes would (GET_LOCK is
/// node-local there).
struct RoundRobin {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl RoundRobin {
    fn start(upstreams: Vec<u16>) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstreams[n % upstreams.len()]))
                else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || pipe(client, server));
                thread::spawn(move || pipe(s2, c2));
            }
        });
        RoundRobin { port, stop }
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
fn two_mariadb_servers_behind_a_round_robin_balancer_are_caught() {
    let (a, b) = (
        MariaDbServer::start().unwrap(),
        MariaDbServer::start().unwrap(),
    );
    let balancer = RoundRobin::start(vec![a.port(), b.port()]);
    let url = format!(
        "mysql://root@127.0.0.1:{}/mysql?probe_interval=250ms&probe_timeout=1s",
        balancer.port
    );
    let out = check(&[
        "--url",
        &url,
        "--duration",
        "6s",
        "--processes",
        "4",
        "--faults",
        "none",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("unexplained overlap of"), "{stdout}");
    assert!(stdout.contains("verdict: FAIL"), "{stdout}");
}

#[test]
fn bad_input_is_a_clear_error_without_the_password() {
    // The CLI's exit-code table: 78 configuration, 69 store unreachable; 1 is kept for
    // violations, so a script can tell "the lock is unsafe" from "check could not run".
    let out = check(&["--url", "bogus://x"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown lock URL scheme"));

    let out = check(&["--url", "redis://u:s3cret@127.0.0.1:1/", "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(69));
    let all = format!("{out:?}");
    assert!(all.contains("u:***@"), "{all}");
    assert!(!all.contains("s3cret"), "{all}");

    let out = check(&["--url", "file:///tmp/x", "--processes", "1"]);
    assert_eq!(out.status.code(), Some(78));
}
