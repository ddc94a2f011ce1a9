//! The FIFO waiter queue of one lock file: ticket files in `<lock file>.q/`.
//!
//! A waiter creates the ticket `max + 1` (`O_CREAT|O_EXCL`, retried on a clash) and holds an
//! exclusive `flock` on it while it waits; only the waiter whose ticket is the lowest live
//! one may try the lock, and an acquire without a ticket (a first try, a `try_acquire`)
//! only tries when no live ticket exists. So a releasing process that comes straight back
//! queues behind the waiters instead of re-taking the lock before a woken one runs.
//!
//! A ticket whose `flock` is free belongs to a dead waiter (the kernel dropped its locks) or
//! one that left: whoever finds it takes its `flock` and unlinks it. One rule keeps that
//! from ever unlinking a live ticket: **a ticket's path is only unlinked by the holder of
//! the `flock` on the file it names**, checked (same inode) after taking the `flock`. While
//! a process holds that `flock`, nobody else can unlink the path, so the path still names
//! that file when it unlinks. A new ticket is checked the same way after its owner's
//! `flock`: if someone unlinked it in between (it looked dead), the owner takes another.
//!
//! The queue lives in a subdirectory so an uncontended acquire costs one directory read (a
//! failed open for a name never contended), and ticket events do not reach the lock
//! directory's watcher: waiters wake on lock files' close events only (a release; a waiter
//! that gave up or died closes its lock file too, after unlinking its ticket). Like lock
//! files, queue directories stay once made: removing and re-making one costs more than a
//! contended acquire's handoff.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;

/// Ticket names are zero-padded so that a listing sorts like the numbers.
const WIDTH: usize = 20;
/// Tries to take a ticket before giving up: each failed try means another process changed
/// the queue in between, so this bounds a pathological race, not a normal wait.
const MAX_JOIN_TRIES: usize = 1000;

/// The queue directory of one lock.
#[derive(Debug)]
pub(crate) struct Queue {
    dir: PathBuf,
}

impl Queue {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Queue { dir }
    }

    /// Whether any live ticket is queued (dead ones found on the way are removed).
    pub(crate) fn has_waiters(&self) -> io::Result<bool> {
        Ok(self.live_before(u64::MAX)?.is_some())
    }

    /// Takes the next ticket: the caller is queued behind every live ticket until the
    /// ticket is dropped. `left` is woken when a ticket is given up without being served.
    pub(crate) fn join(&self, left: Arc<Notify>) -> io::Result<Ticket> {
        for _ in 0..MAX_JOIN_TRIES {
            let seq = match self.tickets() {
                Ok(tickets) => tickets.last().copied().unwrap_or(0) + 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match fs::create_dir(&self.dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let path = self.dir.join(format!("{seq:0WIDTH$}"));
            let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            match file.try_lock() {
                Ok(()) => {}
                // Taken by someone who found it unlocked and thinks it dead: they unlink it.
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if !names(&path, &file)? {
                // Unlinked between the create and our flock: not in the queue.
                continue;
            }
            return Ok(Ticket {
                flock: Some(file),
                path,
                seq,
                queue: self.dir.clone(),
                ahead: None,
                left: Some(left),
            });
        }
        Err(io::Error::other(format!(
            "the waiter queue {} kept changing: no ticket after {MAX_JOIN_TRIES} tries",
            self.dir.display()
        )))
    }

    /// Ticket numbers, ascending.
    fn tickets(&self) -> io::Result<Vec<u64>> {
        let mut seqs: Vec<u64> = fs::read_dir(&self.dir)?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// The nearest live ticket below `seq`, checked from the nearest one down (usually one
    /// open and `flock` try), open read-only. Dead tickets on the way are removed.
    fn live_before(&self, seq: u64) -> io::Result<Option<Ahead>> {
        let tickets = match self.tickets() {
            Ok(tickets) => tickets,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        for &before in tickets.iter().rev().filter(|&&s| s < seq) {
            let path = self.dir.join(format!("{before:0WIDTH$}"));
            // Read-only: closing it makes no close-after-write event.
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let ahead = Ahead { path, file };
            if ahead.is_live()? {
                return Ok(Some(ahead));
            }
            ahead.close();
        }
        Ok(None)
    }
}

/// A ticket ahead of ours, kept open so that checking it again costs one `flock` try.
#[derive(Debug)]
struct Ahead {
    path: PathBuf,
    file: File,
}

impl Ahead {
    /// Whether its owner still holds its `flock`. If not, the owner left (and unlinked it)
    /// or died: then it is removed here; drop it with [`Ahead::close`].
    fn is_live(&self) -> io::Result<bool> {
        match self.file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(true),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // Its flock is ours now: nobody else can unlink the path while we check and unlink.
        if names(&self.path, &self.file)? {
            match fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Closes a ticket found dead: ours may be the last reference to the unlinked file.
    fn close(self) {
        close_later(self.file);
    }
}

/// Whether `path` names the open `file` (same device and inode).
fn names(path: &Path, file: &File) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A waiter's place in the queue, held by its `flock`. Dropping it unlinks it; drop it
/// before closing the waiter's lock file, so that the close event other waiters wake on
/// comes after the ticket is gone.
#[derive(Debug)]
pub(crate) struct Ticket {
    /// Open for its `flock`: the ticket is live while this is.
    flock: Option<File>,
    path: PathBuf,
    seq: u64,
    queue: PathBuf,
    /// The nearest live ticket ahead, as last seen.
    ahead: Option<Ahead>,
    /// Woken when the ticket is dropped unserved (a timeout, a cancelled acquire); `None`
    /// once served.
    left: Option<Arc<Notify>>,
}

impl Ticket {
    /// Whether no live ticket is ahead of this one (dead ones are removed on the way). While
    /// one is, a check costs one `flock` try on it.
    pub(crate) fn is_first(&mut self) -> io::Result<bool> {
        if let Some(ahead) = self.ahead.take() {
            if ahead.is_live()? {
                self.ahead = Some(ahead);
                return Ok(false);
            }
            ahead.close();
        }
        self.ahead = Queue::new(self.queue.clone()).live_before(self.seq)?;
        Ok(self.ahead.is_none())
    }

    /// The waiter got the lock: leave the queue without waking anyone (the next waiter waits
    /// for this hold's release).
    pub(crate) fn served(mut self) {
        self.left = None;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // We hold its flock, so the path still names it (see the module comment). Unlinked,
        // it is out of the queue: the close below only frees a nameless file.
        let _ = fs::remove_file(&self.path);
        if let Some(left) = self.left.take() {
            left.notify_waiters();
        }
        if let Some(file) = self.flock.take() {
            close_later(file);
        }
    }
}

/// Closes `file` off the caller's path when a Tokio runtime is at hand: the last close of an
/// unlinked file frees its inode, which costs about 0.3 ms on ext4, and a waiter that just
/// got the lock should not pay that before returning. Its `flock` is dropped here and now,
/// though: a waiter keeping this ticket open as the one ahead sees it gone only then, and
/// the close may wait long behind other work in the runtime's blocking pool.
fn close_later(file: File) {
    // Unlocking a file only this process holds costs no I/O. If it fails, the close frees
    // the lock anyway.
    let _ = file.unlock();
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(move || drop(file))),
        Err(_) => drop(file),
    }
}
