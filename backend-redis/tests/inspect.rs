//! `Inspect` on Redis: holders, break, doctor, on throwaway servers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use distlock_core::{
    AcquireOptions, DistributedLock, ErrorKind, Inspect, LockExt, LockName, Severity,
};
use distlock_redis::RedisLock;
use distlock_testkit::redis::RedisServer;

async fn client(server: &RedisServer) -> RedisLock {
    RedisLock::connect(&server.url()).await.unwrap()
}

fn inspector(lock: &RedisLock) -> &dyn Inspect {
    lock.inspect().expect("Redis offers Inspect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_lists_exactly_the_holds_of_several_clients() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = RedisServer::start().unwrap();
        let (a, b, c) = (
            client(&server).await,
            client(&server).await,
            client(&server).await,
        );
        let ga = a.acquire("jobs/a").await.unwrap();
        let gb = b.acquire("jobs/b ü{x}").await.unwrap();
        let gc = c.acquire("other").await.unwrap();
        let free = a.acquire("jobs/free").await.unwrap();
        free.release().await.unwrap();

        let mut all = inspector(&c).holders("").await.unwrap();
        all.sort_by(|x, y| x.name.cmp(&y.name));
        let names: Vec<&str> = all.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["jobs/a", "jobs/b ü{x}", "other"]);
        for (h, g) in all.iter().zip([&ga, &gb, &gc]) {
            assert_eq!(h.owner_token.as_deref(), Some(g.owner_token()));
            assert_eq!(h.fencing_token, g.fencing_token());
            assert_eq!(h.meta.pid, Some(std::process::id()));
            assert!(h.meta.host.is_some());
            let left = h.time_left.unwrap();
            assert!(
                left <= Duration::from_secs(30) && left > Duration::from_secs(20),
                "{left:?}"
            );
        }
        let jobs = inspector(&a).holders("jobs/").await.unwrap();
        assert_eq!(jobs.len(), 2);

        for g in [ga, gb, gc] {
            g.release().await.unwrap();
        }
        assert!(inspector(&a).holders("").await.unwrap().is_empty());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_fires_the_lost_signal_and_a_larger_token_follows() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = RedisServer::start().unwrap();
        let (a, b) = (client(&server).await, client(&server).await);
        let ttl = Duration::from_millis(900);
        let opts = AcquireOptions::try_once().with_ttl(ttl);
        let g = a.acquire_opts("stuck", &opts).await.unwrap().unwrap();
        let name = LockName::new("stuck").unwrap();

        let broke_at = tokio::time::Instant::now();
        let broken = inspector(&b).break_lock(&name).await.unwrap().unwrap();
        assert_eq!(broken.owner_token.as_deref(), Some(g.owner_token()));
        let lost = tokio::time::timeout(ttl + Duration::from_millis(500), g.lost())
            .await
            .expect("the broken holder's lost signal did not fire within its backstop");
        assert_eq!(lost.kind(), ErrorKind::Lost);
        assert!(broke_at.elapsed() <= ttl + Duration::from_millis(500));
        assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);

        let next = b.try_acquire("stuck").await.unwrap().unwrap();
        assert!(next.fencing_token() > broken.fencing_token);
        next.release().await.unwrap();
        assert!(inspector(&b).break_lock(&name).await.unwrap().is_none());
    })
    .await
    .unwrap();
}

fn finding<'a>(findings: &'a [distlock_core::Finding], check: &str) -> &'a distlock_core::Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in {findings:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_an_evicting_policy_and_passes_noeviction() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let lru = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]).unwrap();
        let findings = inspector(&client(&lru).await).doctor().await.unwrap();
        let policy = finding(&findings, "maxmemory-policy");
        assert_eq!(policy.severity, Severity::Fail, "{policy:?}");
        assert!(policy.fix.as_deref().unwrap().contains("noeviction"));

        let plain = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]).unwrap();
        let findings = inspector(&client(&plain).await).doctor().await.unwrap();
        assert_eq!(
            finding(&findings, "maxmemory-policy").severity,
            Severity::Pass
        );
        assert_eq!(finding(&findings, "clock skew").severity, Severity::Pass);
        assert_eq!(
            finding(&findings, "persistence with replicas").severity,
            Severity::Pass
        );
        assert_eq!(
            finding(&findings, "pub/sub channel permission").severity,
            Severity::Pass
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_of_a_user_without_channel_permission_and_hides_its_password() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = RedisServer::start().unwrap();
        let r = distlock_testkit::redis::raw_command(
            server.port(),
            "ACL SETUSER bob on >b0b-secret ~* resetchannels +@all",
        )
        .unwrap();
        assert!(r.starts_with("+OK"), "{r}");
        let url = format!("redis://bob:b0b-secret@127.0.0.1:{}/", server.port());
        let lock = RedisLock::connect(&url).await.unwrap();
        let findings = inspector(&lock).doctor().await.unwrap();
        let acl = finding(&findings, "pub/sub channel permission");
        assert_eq!(acl.severity, Severity::Warn, "{acl:?}");
        assert!(
            acl.fix.as_deref().unwrap().contains("&distlock:*"),
            "{acl:?}"
        );
        assert!(!format!("{findings:?}").contains("b0b-secret"));
    })
    .await
    .unwrap();
}
