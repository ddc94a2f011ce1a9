//! Throwaway servers for campaigns without `--url` (build feature `testkit`), with the
//! short timeouts that let a campaign of seconds see expiries: a 2 s ZooKeeper session, a
//! 250 ms MariaDB probe (1 s timeout).

use std::io;
use std::time::Duration;

use super::args::BackendName;
use super::target::Target;

#[cfg(feature = "testkit")]
mod started {
    use std::io;

    use distlock_testkit::{mariadb::MariaDbServer, redis::RedisServer, zookeeper::ZkServer};

    use crate::check::target::ServerControl;

    impl ServerControl for RedisServer {
        fn pause(&self) {
            RedisServer::pause(self);
        }
        fn resume(&self) {
            RedisServer::resume(self);
        }
        fn restart(&self) -> io::Result<()> {
            RedisServer::restart(self)
        }
        fn kill_sessions(&self) -> io::Result<String> {
            let reply = distlock_testkit::redis::raw_command(
                self.port(),
                "CLIENT KILL TYPE normal SKIPME yes",
            )?;
            Ok(format!("CLIENT KILL: {}", reply.trim()))
        }
    }

    impl ServerControl for ZkServer {
        fn pause(&self) {
            ZkServer::pause(self);
        }
        fn resume(&self) {
            ZkServer::resume(self);
        }
        fn restart(&self) -> io::Result<()> {
            ZkServer::restart(self)
        }
        fn kill_sessions(&self) -> io::Result<String> {
            Err(io::Error::other("ZooKeeper has no session kill command"))
        }
    }

    impl ServerControl for MariaDbServer {
        fn pause(&self) {
            MariaDbServer::pause(self);
        }
        fn resume(&self) {
            MariaDbServer::resume(self);
        }
        fn restart(&self) -> io::Result<()> {
            MariaDbServer::restart(self)
        }
        fn kill_sessions(&self) -> io::Result<String> {
            let ids = self.sql(
                "SELECT id FROM information_schema.processlist \
                 WHERE id <> CONNECTION_ID() AND command NOT IN ('Daemon', 'Killed')",
            )?;
            let ids: Vec<&str> = ids.split_whitespace().collect();
            // A session may end between the listing and the KILL: kill one at a time.
            let killed = ids
                .iter()
                .filter(|id| self.sql(&format!("KILL {id}")).is_ok())
                .count();
            Ok(format!("KILL of {killed} session(s)"))
        }
    }
}

/// Starts a throwaway server for `backend` (a scratch directory for `file`).
pub fn start(backend: BackendName, ttl: Duration) -> io::Result<Target> {
    let label = match backend {
        BackendName::File => "file",
        BackendName::Redis => "redis",
        BackendName::Zookeeper => "zookeeper",
        BackendName::Mariadb => "mariadb",
    };
    if backend == BackendName::File {
        let dir = std::env::temp_dir().join(format!(
            "distlock-check-{}-{}",
            std::process::id(),
            super::history::mono_ns()
        ));
        let mut target = Target::from_url(&format!("file://{}", dir.display()), ttl);
        target.label = label.to_string();
        target.scratch = Some(dir);
        return Ok(target);
    }
    start_server(backend, label, ttl)
}

#[cfg(feature = "testkit")]
fn start_server(backend: BackendName, label: &str, ttl: Duration) -> io::Result<Target> {
    use distlock_testkit::{mariadb::MariaDbServer, redis::RedisServer, zookeeper::ZkServer};

    use super::target::ServerControl;

    let (url, server): (String, Box<dyn ServerControl>) = match backend {
        BackendName::Redis => {
            let s = RedisServer::start()?;
            (s.url(), Box::new(s))
        }
        BackendName::Zookeeper => {
            let s = ZkServer::start()?;
            (format!("{}/?session_timeout=2s", s.url()), Box::new(s))
        }
        BackendName::Mariadb | BackendName::File => {
            let s = MariaDbServer::start()?;
            (
                format!("{}?probe_interval=250ms&probe_timeout=1s", s.url()),
                Box::new(s),
            )
        }
    };
    let mut target = Target::from_url(&url, ttl);
    target.label = label.to_string();
    target.server = Some(server);
    Ok(target)
}

#[cfg(not(feature = "testkit"))]
fn start_server(_backend: BackendName, label: &str, _ttl: Duration) -> io::Result<Target> {
    Err(io::Error::other(format!(
        "this distlock was built without throwaway servers: give --url to check your own \
         {label} deployment, or build with `--features testkit` \
         (cargo run -p distlock-cli --features testkit -- check …)"
    )))
}
