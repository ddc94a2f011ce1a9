//! A throwaway MariaDB server (`mariadb-install-db` + `mariadbd`).
//!
//! Never the machine's own server on 3306: every instance gets a free loopback port, its
//! own data directory under `target/testkit/mariadb-*`, its own socket and pid file, and
//! `--no-defaults` so no system option file leaks in.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::process::{find_program, free_port, port_open, scratch_dir, ServerProcess, Spec};

/// The database made at start for clients in `GET_LOCK` mode.
pub const GET_LOCK_DATABASE: &str = "distlock";
/// The database made at start for clients in row-lock mode.
pub const ROW_LOCK_DATABASE: &str = "distlock_row_lock";

/// A `mariadbd` on a free loopback port. Shareable across threads (fault methods take
/// `&self`). Connect as `root` with no password: [`MariaDbServer::url`].
#[derive(Debug)]
pub struct MariaDbServer {
    process: Mutex<ServerProcess>,
    port: u16,
    dir: PathBuf,
    client: PathBuf,
    admin: PathBuf,
}

fn require(program: &str) -> io::Result<PathBuf> {
    find_program(program).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{program}: {}",
                crate::install_hint("mariadb-server (and mariadb-client)")
            ),
        )
    })
}

impl MariaDbServer {
    /// Creates a data directory, starts the server and waits until it answers a ping.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&[])
    }

    /// Like [`MariaDbServer::start`], with extra `mariadbd` arguments
    /// (e.g. `["--wait-timeout=2"]`).
    pub fn start_with(extra: &[&str]) -> io::Result<Self> {
        let install = require("mariadb-install-db")?;
        let server = require("mariadbd")?;
        let client = require("mariadb")?;
        let admin = require("mariadb-admin")?;
        let port = free_port();
        let dir = scratch_dir("mariadb")?;
        sweep_stale_dirs(&dir);
        let data = dir.join("data");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        install_data_dir(&install, &dir, &data, &tmp)?;

        let d = data.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "--no-defaults".into(),
            "--user=root".into(),
            format!("--datadir={d}"),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={d}/mysqld.sock"),
            format!("--tmpdir={}", tmp.to_string_lossy()),
            format!("--pid-file={d}/mariadbd.pid"),
            format!("--log-error={}", dir.join("error.log").to_string_lossy()),
            "--skip-log-bin".into(),
            "--skip-name-resolve".into(),
            "--innodb-buffer-pool-size=64M".into(),
            "--innodb-log-file-size=8M".into(),
            // Tests start many short-lived clients at once.
            "--max-connections=500".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = ServerProcess::start(Spec {
            label: format!("mariadb:{port}"),
            program: server,
            args,
            env: Vec::new(),
            log: dir.join("error.log"),
            cwd: Some(dir.clone()),
        })?;
        let server = MariaDbServer {
            process: Mutex::new(process),
            port,
            dir,
            client,
            admin,
        };
        server.wait_ready()?;
        // distlock never creates a database; one per lock mode (the modes refuse to share).
        server.sql(&format!(
            "CREATE DATABASE IF NOT EXISTS {GET_LOCK_DATABASE}; \
             CREATE DATABASE IF NOT EXISTS {ROW_LOCK_DATABASE}"
        ))?;
        Ok(server)
    }

    fn process(&self) -> MutexGuard<'_, ServerProcess> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_ready(&self) -> io::Result<()> {
        self.process()
            .wait_ready(Duration::from_secs(30), || self.ping())
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:PORT/distlock` (no password): the database made at start for
    /// `GET_LOCK` mode.
    pub fn url(&self) -> String {
        self.url_for(GET_LOCK_DATABASE)
    }

    /// `mysql://root@127.0.0.1:PORT/DATABASE` (no password).
    pub fn url_for(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// Its scratch directory (the data directory is `data/` inside it).
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

    /// Kills the server and starts it again on the same port with the same data directory
    /// (InnoDB recovers its tables), then waits until ready.
    pub fn restart(&self) -> io::Result<()> {
        self.process().restart()?;
        self.wait_ready()
    }

    /// Whether it accepts a TCP connection and `mariadb-admin ping` succeeds.
    pub fn ping(&self) -> bool {
        port_open(self.port)
            && self
                .run(&self.admin, &["--connect-timeout=2", "ping"])
                .is_ok_and(|o| o.status.success())
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process().pid()
    }

    /// Runs SQL with the `mariadb` command-line client as root and returns its tab-separated
    /// output without column names (for tests that need no client crate).
    pub fn sql(&self, statements: &str) -> io::Result<String> {
        let out = self.run(
            &self.client,
            &["--connect-timeout=5", "-N", "-B", "-e", statements],
        )?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "mariadb -e {statements:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn run(&self, program: &Path, args: &[&str]) -> io::Result<Output> {
        Command::new(program)
            .arg("--no-defaults")
            .arg("--protocol=tcp")
            .arg("-h127.0.0.1")
            .arg(format!("-P{}", self.port))
            .arg("-uroot")
            .args(args)
            .stdin(Stdio::null())
            .output()
    }
}

impl Drop for MariaDbServer {
    /// Stops the server and deletes its scratch directory (about 40 MB each), unless the
    /// thread is panicking: then the data and the log stay for the post-mortem.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.process().kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deletes, once per process, the scratch directories `mariadb-PID-N` next to `dir` whose
/// process is gone: servers shared through a `static` are never dropped, and failed runs
/// keep theirs, so they would otherwise pile up run after run.
fn sweep_stale_dirs(dir: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(parent) = dir.parent() else { return };
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("mariadb-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let gone = !Path::new(&format!("/proc/{pid}")).exists();
            if pid != std::process::id() && gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// Runs `mariadb-install-db`. Runs are serialised within the process and retried once
/// with a fresh data directory: concurrent bootstraps on a loaded machine occasionally
/// fail on their temporary tables.
fn install_data_dir(install: &Path, dir: &Path, data: &Path, tmp: &Path) -> io::Result<()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = None;
    for _attempt in 0..2 {
        if data.exists() {
            std::fs::remove_dir_all(data)?;
        }
        match install_once(install, dir, data, tmp) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("mariadb-install-db did not run")))
}

fn install_once(install: &Path, dir: &Path, data: &Path, tmp: &Path) -> io::Result<()> {
    let log = File::create(dir.join("install.log"))?;
    let status = Command::new(install)
        .arg("--no-defaults")
        .arg("--user=root")
        .arg(format!("--datadir={}", data.to_string_lossy()))
        .arg(format!("--tmpdir={}", tmp.to_string_lossy()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .arg("--skip-name-resolve")
        .arg("--innodb-log-file-size=8M")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "mariadb-install-db failed ({status}); log {}:\n{}",
            dir.join("install.log").display(),
            crate::process::tail(&dir.join("install.log"), 40)
        )));
    }
    Ok(())
}
