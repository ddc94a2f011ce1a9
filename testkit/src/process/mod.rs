//! Server control: starting, pausing, resuming, killing and restarting one server process
//! (fault injection), and waiting until it is ready. How no server outlives the tests is in
//! `supervision.rs`; ports and scratch directories are in `crate::ports` and `crate::dirs`.

mod log;
mod supervision;

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub use self::log::tail;
pub use self::supervision::dump_live_logs;
use self::supervision::{
    die_with_parent, install_hooks, lock_live, signal, spawner, Live, NEXT_ID,
};
// Kept here too: servers and tests have imported them from this module.
pub use crate::dirs::{find_program, scratch_dir};
pub use crate::ports::{free_port, port_open};

/// How to start (and restart) one server process.
#[derive(Clone, Debug)]
pub struct Spec {
    /// A short label for logs ("redis", "zookeeper-2", …).
    pub label: String,
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr go (appended, so restarts keep earlier output).
    pub log: PathBuf,
    /// The working directory.
    pub cwd: Option<PathBuf>,
}

/// A running server process. Killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    spec: Spec,
    child: Option<Child>,
    id: u64,
}

impl ServerProcess {
    /// Starts the process described by `spec`.
    pub fn start(spec: Spec) -> io::Result<Self> {
        install_hooks();
        let mut server = ServerProcess {
            spec,
            child: None,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> io::Result<()> {
        if let Some(parent) = self.spec.log.parent() {
            fs::create_dir_all(parent)?;
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)?;
        let mut command = Command::new(&self.spec.program);
        command
            .args(&self.spec.args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(cwd) = &self.spec.cwd {
            command.current_dir(cwd);
        }
        die_with_parent(&mut command);
        let (tx, rx) = mpsc::channel();
        spawner()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((command, tx))
            .map_err(|_| io::Error::other("testkit spawner thread is gone"))?;
        let child = rx
            .recv()
            .map_err(|_| io::Error::other("testkit spawner thread is gone"))??;
        lock_live().insert(
            self.id,
            Live {
                pid: child.id(),
                label: self.spec.label.clone(),
                log: self.spec.log.clone(),
            },
        );
        self.child = Some(child);
        Ok(())
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The spec it was started from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.spec.log, lines)
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets but answers nothing. Returns once
    /// every thread has stopped (at most about 2 s): the stop reaches each thread of a
    /// multi-threaded server (a JVM) on its own, and a thread still running could answer
    /// one more request after `kill(2)` returned.
    pub fn pause(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGSTOP);
            let start = Instant::now();
            while !all_threads_stopped(pid) && start.elapsed() < Duration::from_secs(2) {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGCONT);
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
        lock_live().remove(&self.id);
    }

    /// Kills (if running) and starts the process again from the same spec (same port,
    /// same data directory).
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Polls `ready` every 20 ms until it returns true, the process exits, or `limit` passes.
    /// The error carries the log tail.
    pub fn wait_ready(
        &mut self,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if !self.is_running() {
                return Err(io::Error::other(format!(
                    "{} exited during start-up; log {}:\n{}",
                    self.spec.label,
                    self.spec.log.display(),
                    self.log_tail(40)
                )));
            }
            if start.elapsed() > limit {
                return Err(io::Error::other(format!(
                    "{} not ready after {limit:?}; log {}:\n{}",
                    self.spec.label,
                    self.spec.log.display(),
                    self.log_tail(40)
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- testkit: last lines of {} log {} ----\n{}",
                self.spec.label,
                self.spec.log.display(),
                self.log_tail(40)
            );
        }
        self.kill();
    }
}

/// Whether every thread of `pid` is stopped (or gone), from `/proc/<pid>/task/*/stat`.
pub fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        let Ok(stat) = fs::read_to_string(task.path().join("stat")) else {
            return true;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        matches!(state, None | Some('T' | 't' | 'Z' | 'X'))
    })
}
