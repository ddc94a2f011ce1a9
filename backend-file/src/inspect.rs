//! [`Inspect`] for lock files: holders are the lock files that `/proc/locks` lists with an
//! `FLOCK` (matched by device and inode), with the holding process id from there, the
//! fencing counter from the file, and the age from its modification time (the counter is
//! written at each acquire). Linux only: elsewhere `holders` is `Unsupported`.
//!
//! A hold cannot be broken: `flock` offers no way to take a lock from a live process, and
//! the holder could not be told. [`Inspect::break_lock`] says so with an `Unsupported` error
//! naming the process to stop (its lock is freed when it exits).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;
use distlock_core::{Holder, HolderMeta, Inspect, LockError, LockName, Result};

use crate::lock::FileLock;
use crate::path::lock_file;

/// `(major, minor, inode)` → pid of every `FLOCK` in `/proc/locks`.
fn flocks() -> Result<HashMap<(u64, u64, u64), u32>> {
    let text = fs::read_to_string("/proc/locks").map_err(|e| {
        LockError::unsupported("listing lock-file holders needs Linux's /proc/locks").with_source(e)
    })?;
    let mut held = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:00:5678 0 EOF"; blocked waiters have a "->".
        if fields.get(1) != Some(&"FLOCK") {
            continue;
        }
        let (Some(pid), Some(id)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let mut parts = id.split(':');
        let (Some(major), Some(minor), Some(inode)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let parsed = (
            u64::from_str_radix(major, 16),
            u64::from_str_radix(minor, 16),
            inode.parse::<u64>(),
            pid.parse::<u32>(),
        );
        if let (Ok(major), Ok(minor), Ok(inode), Ok(pid)) = parsed {
            held.insert((major, minor, inode), pid);
        }
    }
    Ok(held)
}

/// Linux's split of a `dev_t` into major and minor numbers.
fn split_dev(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// The holder of the lock file at `path`, if `held` lists it.
fn holder_of(path: &Path, name: String, held: &HashMap<(u64, u64, u64), u32>) -> Option<Holder> {
    let meta = fs::metadata(path).ok()?;
    let (major, minor) = split_dev(meta.dev());
    let pid = *held.get(&(major, minor, meta.ino()))?;
    let mut holder = Holder::new(name);
    let mut counter = [0u8; 8];
    if fs::File::open(path)
        .and_then(|f| f.read_at(&mut counter, 0))
        .ok()
        == Some(8)
    {
        holder.fencing_token = Some(u64::from_le_bytes(counter));
    }
    holder.age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    // The pid is the holder's; the host is this one (lock files are local); the label is
    // not stored.
    holder.meta = HolderMeta::this_process();
    holder.meta.pid = Some(pid);
    holder.meta.label = None;
    holder.session = Some(format!("pid {pid}"));
    Some(holder)
}

#[async_trait]
impl Inspect for FileLock {
    async fn holders(&self, prefix: &str) -> Result<Vec<Holder>> {
        let held = flocks()?;
        let entries = fs::read_dir(self.dir()).map_err(|e| {
            LockError::backend(format!("cannot list {}", self.dir().display())).with_source(e)
        })?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
                continue;
            };
            // Escaped stems decode back to the name; hashed ones (very long names) stay as is.
            let name = distlock_core::settings::percent_decode("lock name", stem)
                .ok()
                .unwrap_or_else(|| stem.to_string());
            if !name.starts_with(prefix) {
                continue;
            }
            if let Some(holder) = holder_of(&entry.path(), name, &held) {
                found.push(holder);
            }
        }
        Ok(found)
    }

    async fn break_lock(&self, name: &LockName) -> Result<Option<Holder>> {
        let held = flocks()?;
        match holder_of(
            &lock_file(self.dir(), name),
            name.as_str().to_string(),
            &held,
        ) {
            None => Ok(None),
            Some(holder) => Err(LockError::unsupported(format!(
                "{:?} is a lock file held by {}: a flock cannot be taken from a live process \
                 without it noticing, so distlock does not break it; stop that process (its \
                 lock is freed when it exits)",
                name.as_str(),
                holder.session.as_deref().unwrap_or("another process")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dev_numbers_split_like_linux() {
        // makedev(259, 3) with glibc's encoding.
        let dev = ((259u64 & 0xfff) << 8) | (3 & 0xff);
        assert_eq!(super::split_dev(dev), (259, 3));
    }
}
