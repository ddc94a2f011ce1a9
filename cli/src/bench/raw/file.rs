//! Raw `flock(2)` on a file of the run's directory, one open file per contender.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use distlock::{LockError, Result};

use crate::bench::subject::{Contender, Subject};

pub(crate) struct RawFlock {
    pub(crate) dir: PathBuf,
}

#[async_trait]
impl Subject for RawFlock {
    fn label(&self) -> &'static str {
        "raw"
    }

    fn describe(&self) -> String {
        "flock(LOCK_EX) + unlock on an open file (waits block a thread)".into()
    }

    async fn contender(&self, name: &str) -> Result<Box<dyn Contender>> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", &self.dir, e))?;
        // `.raw`, not `.lock`: never a file the file backend uses.
        let path = self.dir.join(format!("{}.raw", super::flat(name)));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        Ok(Box::new(FlockContender {
            file: Arc::new(file),
        }))
    }
}

struct FlockContender {
    file: Arc<File>,
}

#[async_trait]
impl Contender for FlockContender {
    async fn acquire(&mut self, limit: Duration) -> Result<()> {
        let file = self.file.clone();
        let wait = tokio::task::spawn_blocking(move || file.lock());
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(LockError::backend("raw flock").with_source(e)),
            Ok(Err(e)) => Err(LockError::backend(format!("raw flock thread: {e}"))),
            Err(_) => Err(LockError::timeout("raw flock stayed held")),
        }
    }

    async fn try_acquire(&mut self) -> Result<bool> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(LockError::backend("raw flock").with_source(e))
            }
        }
    }

    async fn release(&mut self) -> Result<()> {
        self.file
            .unlock()
            .map_err(|e| LockError::backend("raw funlock").with_source(e))
    }
}

fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> LockError {
    LockError::backend(format!("{what} {}", path.display())).with_source(e)
}
