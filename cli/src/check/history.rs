//! The histories of a campaign: what each worker, the fenced register and the nemesis
//! recorded, as JSON lines files in one directory, and how they are read back.
//!
//! Times are `CLOCK_MONOTONIC` nanoseconds, which Linux keeps system-wide, so readings of
//! different processes compare (and no NTP step can reorder them); wall-clock nanoseconds
//! are recorded beside them for people reading the files.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::args::Fault;

/// Now, in system-wide monotonic nanoseconds.
pub fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// Now, in wall-clock nanoseconds since the Unix epoch.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// How a release ended, as a worker saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// The store confirmed the release.
    Ok,
    /// The store said this hold no longer owned the lock.
    NotHeld,
    /// The guard had signalled a loss although the store still had the hold.
    Lost,
    /// Any other error (connection, timeout).
    Error,
}

/// One line of a worker's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// The worker process started.
    Start { mono: u64, wall: u64, pid: u32 },
    /// An acquire returned a hold; `called` is when it was called (a fault in between can
    /// already have hit the hold).
    Acquired {
        #[serde(default)]
        called: u64,
        mono: u64,
        wall: u64,
        token: Option<u64>,
    },
    /// A fenced write at the register during the hold.
    Write {
        mono: u64,
        token: u64,
        accepted: bool,
    },
    /// The guard's lost signal fired (or `is_held` turned false) during the hold.
    Lost {
        mono: u64,
        wall: u64,
        reason: String,
    },
    /// The release returned; `called` is when it was called, which ends the critical
    /// section (the store may free the lock before the reply arrives).
    Released {
        called: u64,
        mono: u64,
        wall: u64,
        result: Release,
        detail: String,
    },
    /// An acquire (or connect) failed; the worker retries.
    AcquireFailed { mono: u64, error: String },
    /// The worker stopped on request.
    Exit { mono: u64 },
}

/// One accepted or rejected write at the fenced register, in the register's own order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterEntry {
    /// When the register decided.
    pub mono: u64,
    /// The writer (`slot.generation`).
    pub holder: String,
    /// The writer's fencing token.
    pub token: u64,
    /// The newest token the register had seen before.
    pub previous: Option<u64>,
    /// Whether the write was accepted.
    pub accepted: bool,
}

/// One line of the nemesis' history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum NemesisEvent {
    /// A phase began: faults of this kind follow until `PhaseEnd`.
    Phase { fault: Fault, mono: u64, wall: u64 },
    /// A fault, from its start to its end (equal for instant ones).
    Fault {
        fault: Fault,
        start: u64,
        end: u64,
        /// The worker it hit, for holder faults.
        target: Option<String>,
        detail: String,
    },
    /// The campaign ended (workers were asked to stop).
    End { mono: u64 },
}

/// Appends JSON lines, one `write` per line so a killed process leaves whole lines.
#[derive(Debug)]
pub struct Log {
    file: File,
}

impl Log {
    /// Opens (creates) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Log> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Log { file })
    }

    /// Appends one record.
    pub fn append<T: Serialize>(&mut self, record: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

/// Reads a JSON lines file; a torn last line (a process killed mid-write) is skipped.
pub fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Vec<T>> {
    let reader = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if let Ok(record) = serde_json::from_str(&line) {
            out.push(record);
        }
    }
    Ok(out)
}
