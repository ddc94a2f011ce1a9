//! Throwaway ZooKeeper: one standalone server ([`ZkServer`]) or a three-node ensemble
//! ([`ZkEnsemble`]), each node a JVM started by hand from the Debian jars (no root-owned
//! config), with `tickTime=200` so sessions can be short in tests (the server clamps session
//! timeouts to 2×–20× the tick: 0.4 s – 4 s).
//!
//! Readiness is the four-letter word `srvr` answering with a `Mode:` line.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{find_program, free_port, scratch_dir, ServerProcess, Spec};

/// The server's tick: sessions may be 2–20 ticks long.
pub const TICK: Duration = Duration::from_millis(200);

/// `syncLimit`, in ticks: a follower that hears nothing from its leader for this long
/// gives it up and starts an election.
const SYNC_LIMIT: u32 = 5;

const JARS: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";
const MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

fn java() -> io::Result<PathBuf> {
    if !Path::new("/usr/share/java/zookeeper.jar").is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            crate::install_hint("zookeeper"),
        ));
    }
    find_program("java")
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, crate::install_hint("zookeeper")))
}

/// Sends a four-letter word and returns the whole reply.
pub fn four_letter(port: u16, word: &str) -> io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_millis(1000)))?;
    stream.write_all(word.as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// The `Mode:` of the server on `port` (`standalone`, `leader`, `follower`), if it serves.
pub fn mode(port: u16) -> Option<String> {
    let reply = four_letter(port, "srvr").ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(|m| m.trim().to_string())
}

/// One ZooKeeper node: its ports, directory and process.
#[derive(Debug)]
struct Node {
    process: Mutex<ServerProcess>,
    client_port: u16,
}

impl Node {
    fn process(&self) -> MutexGuard<'_, ServerProcess> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(label: String, dir: &Path, config: &str, myid: Option<usize>) -> io::Result<Self> {
        let program = java()?;
        let data = dir.join("data");
        fs::create_dir_all(&data)?;
        if let Some(id) = myid {
            fs::write(data.join("myid"), format!("{id}\n"))?;
        }
        let client_port = free_port();
        let mut cfg = String::new();
        let _ = write!(
            cfg,
            "tickTime={}\ninitLimit=10\nsyncLimit={SYNC_LIMIT}\ndataDir={}\nclientPort={client_port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,dump,wchp\nmaxClientCnxns=0\n\
             autopurge.purgeInterval=0\n{config}",
            TICK.as_millis(),
            data.display(),
        );
        let cfg_path = dir.join("zoo.cfg");
        fs::write(&cfg_path, cfg)?;
        let args = [
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.admin.enableServer=false",
            // Warnings and errors only: the INFO stream (a stack trace per closed client
            // connection) would crowd the log tail printed when a test fails.
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            // Quorum changes (elections, syncs, who leads) at INFO, with times, so a log
            // tail shows when an ensemble recovered.
            "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.quorum.QuorumPeer=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            // Throwaway data: no fsync per transaction.
            "-Dzookeeper.forceSync=no",
            "-cp",
            JARS,
            MAIN,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(cfg_path.to_string_lossy().into_owned()))
        .collect();
        let process = ServerProcess::start(Spec {
            label,
            program,
            args,
            env: Vec::new(),
            log: dir.join("zookeeper.log"),
            cwd: Some(dir.to_path_buf()),
        })?;
        Ok(Node {
            process: Mutex::new(process),
            client_port,
        })
    }

    fn wait_serving(&self, limit: Duration) -> io::Result<()> {
        let port = self.client_port;
        self.process().wait_ready(limit, || mode(port).is_some())
    }
}

/// A standalone ZooKeeper server on a free loopback port, data in `target/testkit/zookeeper-*`.
/// Shareable across threads (fault methods take `&self`).
#[derive(Debug)]
pub struct ZkServer {
    node: Node,
    dir: PathBuf,
}

impl ZkServer {
    /// Starts a server and waits until it serves (`srvr` shows a `Mode:`).
    pub fn start() -> io::Result<Self> {
        let dir = scratch_dir("zookeeper")?;
        let node = Node::start("zookeeper".into(), &dir, "", None)?;
        let server = ZkServer { node, dir };
        server.node.wait_serving(Duration::from_secs(30))?;
        Ok(server)
    }

    /// The client port (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.node.client_port
    }

    /// `127.0.0.1:PORT`, the connect string.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// `zk://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("zk://{}", self.connect_string())
    }

    /// Its directory (config, data, log).
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// The `Mode:` reported by `srvr` (`standalone`), if serving.
    pub fn mode(&self) -> Option<String> {
        mode(self.port())
    }

    /// Freezes the server (SIGSTOP). Sessions keep ageing on the server's clock, so a pause
    /// longer than a session timeout expires that session once resumed.
    pub fn pause(&self) {
        self.node.process().pause();
    }

    /// Thaws the server (SIGCONT).
    pub fn resume(&self) {
        self.node.process().resume();
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&self) {
        self.node.process().kill();
    }

    /// Restarts on the same port and data directory (nodes and sessions survive on disk)
    /// and waits until it serves.
    pub fn restart(&self) -> io::Result<()> {
        self.node.process().restart()?;
        self.node.wait_serving(Duration::from_secs(30))
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.node.process().pid()
    }
}

/// A three-node ZooKeeper ensemble on loopback, one JVM per node.
#[derive(Debug)]
pub struct ZkEnsemble {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl ZkEnsemble {
    /// Number of nodes.
    pub const SIZE: usize = 3;

    /// Starts three nodes and waits until every one serves (a leader was elected and the
    /// followers synced).
    pub fn start() -> io::Result<Self> {
        let dir = scratch_dir("zookeeper-ensemble")?;
        let mut servers = String::new();
        for id in 1..=Self::SIZE {
            let _ = writeln!(
                servers,
                "server.{id}=127.0.0.1:{}:{}",
                free_port(),
                free_port()
            );
        }
        let mut nodes = Vec::new();
        for id in 1..=Self::SIZE {
            let node_dir = dir.join(format!("node{id}"));
            fs::create_dir_all(&node_dir)?;
            nodes.push(Node::start(
                format!("zookeeper-{id}"),
                &node_dir,
                &servers,
                Some(id),
            )?);
        }
        let ensemble = ZkEnsemble { nodes, dir };
        for node in &ensemble.nodes {
            node.wait_serving(Duration::from_secs(60))?;
        }
        Ok(ensemble)
    }

    fn node(&self, i: usize) -> &Node {
        &self.nodes[i % Self::SIZE]
    }

    /// The client port of node `i` (0-based).
    pub fn port(&self, i: usize) -> u16 {
        self.node(i).client_port
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn connect_string(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `zk://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        format!("zk://{}", self.connect_string())
    }

    /// Its directory (one sub-directory per node).
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// The `Mode:` of node `i`, if it serves.
    pub fn mode(&self, i: usize) -> Option<String> {
        mode(self.port(i))
    }

    /// The index of the current leader, if one serves.
    pub fn leader(&self) -> Option<usize> {
        (0..Self::SIZE).find(|&i| self.mode(i).as_deref() == Some("leader"))
    }

    /// Waits until some node reports itself leader and returns it.
    pub fn wait_leader(&self, limit: Duration) -> io::Result<usize> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.leader() {
                return Ok(i);
            }
            if start.elapsed() > limit {
                return Err(io::Error::other(format!("no leader after {limit:?}")));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every running node has served as leader or follower, under one leader,
    /// for longer than the sync limit. After a whole-ensemble freeze every node reports its
    /// old role for a moment; a follower whose leader went quiet for the sync limit then
    /// gives it up and an election follows, so a single look would pass too early.
    pub fn wait_quorum(&self, limit: Duration) -> io::Result<()> {
        let stable = TICK * (SYNC_LIMIT + 2);
        let start = Instant::now();
        let mut serving_since: Option<(Instant, usize)> = None;
        loop {
            let running: Vec<usize> = (0..Self::SIZE).filter(|&i| self.is_running(i)).collect();
            let modes: Vec<Option<String>> = running.iter().map(|&i| self.mode(i)).collect();
            let leaders: Vec<usize> = running
                .iter()
                .zip(&modes)
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(&i, _)| i)
                .collect();
            let serving = leaders.len() == 1
                && modes
                    .iter()
                    .all(|m| matches!(m.as_deref(), Some("leader" | "follower")));
            serving_since = match (serving, serving_since) {
                (true, Some((since, leader))) if leader == leaders[0] => Some((since, leader)),
                (true, _) => Some((Instant::now(), leaders[0])),
                (false, _) => None,
            };
            if serving_since.is_some_and(|(since, _)| since.elapsed() >= stable) {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(io::Error::other(format!(
                    "no stable serving quorum after {limit:?}: modes of nodes {running:?} are {modes:?}"
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills every node, starts them all again on their ports and data (nodes and sessions
    /// survive on disk), and waits for a stable quorum.
    pub fn restart_all(&self) -> io::Result<()> {
        for node in &self.nodes {
            node.process().kill();
        }
        // All are down before any starts: the restarted ensemble elects afresh.
        for node in &self.nodes {
            node.process().restart()?;
        }
        for node in &self.nodes {
            node.wait_serving(Duration::from_secs(60))?;
        }
        self.wait_quorum(Duration::from_secs(30))
    }

    /// Freezes node `i` (SIGSTOP).
    pub fn pause(&self, i: usize) {
        self.node(i).process().pause();
    }

    /// Thaws node `i` (SIGCONT).
    pub fn resume(&self, i: usize) {
        self.node(i).process().resume();
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&self, i: usize) {
        self.node(i).process().kill();
    }

    /// Stops node `i` (same as [`ZkEnsemble::kill`]: a JVM has nothing to flush that the
    /// ensemble does not already have).
    pub fn stop(&self, i: usize) {
        self.kill(i);
    }

    /// Restarts node `i` on its ports and data, and waits until it serves again.
    pub fn restart(&self, i: usize) -> io::Result<()> {
        let node = self.node(i);
        node.process().restart()?;
        node.wait_serving(Duration::from_secs(60))
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.node(i).process().is_running()
    }

    /// The process id of node `i`, while running.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.node(i).process().pid()
    }
}
