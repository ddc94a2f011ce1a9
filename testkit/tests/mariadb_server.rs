use std::time::{Duration, Instant};

use distlock_testkit::mariadb::MariaDbServer;

#[test]
fn mariadb_starts_queries_pauses_restarts_and_dies_with_its_handle() {
    let server = MariaDbServer::start().unwrap();
    let port = server.port();
    assert_ne!(port, 3306, "never the machine's own server");
    assert!(server.ping());
    server
        .sql("CREATE DATABASE t; CREATE TABLE t.k (v INT) ENGINE=InnoDB; INSERT INTO t.k VALUES (42);")
        .unwrap();
    assert_eq!(server.sql("SELECT v FROM t.k").unwrap().trim(), "42");

    server.pause();
    let start = Instant::now();
    assert!(!server.ping(), "a paused server must not answer");
    assert!(start.elapsed() < Duration::from_secs(10));
    server.resume();
    assert!(server.ping());

    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(
        server.sql("SELECT v FROM t.k").unwrap().trim(),
        "42",
        "the data directory survives a restart"
    );

    let pid = server.pid().unwrap();
    let dir = server.dir().clone();
    assert!(dir.exists());
    drop(server);
    assert!(
        !dir.exists(),
        "the scratch directory {dir:?} outlived its server"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true),
        "mariadbd {pid} survived its handle"
    );
}
