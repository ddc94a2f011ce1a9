//! A fixed workload for measuring the cost of one `try_acquire` + `release` under
//! `valgrind --tool=callgrind`: `overhead memory|file N` runs N uncontended cycles on one
//! thread. Run it for two values of N and divide the difference in instructions by the
//! difference in N to get the per-cycle cost without the start-up. With `DISTLOCK_OVERHEAD_SUBSCRIBER`
//! set, a `tracing` subscriber that keeps warnings only is installed first, as the CLI does.

use distlock_core::memory::MemoryLock;
use distlock_core::{DistributedLock, LockExt};
use distlock_file::FileLock;

async fn cycles(lock: &dyn DistributedLock, n: u64) {
    for _ in 0..n {
        let guard = lock.try_acquire("overhead").await;
        if let Ok(Some(guard)) = guard {
            let _ = guard.release().await;
        } else {
            eprintln!("acquire failed: {guard:?}");
            std::process::exit(1);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::var_os("DISTLOCK_OVERHEAD_SUBSCRIBER").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .init();
    }
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "memory".into());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    match backend.as_str() {
        "memory" => cycles(&MemoryLock::new(), n).await,
        "file" => {
            let dir =
                std::env::temp_dir().join(format!("distlock-overhead-{}", std::process::id()));
            let lock = match FileLock::new(&dir) {
                Ok(lock) => lock,
                Err(e) => {
                    eprintln!("cannot use {}: {e}", dir.display());
                    std::process::exit(1);
                }
            };
            cycles(&lock, n).await;
            let _ = std::fs::remove_dir_all(&dir);
        }
        other => {
            eprintln!("usage: overhead memory|file N (not {other:?})");
            std::process::exit(2);
        }
    }
}
