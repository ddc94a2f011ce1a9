//! The client.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use distlock_core::backend::{new_owner_token, Backoff, Deadline, GuardParts, HoldStatus};
use distlock_core::{
    AcquireOptions, Capabilities, DistributedLock, LockError, LockGuard, LockName, Result,
    RetryPolicy,
};
use tokio::sync::Notify;

use crate::fence;
use crate::hold::FileHold;
use crate::path::lock_file;

const MAX_BACKOFF: Duration = Duration::from_millis(25);

/// A client that locks files in one directory. Cheap to clone; clones share the in-process
/// release notifications.
#[derive(Clone, Debug)]
pub struct FileLock {
    dir: PathBuf,
    released: Arc<Notify>,
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
            released: Arc::new(Notify::new()),
        })
    }

    /// The directory holding the lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn try_once(&self, name: &LockName) -> Result<Option<(File, u64)>> {
        let path = lock_file(&self.dir, name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                LockError::backend(format!("cannot open {}", path.display())).with_source(e)
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => {
                return Err(LockError::backend("flock failed").with_source(e))
            }
        }
        // Dropping `file` on the error path unlocks it.
        let token = fence::bump(&file)
            .map_err(|e| LockError::backend("cannot update the fencing counter").with_source(e))?;
        Ok(Some((file, token)))
    }

    fn guard(&self, name: &LockName, file: File, fencing: u64) -> LockGuard {
        LockGuard::new(GuardParts {
            name: name.clone(),
            owner_token: new_owner_token(),
            fencing_token: Some(fencing),
            hold: Arc::new(FileHold {
                file: Mutex::new(Some(file)),
                released: self.released.clone(),
            }),
            status: HoldStatus::new(),
            lease: None,
        })
    }
}

#[async_trait]
impl DistributedLock for FileLock {
    /// # Cancel safety
    /// Cancel safe: every attempt is a non-blocking `try_lock`; a lock taken by an attempt is
    /// owned by a `File` that is closed (unlocked) if the future is dropped.
    async fn acquire_with(
        &self,
        name: &LockName,
        options: &AcquireOptions,
    ) -> Result<Option<LockGuard>> {
        let deadline = Deadline::start(options.wait);
        // Polling, not retrying: the core's backoff shape, from 1 ms up to 25 ms.
        let mut backoff = Backoff::new(&RetryPolicy {
            first_pause: Duration::from_millis(1),
            max_pause: MAX_BACKOFF,
            ..RetryPolicy::default()
        });
        loop {
            let released = self.released.notified();
            if let Some((file, token)) = self.try_once(name)? {
                return Ok(Some(self.guard(name, file, token)));
            }
            let mut nap = backoff.next_pause();
            if deadline.is_try() || deadline.expired() {
                return Ok(None);
            }
            nap = deadline.cap(nap);
            let _ = tokio::time::timeout(nap, released).await;
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_fencing(true)
            .with_cross_process(true)
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
