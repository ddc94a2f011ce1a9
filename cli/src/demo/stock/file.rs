//! The stock in a file next to the lock files.

use std::path::PathBuf;

use distlock::{fence, LockError, Result};

pub(crate) struct FileStock {
    path: PathBuf,
}

impl FileStock {
    pub(crate) fn open(url: &str, run: &str) -> Result<Self> {
        let dir = url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| LockError::config("a file:// URL needs an absolute path"))?;
        Ok(FileStock {
            path: dir.join(format!("distlock-demo-{run}.stock")),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    pub(crate) async fn reset(&mut self, items: u64) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io("create the directory of", &self.path, e))?;
        }
        self.write(items, None).await
    }

    pub(crate) async fn read(&mut self) -> Result<u64> {
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| io("read", &self.path, e))?;
        super::parse_items(&text, &self.describe())
    }

    pub(crate) async fn write(&mut self, items: u64, token: Option<u64>) -> Result<()> {
        if token.is_some() {
            return fence::file::write(&self.path, items.to_string(), token).await;
        }
        // Unfenced, but still an atomic replace, so a reader never sees a half-written
        // number: the race the demo shows is the lost update, not a torn read.
        let temp = self
            .path
            .with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&temp, items.to_string())
            .await
            .map_err(|e| io("write", &temp, e))?;
        tokio::fs::rename(&temp, &self.path)
            .await
            .map_err(|e| io("replace", &self.path, e))
    }

    pub(crate) async fn remove(&mut self) -> Result<()> {
        match tokio::fs::remove_file(&self.path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &self.path, e)),
        }
        fence::file::forget(&self.path).await
    }
}

fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> LockError {
    LockError::backend(format!("{what} {}", path.display())).with_source(e)
}
