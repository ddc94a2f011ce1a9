//! Throwaway Redis: one `redis-server`, several independent ones (for Redlock), or a
//! three-master Redis Cluster.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use std::process::Command;
use std::time::Instant;

use crate::process::{find_program, free_port, scratch_dir, ServerProcess, Spec};

/// A `redis-server` on a free loopback port, data in `target/testkit/redis-*`.
/// Shareable across threads (fault methods take `&self`).
#[derive(Debug)]
pub struct RedisServer {
    process: Mutex<ServerProcess>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (e.g. `["--cluster-enabled", "yes"]`).
    pub fn start_with(extra: &[&str]) -> io::Result<Self> {
        let program = find_program("redis-server").ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, crate::install_hint("redis-server"))
        })?;
        let port = free_port();
        let dir = scratch_dir("redis")?;
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.to_string_lossy(),
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = ServerProcess::start(Spec {
            label: format!("redis:{port}"),
            program,
            args,
            env: Vec::new(),
            log: dir.join("redis.log"),
            cwd: Some(dir.clone()),
        })?;
        let server = RedisServer {
            process: Mutex::new(process),
            port,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn process(&self) -> MutexGuard<'_, ServerProcess> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_ready(&self) -> io::Result<()> {
        let port = self.port;
        self.process()
            .wait_ready(Duration::from_secs(10), || ping(port))
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its data directory.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// Freezes the server (SIGSTOP).
    pub fn pause(&self) {
        self.process().pause();
    }

    /// Thaws the server (SIGCONT).
    pub fn resume(&self) {
        self.process().resume();
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&self) {
        self.process().kill();
    }

    /// Restarts on the same port (data is not persisted) and waits until ready.
    pub fn restart(&self) -> io::Result<()> {
        self.process().restart()?;
        self.wait_ready()
    }

    /// Whether it answers `PING`.
    pub fn ping(&self) -> bool {
        ping(self.port)
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process().pid()
    }
}

/// Sends one inline command and returns the raw reply (for tests that need no client crate).
pub fn raw_command(port: u16, command: &str) -> io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_millis(1000)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn ping(port: u16) -> bool {
    raw_command(port, "PING").is_ok_and(|r| r.starts_with("+PONG"))
}

/// `count` independent servers (for a Redlock quorum), started one after the other.
pub fn start_many(count: usize) -> io::Result<Vec<RedisServer>> {
    (0..count).map(|_| RedisServer::start()).collect()
}

/// A Redis Cluster of masters without replicas on loopback, its slots spread evenly by
/// `redis-cli --cluster create`. Node configs (`nodes.conf`) live in each node's data
/// directory, so a restarted node rejoins with its slots (but without its data).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Three masters, ready (`cluster_state:ok` on every node).
    pub fn start() -> io::Result<Self> {
        Self::start_with_masters(3)
    }

    /// `masters` masters (at least 3, as `redis-cli --cluster create` demands).
    pub fn start_with_masters(masters: usize) -> io::Result<Self> {
        let cli = find_program("redis-cli").ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, crate::install_hint("redis-server"))
        })?;
        let nodes = (0..masters)
            .map(|_| {
                // The bus port is chosen too: the default (port + 10000) may be taken or > 65535.
                let bus = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    // Long enough that a test freezing every node for seconds does not
                    // make them declare each other failed (there are no replicas to fail over to).
                    "--cluster-node-timeout",
                    "15000",
                    "--cluster-port",
                    &bus,
                ])
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        let out = Command::new(cli).args(&args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let cluster = RedisCluster { nodes };
        cluster.wait_ok(Duration::from_secs(20))?;
        Ok(cluster)
    }

    /// Waits until every running node reports `cluster_state:ok` with all slots assigned.
    pub fn wait_ok(&self, limit: Duration) -> io::Result<()> {
        let start = Instant::now();
        loop {
            if self.nodes.iter().all(|n| cluster_ok(n.port())) {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(io::Error::other(format!(
                    "the cluster on ports {:?} is not ok after {limit:?}",
                    self.ports()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The nodes, for fault injection on one of them.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// `redis://127.0.0.1:PORT/` of every node (any of them is a valid seed).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Restarts every node (data is lost, slots are kept) and waits until the cluster is ok.
    pub fn restart(&self) -> io::Result<()> {
        for node in &self.nodes {
            node.restart()?;
        }
        self.wait_ok(Duration::from_secs(20))
    }
}

fn cluster_ok(port: u16) -> bool {
    raw_command(port, "CLUSTER INFO")
        .is_ok_and(|r| r.contains("cluster_state:ok") && r.contains("cluster_slots_assigned:16384"))
}
