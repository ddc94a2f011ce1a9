//! The command line of `distlock check` and of its hidden worker.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// One kind of fault the nemesis injects; a campaign runs one phase per kind.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// No fault: the baseline.
    None,
    /// SIGSTOP a holder for twice its backstop (lease, session, probe timeout), then SIGCONT.
    HolderStop,
    /// SIGKILL a holder; a new worker takes its place.
    HolderKill,
    /// Close every connection through the proxy.
    ConnCut,
    /// Stop forwarding through the proxy for twice the backstop, then resume.
    ConnFreeze,
    /// SIGSTOP the server for twice the backstop (`--server-faults`).
    ServerPause,
    /// SIGKILL the server and start it again on the same port (`--server-faults`).
    ServerRestart,
    /// `CLIENT KILL` (Redis) / `KILL` (MariaDB) every client session (`--server-faults`).
    SessionKill,
}

impl Fault {
    /// Every fault, in campaign order.
    pub const ALL: [Fault; 8] = [
        Fault::None,
        Fault::HolderStop,
        Fault::HolderKill,
        Fault::ConnCut,
        Fault::ConnFreeze,
        Fault::ServerPause,
        Fault::ServerRestart,
        Fault::SessionKill,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::HolderStop => "holder-stop",
            Fault::HolderKill => "holder-kill",
            Fault::ConnCut => "conn-cut",
            Fault::ConnFreeze => "conn-freeze",
            Fault::ServerPause => "server-pause",
            Fault::ServerRestart => "server-restart",
            Fault::SessionKill => "session-kill",
        }
    }
}

/// A backend `distlock check` can start a throwaway server for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendName {
    /// Lock files in a scratch directory.
    File,
    /// A throwaway `redis-server` (no persistence).
    Redis,
    /// A throwaway ZooKeeper server.
    Zookeeper,
    /// A throwaway MariaDB server (`GET_LOCK`).
    Mariadb,
}

/// `distlock check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The deployment to check (`redis://…`, `zk://…`, `mysql://…`, `file://…`; default
    /// `DISTLOCK_URL` when no `--backend` is given); its host:port is reached through a
    /// local fault-injecting proxy. Without it, throwaway servers are started
    /// (`--backend`; needs the `testkit` build feature).
    #[arg(long)]
    pub url: Option<String>,
    /// Backends to start throwaway servers for when no `--url` is given (repeatable).
    #[arg(long, value_enum)]
    pub backend: Vec<BackendName>,
    /// The lock name the workers contend on.
    #[arg(long, default_value = "distlock-check")]
    pub name: String,
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    pub processes: usize,
    /// Campaign length per backend, split evenly among the fault phases (`90s`, `10m`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Fault phases, comma-separated (default: every fault this setup can inject).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<Fault>,
    /// The lease of leased backends (Redis).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub ttl: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// About two minutes: every backend (file, Redis, ZooKeeper, MariaDB) on throwaway
    /// servers with server faults, 25 s each, 3 workers.
    #[arg(long)]
    pub quick: bool,
    /// With throwaway servers: also pause, restart the server and kill its sessions.
    #[arg(long)]
    pub server_faults: bool,
    /// Keep the histories in this directory (default: a temporary one, removed on success).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// TEST ONLY — breaks mutual exclusion on purpose to show the checker catches it: each
    /// worker of a `file://` URL locks in its own directory (like node-local locks).
    #[arg(long, hide = true)]
    pub unsafe_split_file_locks_for_tests: bool,
}

/// The variable that hands a worker the URL to lock through (the proxy's address when
/// there is one): the environment, never argv, so a password does not show in `ps`.
pub const WORKER_URL_ENV: &str = "DISTLOCK_CHECK_WORKER_URL";

/// The hidden `distlock check-worker`: one contending process of a campaign.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The lock name.
    #[arg(long)]
    pub name: String,
    /// This worker's id in the histories (`slot.generation`).
    #[arg(long)]
    pub id: String,
    /// Its history file (JSON lines).
    #[arg(long)]
    pub history: PathBuf,
    /// The fenced register's directory, shared by every worker.
    #[arg(long)]
    pub register: PathBuf,
    /// The lease of leased backends.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}
