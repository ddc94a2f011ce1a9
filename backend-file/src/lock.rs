//! The client.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fence;
use crate::hold::FileHold;
use crate::path::{lock_file, queue_dir};
use crate::queue::Queue;
use crate::wake::Wakeups;
use async_trait::async_trait;
use distlock_core::backend::{new_owner_token, Backoff, Deadline, GuardParts, HoldStatus};
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, LockError, LockGuard, LockName, Result,
    RetryPolicy,
};

/// The longest pause between two tries of a waiter without a watcher (it polls).
const MAX_POLL: Duration = Duration::from_millis(25);
/// The longest pause of a waiter with a watcher: a backstop only, for a release whose
/// event raced the unlock (a crashed holder's close) or was missed.
const MAX_BACKSTOP: Duration = Duration::from_millis(250);

/// A client that locks files in one directory. Cheap to clone; clones share the release
/// wake-ups (and the directory watcher).
#[derive(Clone, Debug)]
pub struct FileLock {
    dir: PathBuf,
    wakeups: Arc<Wakeups>,
}

impl FileLock {
    /// Locks files in `dir`, creating it if needed.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| {
            LockError::config(format!(
                "cannot create the lock directory {}",
                dir.display()
            ))
            .with_source(e)
        })?;
        Ok(FileLock {
            dir,
            wakeups: Arc::new(Wakeups::new()),
        })
    }

    /// The directory holding the lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens (creating it if needed) the name's lock file, for one acquire.
    fn open(&self, name: &LockName) -> Result<File> {
        let path = lock_file(&self.dir, name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                LockError::backend(format!("cannot open {}", path.display())).with_source(e)
            })
    }

    /// One non-blocking `flock` on `file`: the fencing token if it was taken. A refused try
    /// leaves `file` open and holding nothing, ready for the next try.
    fn try_lock(file: &File) -> Result<Option<u64>> {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => {
                return Err(LockError::backend("flock failed").with_source(e))
            }
        }
        match fence::bump(file) {
            Ok(token) => Ok(Some(token)),
            Err(e) => {
                // Not handed out: give the lock back at once.
                let _ = file.unlock();
                Err(LockError::backend("cannot update the fencing counter").with_source(e))
            }
        }
    }

    fn guard(&self, name: &LockName, file: File, fencing: u64) -> LockGuard {
        LockGuard::new(GuardParts {
            name: name.clone(),
            owner_token: new_owner_token(),
            fencing_token: Some(fencing),
            hold: Arc::new(FileHold {
                file: Mutex::new(Some(file)),
                released: self.wakeups.handle(),
            }),
            status: HoldStatus::new(),
            lease: None,
        })
    }
}

fn queue_error(e: std::io::Error) -> LockError {
    LockError::backend("the lock file's waiter queue failed").with_source(e)
}

#[async_trait]
impl DistributedLock for FileLock {
    /// Tries `flock` without blocking when no waiter is queued; a waiting acquire then takes
    /// a ticket in the lock's FIFO queue and sleeps until a release of a lock file in the
    /// directory, by this process or (on Linux, through inotify) another, trying again when
    /// its ticket is the first. A try (`wait` zero) fails while live waiters are queued.
    ///
    /// # Cancel safety
    /// Cancel safe: every attempt is a non-blocking `try_lock` on the acquire's own open
    /// file, and a lock it takes is returned in the same step; if the future is dropped, the
    /// ticket is unlinked and the file closed, which unlocks it. No thread is left blocked
    /// in `flock`.
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        let deadline = Deadline::start(options.wait);
        let file = self.open(name)?;
        let queue = Queue::new(queue_dir(&self.dir, name));
        // Never ahead of a queued waiter, not even for a try: that is the FIFO promise.
        if !queue.has_waiters().map_err(queue_error)? {
            if let Some(token) = Self::try_lock(&file)? {
                return Ok(Some(self.guard(name, file, token)));
            }
        }
        if deadline.is_try() || deadline.expired() {
            return Ok(None);
        }
        let watched = self.wakeups.watch(&self.dir);
        // Declared after `file`, so dropped (unlinked) before `file` closes: the close
        // event that wakes the other waiters comes after the ticket is gone.
        let mut ticket = queue.join(self.wakeups.handle()).map_err(queue_error)?;
        let policy = RetryPolicy {
            first_pause: Duration::from_millis(1),
            max_pause: if watched { MAX_BACKSTOP } else { MAX_POLL },
            ..RetryPolicy::default()
        };
        let mut backoff = Backoff::new(&policy);
        loop {
            // Registered before the try, so a release right after it still wakes us.
            let released = self.wakeups.notified();
            if ticket.is_first().map_err(queue_error)? {
                if let Some(token) = Self::try_lock(&file)? {
                    ticket.served();
                    return Ok(Some(self.guard(name, file, token)));
                }
            }
            if deadline.expired() {
                return Ok(None);
            }
            let nap = deadline.cap(backoff.next_pause());
            if tokio::time::timeout(nap, released).await.is_ok() {
                // A release: the next pauses start short again, in case the event came
                // before the unlock (a dead holder's close) and the try below is refused.
                backoff.reset();
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_fencing(true)
            .with_cross_process(true)
            .with_fifo(true)
    }

    fn backend_name(&self) -> &'static str {
        "file"
    }

    /// Holders from `/proc/locks`; breaking is refused (`Unsupported`): see
    /// [`Inspect`](distlock_core::Inspect).
    fn inspect(&self) -> Option<&dyn distlock_core::Inspect> {
        Some(self)
    }
}
