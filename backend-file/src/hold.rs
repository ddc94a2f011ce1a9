//! One held lock file.

use std::fs::File;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use distlock_core::backend::Hold;
use distlock_core::{LockError, Result};
use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct FileHold {
    pub(crate) file: Mutex<Option<File>>,
    pub(crate) released: Arc<Notify>,
}

impl FileHold {
    fn unlock(&self) -> Result<()> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| LockError::not_held("this lock file was already released"))?;
        let unlocked = file.unlock();
        // Closing the file releases the lock too, so the error is reported but nothing leaks.
        drop(file);
        self.released.notify_waiters();
        unlocked.map_err(|e| LockError::backend("unlocking the lock file failed").with_source(e))
    }
}

#[async_trait]
impl Hold for FileHold {
    async fn release(&self) -> Result<()> {
        self.unlock()
    }

    /// Lock files have no lease: a `flock` lasts while the file is open. As on every backend
    /// without leases, `extend` only checks that the hold is still ours (`ttl` is ignored).
    async fn extend(&self, _ttl: std::time::Duration) -> Result<()> {
        match &*self.file.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(_) => Ok(()),
            None => Err(LockError::not_held("this lock file was already released")),
        }
    }

    fn release_on_drop(self: Arc<Self>) {
        // No I/O wait involved: unlock synchronously, which also works without a runtime.
        let _ = self.unlock();
    }
}
