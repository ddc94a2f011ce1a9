//! The campaign's worker processes: spawned as `distlock check-worker`, frozen, killed and
//! replaced by the nemesis, stopped at the end.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use tokio::process::{Child, Command};

use super::history::WorkerEvent;

/// What every worker gets on its command line.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    /// One URL per slot (they differ only in the test-only split mode).
    pub urls: Vec<String>,
    /// The lock name.
    pub name: String,
    /// The lease.
    pub ttl: Duration,
    /// The directory of histories.
    pub dir: PathBuf,
}

#[derive(Debug)]
struct Slot {
    child: Child,
    generation: u32,
}

/// The live workers, one per slot.
#[derive(Debug)]
pub struct Workers {
    plan: WorkerPlan,
    slots: Vec<Slot>,
}

impl Workers {
    /// Starts one worker per URL of the plan.
    pub fn start(plan: WorkerPlan) -> io::Result<Workers> {
        let mut workers = Workers {
            plan,
            slots: Vec::new(),
        };
        for slot in 0..workers.plan.urls.len() {
            let child = workers.spawn(slot, 0)?;
            workers.slots.push(Slot {
                child,
                generation: 0,
            });
        }
        Ok(workers)
    }

    /// The id a worker logs under: `slot.generation`.
    pub fn id(&self, slot: usize) -> String {
        format!("{slot}.{}", self.slots[slot].generation)
    }

    /// Its history file.
    pub fn history(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("worker-{id}.jsonl"))
    }

    fn spawn(&self, slot: usize, generation: u32) -> io::Result<Child> {
        let id = format!("{slot}.{generation}");
        let stderr = std::fs::File::create(self.plan.dir.join(format!("worker-{id}.stderr")))?;
        Command::new(std::env::current_exe()?)
            .arg("check-worker")
            .env(super::args::WORKER_URL_ENV, &self.plan.urls[slot])
            .args(["--name", &self.plan.name])
            .args([
                "--id",
                &id,
                "--ttl",
                &format!("{}ms", self.plan.ttl.as_millis()),
            ])
            .arg("--history")
            .arg(Self::history(&self.plan.dir, &id))
            .arg("--register")
            .arg(self.plan.dir.join("register"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
    }

    /// A slot whose worker holds the lock now (by its history's last line); after a second
    /// without one, any slot.
    pub async fn holder(&self) -> usize {
        for _ in 0..100 {
            for slot in 0..self.slots.len() {
                let path = Self::history(&self.plan.dir, &self.id(slot));
                if let Ok(Some(WorkerEvent::Acquired { .. } | WorkerEvent::Write { .. })) =
                    last_event(&path)
                {
                    return slot;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rand::random_range(0..self.slots.len())
    }

    /// SIGSTOP (true) or SIGCONT (false) one worker.
    pub fn stop(&self, slot: usize, stop: bool) {
        let signal = if stop { Signal::STOP } else { Signal::CONT };
        self.signal(slot, signal);
    }

    fn signal(&self, slot: usize, signal: Signal) {
        let pid = self.slots[slot]
            .child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw);
        if let Some(pid) = pid {
            let _ = kill_process(pid, signal);
        }
    }

    /// SIGKILLs one worker, reaps it, and starts its successor. Returns when it was
    /// reaped (monotonic ns): it was dead by then.
    pub async fn kill_and_respawn(&mut self, slot: usize) -> io::Result<u64> {
        self.signal(slot, Signal::KILL);
        let _ = self.slots[slot].child.wait().await;
        let dead = super::history::mono_ns();
        let generation = self.slots[slot].generation + 1;
        let child = self.spawn(slot, generation)?;
        self.slots[slot] = Slot { child, generation };
        Ok(dead)
    }

    /// Asks every worker to finish its hold and exit (SIGCONT, SIGTERM); SIGKILLs those
    /// still running after `grace`. Returns the ids of the ones that had to be killed.
    pub async fn stop_all(&mut self, grace: Duration) -> Vec<String> {
        for slot in 0..self.slots.len() {
            self.signal(slot, Signal::CONT);
            self.signal(slot, Signal::TERM);
        }
        let mut killed = Vec::new();
        for slot in 0..self.slots.len() {
            let id = self.id(slot);
            let child = &mut self.slots[slot].child;
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.kill().await;
                killed.push(id);
            }
        }
        killed
    }
}

/// The last whole line of a history, parsed.
fn last_event(path: &Path) -> io::Result<Option<WorkerEvent>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(1024)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok()))
}
