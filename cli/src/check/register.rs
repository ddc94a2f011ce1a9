//! The checker's own fenced register: the protected resource of a campaign. It keeps the
//! newest fencing token it accepted and refuses writes with an older one, the way
//! `distlock::fence` guards a file, a Redis key or a SQL row; a later change can put
//! `distlock::fence` here instead. Every decision is logged in the register's own order.
//!
//! The register is one file on this host, guarded by `flock`, so the register itself is
//! correct whatever the lock under test does: it is the referee, not the subject.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use super::history::{mono_ns, Log, RegisterEntry};

/// The register's directory: `value` (the newest token) and `log.jsonl` (every decision).
#[derive(Debug, Clone)]
pub struct Register {
    dir: PathBuf,
}

impl Register {
    /// The register in `dir` (created if missing).
    pub fn open(dir: &Path) -> io::Result<Register> {
        std::fs::create_dir_all(dir)?;
        Ok(Register {
            dir: dir.to_path_buf(),
        })
    }

    /// The decision log's path.
    pub fn log_path(dir: &Path) -> PathBuf {
        dir.join("log.jsonl")
    }

    /// Writes as `holder` with fencing token `token`: accepted when `token` is at least the
    /// newest accepted one (a holder writes several times under one token), refused when
    /// older. Returns whether it was accepted.
    pub fn write(&self, holder: &str, token: u64) -> io::Result<bool> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join("value"))?;
        flock(&file, FlockOperation::LockExclusive)?;
        let previous = read_token(&mut file)?;
        let accepted = previous.is_none_or(|p| token >= p);
        if accepted {
            file.seek(SeekFrom::Start(0))?;
            file.set_len(0)?;
            file.write_all(token.to_string().as_bytes())?;
        }
        Log::open(&Self::log_path(&self.dir))?.append(&RegisterEntry {
            mono: mono_ns(),
            holder: holder.to_string(),
            token,
            previous,
            accepted,
        })?;
        // Closing the file drops the flock.
        Ok(accepted)
    }
}

fn read_token(file: &mut File) -> io::Result<Option<u64>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    Ok(text.trim().parse().ok())
}
