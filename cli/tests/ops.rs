//! `distlock holders`, `break` and `doctor` against a throwaway Redis with a password.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use distlock::{AcquireOptions, ErrorKind, LockExt};
use distlock_testkit::redis::{raw_command, RedisServer};

const PASSWORD: &str = "d0ct0r-pw";

fn distlock(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_break_and_doctor_on_redis() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let server = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]).unwrap();
        let r = raw_command(server.port(), &format!("CONFIG SET requirepass {PASSWORD}")).unwrap();
        assert!(r.starts_with("+OK"), "{r}");
        let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/", server.port());
        let locks = distlock_redis::connect(&url).await.unwrap();
        distlock::set_holder_label("cli-test");
        let opts = AcquireOptions::try_once().with_ttl(Duration::from_millis(900));
        let g = locks
            .acquire_opts("batch/nightly", &opts)
            .await
            .unwrap()
            .unwrap();
        let other = locks.acquire("other").await.unwrap();

        let out = distlock(&["holders", "--url", &url, "--json", "batch/"]);
        assert!(out.status.success(), "{out:?}");
        let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["name"], "batch/nightly");
        assert_eq!(rows[0]["pid"], std::process::id());
        assert_eq!(rows[0]["label"], "cli-test");
        assert_eq!(rows[0]["fencing_token"], g.fencing_token().unwrap());
        let table = stdout(&distlock(&["holders", "--url", &url]));
        assert!(
            table.contains("batch/nightly") && table.contains("other"),
            "{table}"
        );

        let refused = distlock(&["break", "--url", &url, "batch/nightly"]);
        assert_eq!(refused.status.code(), Some(2), "{refused:?}");
        assert!(g.is_held());

        let out = distlock(&["break", "--url", &url, "batch/nightly", "--yes"]);
        assert!(out.status.success(), "{out:?}");
        let lost = tokio::time::timeout(Duration::from_millis(1500), g.lost())
            .await
            .expect("no lost signal after distlock break");
        assert_eq!(lost.kind(), ErrorKind::Lost);
        let next = locks.try_acquire("batch/nightly").await.unwrap().unwrap();
        assert!(next.fencing_token() > g.fencing_token());

        let out = distlock(&["doctor", "--url", &url]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        let report = stdout(&out);
        assert!(report.contains("FAIL  maxmemory-policy"), "{report}");
        assert!(
            report.contains("fix: `CONFIG SET maxmemory-policy noeviction`"),
            "{report}"
        );
        assert!(report.contains(":***@"), "{report}");

        let r = raw_command_auth(server.port(), "CONFIG SET maxmemory-policy noeviction");
        assert!(r.contains("+OK"), "{r}");
        let out = distlock(&["doctor", "--url", &url]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");

        let bad = distlock(&[
            "holders",
            "--url",
            &format!("redis://:{PASSWORD}@127.0.0.1:1/"),
        ]);
        assert!(!bad.status.success());
        for g in [next, other] {
            g.release().await.unwrap();
        }
        let empty = stdout(&distlock(&["holders", "--url", &url, "--json"]));
        assert_eq!(empty.trim(), "[]");
    })
    .await
    .unwrap();
}

fn raw_command_auth(port: u16, command: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(format!("AUTH {PASSWORD}\r\n{command}\r\n").as_bytes())
        .unwrap();
    // Two replies: AUTH's, then the command's.
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while reply.windows(2).filter(|w| w == b"\r\n").count() < 2 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "redis closed the connection");
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_break_and_doctor_on_mariadb_with_a_password() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let server = distlock_testkit::mariadb::MariaDbServer::start().unwrap();
        server
            .sql(&format!(
                "CREATE USER 'ops'@'%' IDENTIFIED BY '{PASSWORD}'; \
                 GRANT ALL ON *.* TO 'ops'@'%'; SET GLOBAL wait_timeout = 1;"
            ))
            .unwrap();
        let url = format!(
            "mysql://ops:{PASSWORD}@127.0.0.1:{}/{}?probe_interval=300ms",
            server.port(),
            distlock_testkit::mariadb::GET_LOCK_DATABASE
        );
        let locks = distlock::connect(&url).await.unwrap();
        let g = locks.acquire("report").await.unwrap();

        let out = distlock(&["holders", "--url", &url, "--json"]);
        assert!(out.status.success(), "{out:?}");
        let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");

        // wait_timeout 1 s is not above a 2 s probe interval: a warning, exit code 3.
        let slow = url.replace("300ms", "2s");
        let out = distlock(&["doctor", "--url", &slow]);
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert!(stdout(&out).contains("WARN  wait_timeout"), "{out:?}");

        let out = distlock(&["break", "--url", &url, "report", "--yes"]);
        assert!(out.status.success(), "{out:?}");
        tokio::time::timeout(Duration::from_secs(3), g.lost())
            .await
            .expect("no lost signal after distlock break");
    })
    .await
    .unwrap();
}
