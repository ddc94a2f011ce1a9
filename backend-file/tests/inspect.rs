//! `Inspect` on lock files: holders from /proc/locks (this process and another one), and
//! breaking refused as `Unsupported`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use distlock_core::{DistributedLock, ErrorKind, LockExt, LockName};
use distlock_file::FileLock;

fn scratch() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("file-inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn holders_lists_each_process_hold_and_break_is_refused() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let dir = scratch();
        let (a, b) = (FileLock::new(&dir).unwrap(), FileLock::new(&dir).unwrap());
        let ga = a.acquire("jobs/a").await.unwrap();
        let gb = b.acquire("other ü").await.unwrap();
        a.acquire("jobs/free")
            .await
            .unwrap()
            .release()
            .await
            .unwrap();

        // Another process holds "jobs/c" (flock(1) on its lock file; "/" is escaped as %2F).
        // --no-fork: the shell (then sleep) is the very process that holds the lock.
        let mut other = Command::new("flock")
            .arg("--no-fork")
            .arg(dir.join("jobs%2Fc.lock"))
            .args(["sh", "-c", "echo locked; exec sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("flock(1) from util-linux");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(other.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");

        let inspect = a.inspect().unwrap();
        let mut all = inspect.holders("").await.unwrap();
        all.sort_by(|x, y| x.name.cmp(&y.name));
        let names: Vec<&str> = all.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["jobs/a", "jobs/c", "other ü"]);
        assert_eq!(all[0].meta.pid, Some(std::process::id()));
        assert_eq!(all[0].fencing_token, ga.fencing_token());
        assert_eq!(all[1].meta.pid, Some(other.id()));
        assert_eq!(all[2].fencing_token, gb.fencing_token());
        assert!(all[0].age.unwrap() < Duration::from_secs(20));
        assert_eq!(inspect.holders("jobs/").await.unwrap().len(), 2);

        let refused = inspect
            .break_lock(&LockName::new("jobs/c").unwrap())
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Unsupported);
        assert!(
            refused.to_string().contains(&format!("pid {}", other.id())),
            "{refused}"
        );
        assert!(inspect
            .break_lock(&LockName::new("jobs/free").unwrap())
            .await
            .unwrap()
            .is_none());

        other.kill().unwrap();
        other.wait().unwrap();
        ga.release().await.unwrap();
        gb.release().await.unwrap();
        assert!(inspect.holders("").await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .unwrap();
}
