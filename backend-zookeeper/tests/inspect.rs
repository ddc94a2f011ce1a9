//! `Inspect` on ZooKeeper: holders, break, doctor, on a throwaway server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use distlock_core::{DistributedLock, ErrorKind, Inspect, LockExt, LockName, Severity};
use distlock_testkit::zookeeper::ZkServer;
use distlock_zookeeper::ZkLock;

async fn client(server: &ZkServer, root: &str, session: &str) -> ZkLock {
    ZkLock::from_url(&format!(
        "{}?root={root}&session_timeout={session}",
        server.url()
    ))
    .await
    .unwrap()
}

fn inspector(lock: &ZkLock) -> &dyn Inspect {
    lock.inspect().expect("ZooKeeper offers Inspect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_break_and_doctor() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let server = ZkServer::start().unwrap();
        let root = "/inspect";
        let (a, b, c) = (
            client(&server, root, "3s").await,
            client(&server, root, "3s").await,
            client(&server, root, "3s").await,
        );
        let ga = a.acquire("jobs/a").await.unwrap();
        let gb = b.acquire("jobs/b ü").await.unwrap();
        // A waiter is a contender, not a holder.
        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.acquire_timeout("jobs/a", Duration::from_secs(20)).await }
        });
        let gc = c.acquire("other").await.unwrap();
        a.acquire("jobs/free")
            .await
            .unwrap()
            .release()
            .await
            .unwrap();

        let mut all = inspector(&c).holders("").await.unwrap();
        all.sort_by(|x, y| x.name.cmp(&y.name));
        let names: Vec<&str> = all.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["jobs/a", "jobs/b ü", "other"]);
        for (h, g) in all.iter().zip([&ga, &gb, &gc]) {
            assert_eq!(h.owner_token.as_deref(), Some(g.owner_token()));
            assert_eq!(h.fencing_token, g.fencing_token());
            assert_eq!(h.meta.pid, Some(std::process::id()));
            assert!(h.age.unwrap() < Duration::from_secs(20), "{h:?}");
            assert!(h.session.is_some());
        }
        assert_eq!(inspector(&a).holders("jobs/").await.unwrap().len(), 2);

        // Break a's hold: its lost signal fires, its release says NotHeld, and the waiter
        // gets the lock with a larger token.
        let broken = inspector(&b)
            .break_lock(&LockName::new("jobs/a").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(broken.owner_token.as_deref(), Some(ga.owner_token()));
        let lost = tokio::time::timeout(Duration::from_secs(3), ga.lost())
            .await
            .expect("no lost signal within the session timeout");
        assert_eq!(lost.kind(), ErrorKind::Lost);
        assert_eq!(ga.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
        let next = waiting.await.unwrap().unwrap();
        assert!(next.fencing_token() > broken.fencing_token);

        for g in [next, gb, gc] {
            g.release().await.unwrap();
        }
        assert!(inspector(&a).holders("").await.unwrap().is_empty());

        let fine = inspector(&a).doctor().await.unwrap();
        assert_eq!(fine[0].severity, Severity::Pass, "{fine:?}");
        let clamped = client(&server, root, "60s").await;
        let warned = inspector(&clamped).doctor().await.unwrap();
        assert_eq!(warned[0].severity, Severity::Warn, "{warned:?}");
        assert!(warned[0].detail.contains("granted"), "{warned:?}");
    })
    .await
    .unwrap();
}
