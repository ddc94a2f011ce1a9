//! Spawning, watching and killing server processes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

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

struct Live {
    pid: u32,
    label: String,
    log: PathBuf,
}

fn live() -> &'static Mutex<HashMap<u64, Live>> {
    static LIVE: OnceLock<Mutex<HashMap<u64, Live>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

fn lock_live() -> std::sync::MutexGuard<'static, HashMap<u64, Live>> {
    live().lock().unwrap_or_else(|p| p.into_inner())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Children get PR_SET_PDEATHSIG, which fires when the *thread* that forked them exits, so
/// every spawn happens on this one thread that lives until the process ends.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the testkit spawner thread");
        Mutex::new(tx)
    })
}

#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The test process died between fork and prctl: the signal will never come.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::other("the test process is gone"));
            }
            Ok(())
        });
    }
}

extern "C" fn kill_all_at_exit() {
    // try_lock: a thread still inside `spawn`/`kill` at exit must not hang the exit; the
    // parent-death signal covers those servers anyway.
    let live = match live().try_lock() {
        Ok(live) => live,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for live in live.values() {
        signal(live.pid, libc::SIGCONT);
        signal(live.pid, libc::SIGKILL);
    }
}

#[allow(unsafe_code)]
fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) with a pid we spawned; no memory is shared.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

fn install_hooks() {
    static HOOKS: Once = Once::new();
    HOOKS.call_once(|| {
        #[allow(unsafe_code)]
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(kill_all_at_exit);
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            dump_live_logs();
        }));
    });
}

/// Prints the last lines of every live server's log to stderr.
pub fn dump_live_logs() {
    let entries: Vec<(String, u32, PathBuf)> = lock_live()
        .values()
        .map(|l| (l.label.clone(), l.pid, l.log.clone()))
        .collect();
    for (label, pid, log) in entries {
        eprintln!(
            "---- testkit: last lines of {label} (pid {pid}) log {} ----\n{}",
            log.display(),
            tail(&log, 40)
        );
    }
}

/// The last `lines` lines of a file (empty if unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
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

/// A port that was free on 127.0.0.1 a moment ago. Ports are handed out at most once per
/// process, so two servers started together never race for the same one.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<Vec<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    for _ in 0..10_000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if port == 0 {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut given = given.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    // Test support: failing loudly beats spinning forever without a loopback interface.
    #[allow(clippy::panic)]
    {
        panic!("no free TCP port on 127.0.0.1 (is the loopback interface up?)")
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A fresh directory under `target/testkit/` for one server's data and logs.
pub fn scratch_dir(kind: &str) -> io::Result<PathBuf> {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
        .join("testkit");
    let dir = base.join(format!(
        "{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Finds `program` on PATH or in the usual sbin folders.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
