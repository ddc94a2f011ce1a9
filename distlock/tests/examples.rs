//! Runs the facade's examples (built by `cargo test`, which builds every example): the
//! file and memory ones as they are, the server ones against throwaway servers through
//! `DISTLOCK_URL`, each bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/<name>`, next to this test's `deps/` directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test` on the whole package (it builds the examples), \
         not only this test target",
        path.display()
    );
    path
}

fn run(name: &str, url: Option<&str>) -> String {
    let mut command = Command::new(example(name));
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    match url {
        Some(url) => command.env("DISTLOCK_URL", url),
        None => command.env_remove("DISTLOCK_URL"),
    };
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("example {name} ran over 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn file_example_runs() {
    assert!(run("file", None).contains("released"));
}

#[test]
fn memory_example_runs() {
    assert!(run("memory", None).contains("b holds job"));
}

#[cfg(feature = "redis")]
#[test]
fn redis_example_runs() {
    let server = distlock_testkit::redis::RedisServer::start().unwrap();
    let out = run("redis", Some(&server.url()));
    assert!(
        out.contains("held: example/invoice-run") && out.contains("released"),
        "{out}"
    );
}

#[cfg(feature = "zookeeper")]
#[test]
fn zookeeper_example_runs() {
    let server = distlock_testkit::zookeeper::ZkServer::start().unwrap();
    let out = run("zookeeper", Some(&server.url()));
    assert!(
        out.contains("held: example/invoice-run") && out.contains("released"),
        "{out}"
    );
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_example_runs() {
    let server = distlock_testkit::mariadb::MariaDbServer::start().unwrap();
    let out = run("mysql", Some(&server.url()));
    assert!(
        out.contains("held: example") && out.contains("released"),
        "{out}"
    );
}
