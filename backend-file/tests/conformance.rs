//! The conformance suite on lock files, including the cross-process cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::sync::OnceLock;

use async_trait::async_trait;
use distlock_conformance::Harness;
use distlock_core::{DistributedLock, Result};
use distlock_file::FileLock;

const DIR_ENV: &str = "DISTLOCK_TEST_FILE_DIR";

struct FileHarness {
    dir: PathBuf,
}

fn shared_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // A child process of a cross-process case locks in its parent's directory.
        std::env::var_os(DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("file-locks-{}", std::process::id()))
            })
    })
    .clone()
}

#[async_trait]
impl Harness for FileHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(FileLock::new(&self.dir)?))
    }
    fn child_env(&self) -> Vec<(String, String)> {
        vec![(DIR_ENV.into(), self.dir.to_string_lossy().into_owned())]
    }
    fn backstop(&self) -> std::time::Duration {
        // The kernel frees a dead process's flock at once.
        std::time::Duration::from_millis(500)
    }
}

distlock_conformance::conformance_tests!(FileHarness { dir: shared_dir() });
