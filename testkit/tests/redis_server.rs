#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
use distlock_testkit::redis::{raw_command, RedisServer};

#[test]
fn redis_starts_pauses_restarts_and_dies_with_its_handle() {
    let server = RedisServer::start().unwrap();
    let port = server.port();
    assert!(server.ping());
    assert!(raw_command(port, "SET k v").unwrap().starts_with("+OK"));

    server.pause();
    assert!(!server.ping(), "a paused server must not answer");
    server.resume();
    assert!(server.ping());

    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert!(
        raw_command(port, "GET k").unwrap().starts_with("$-1"),
        "no persistence"
    );

    let pid = server.pid().unwrap();
    drop(server);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true),
        "redis-server {pid} survived its handle"
    );
}
