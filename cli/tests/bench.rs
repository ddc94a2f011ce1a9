//! `distlock bench` end to end: the report's shape (`--json`, `--svg`), the raw primitive
//! and the server counters beside distlock, and a store left as it was found. No timing is
//! asserted: the machine is shared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn dir(label: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{label}-{}", std::process::id()))
}

/// Runs a short bench of `cases` on `url`; returns its JSON report.
fn bench(url: &str, label: &str, cases: &str) -> Value {
    let d = dir(label);
    std::fs::create_dir_all(&d).unwrap();
    let (json, svg) = (d.join("report.json"), d.join("chart.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args(["bench", "--quick", "--url", url, "--only", cases])
        .args(["--iterations", "100", "--seconds", "0.5", "--clients", "4"])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("run distlock bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}"); // the figures, with --nocapture
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("<text"),
        "{chart}"
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// The row of `case` and `subject` (not a growth step).
fn row<'a>(report: &'a Value, case: &str, subject: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["case"] == case && r["subject"] == subject && r["step"].is_null())
        .unwrap_or_else(|| panic!("no {case} row for {subject} in {report:#}"))
}

fn metric(row: &Value, name: &str) -> f64 {
    row["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no {name} in {row:#}"))
}

/// What every report holds, whatever the store: the uncontended figures of distlock and of
/// the raw primitive with their ratio, and a contended run whose counter saw every
/// acquisition once.
fn check_shape(report: &Value, backend: &str, subjects: &[&str]) {
    assert_eq!(report["bench"]["backend"], backend, "{report:#}");
    for subject in subjects {
        let solo = row(report, "uncontended", subject);
        assert!(metric(solo, "cycles_per_s") > 0.0);
        assert!(metric(solo, "p99_us") >= metric(solo, "p50_us"));
        assert_eq!(solo["percentiles_us"].as_array().unwrap().len(), 101);
        let hot = row(report, "contended", subject);
        assert_eq!(
            metric(hot, "counter"),
            metric(hot, "acquisitions"),
            "{hot:#}"
        );
        assert!(metric(hot, "fairness") <= 1.0);
    }
    if subjects.contains(&"raw") {
        let ratios = report["ratios"].as_array().unwrap();
        assert!(
            ratios
                .iter()
                .any(|r| r["case"] == "uncontended" && r["reference"] == "raw"),
            "{report:#}"
        );
    }
}

#[test]
fn bench_on_lock_files_reports_json_draws_svg_and_leaves_nothing() {
    let locks = dir("file-locks");
    let url = format!("file://{}", locks.display());
    let report = bench(
        &url,
        "file",
        "uncontended,contended,handoff,holds,waiters,processes",
    );
    check_shape(&report, "file", &["distlock", "raw"]);
    let between = row(&report, "processes_contended", "distlock");
    assert_eq!(metric(between, "counter"), metric(between, "acquisitions"));
    assert!(
        metric(
            row(&report, "processes_handoff", "distlock"),
            "handoff_p50_us"
        ) > 0.0
    );
    assert!(metric(row(&report, "handoff", "raw"), "handoff_p50_us") > 0.0);
    let holds: Vec<&Value> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["case"] == "holds")
        .collect();
    assert_eq!(holds.len(), 4, "{report:#}");
    assert!(holds.iter().all(|r| metric(r, "lost") == 0.0));
    let left: Vec<_> = std::fs::read_dir(&locks).unwrap().collect();
    assert!(
        left.is_empty(),
        "the bench left {left:?} in {}",
        locks.display()
    );
}

#[test]
fn bench_on_memory_runs_without_a_raw_primitive() {
    let report = bench("memory://", "memory", "uncontended,contended");
    check_shape(&report, "memory", &["distlock"]);
    assert!(report["notes"].to_string().contains("no raw primitive"));
}

#[test]
fn bench_rejects_a_cluster_url_with_a_config_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_distlock"))
        .args(["bench", "--url", "redis+cluster://u:s3cret@127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        !stderr.contains("s3cret") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[cfg(feature = "redis")]
#[test]
fn bench_on_redis_counts_commands_and_deletes_its_keys() {
    let server = distlock_testkit::redis::RedisServer::start().unwrap();
    let report = bench(&server.url(), "redis", "uncontended,contended");
    check_shape(&report, "redis", &["distlock", "raw", "rslock"]);
    let raw = row(&report, "uncontended", "raw");
    assert_eq!(raw["server"]["evalsha"].as_f64(), Some(1.0), "{raw:#}");
    let keys = distlock_testkit::redis::raw_command(server.port(), "DBSIZE").unwrap();
    assert!(keys.contains(":0"), "keys left behind: {keys}");
}

#[cfg(feature = "mysql")]
#[test]
fn bench_on_mariadb_row_lock_compares_with_select_for_update_and_deletes_its_rows() {
    let server = distlock_testkit::mariadb::MariaDbServer::start().unwrap();
    // testkit makes one database per MySQL mode (the modes refuse to share one).
    let db = distlock_testkit::mariadb::ROW_LOCK_DATABASE;
    let url = format!("{}?mode=row_lock", server.url_for(db));
    let report = bench(&url, "mariadb", "uncontended,contended");
    check_shape(&report, "mysql row_lock", &["distlock", "raw"]);
    assert!(row(&report, "uncontended", "raw")["server"]["Com_commit"].as_f64() > Some(0.0));
    let left = server
        .sql(&format!(
            "SELECT (SELECT COUNT(*) FROM {db}.distlock_fence) + \
             (SELECT COUNT(*) FROM {db}.distlock_locks) + \
             (SELECT COUNT(*) FROM {db}.distlock_bench_raw) + \
             (SELECT COUNT(*) FROM {db}.distlock_bench_counter)"
        ))
        .unwrap();
    assert_eq!(
        left.trim().lines().last(),
        Some("0"),
        "rows left behind: {left}"
    );
}

#[cfg(feature = "zookeeper")]
#[test]
fn bench_on_zookeeper_deletes_its_nodes() {
    let server = distlock_testkit::zookeeper::ZkServer::start().unwrap();
    let report = bench(&server.url(), "zookeeper", "uncontended");
    assert!(metric(row(&report, "uncontended", "raw"), "cycles_per_s") > 0.0);
    assert!(row(&report, "uncontended", "raw")["server"]["packets_received"].as_f64() > Some(0.0));
    let mntr = distlock_testkit::zookeeper::four_letter(server.port(), "mntr").unwrap();
    let nodes = mntr
        .lines()
        .find_map(|l| l.strip_prefix("zk_znode_count\t"))
        .unwrap();
    // A fresh server has /zookeeper, /zookeeper/config and /zookeeper/quota (and the root).
    assert!(nodes.trim().parse::<u32>().unwrap() <= 5, "{mntr}");
}
