//! The conformance suite against a throwaway three-master Redis Cluster (one shared by the
//! cases of this binary).

mod common;

distlock_conformance::conformance_tests!(common::ClusterHarness::new());

/// On a cluster too, waiters are woken by the release message (published on the key's
/// node, forwarded by the cluster bus to the node the subscriber listens on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::unwrap_used)]
async fn cluster_handoff_is_notified() {
    use distlock_core::LockExt;
    use distlock_redis::RedisLock;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let h = common::ClusterHarness::private();
    let a = RedisLock::connect_cluster(h.config()).await.unwrap();
    let b = Arc::new(RedisLock::connect_cluster(h.config()).await.unwrap());
    let mut handoffs = Vec::new();
    // Names on different slots, hence (very likely) different nodes.
    for i in 0..9 {
        let name = format!("handoff-{i}");
        let g = a.try_acquire(&name).await.unwrap().unwrap();
        let waiter = {
            let (b, name) = (b.clone(), name.clone());
            tokio::spawn(async move {
                let g = b.acquire(&name).await.unwrap();
                (Instant::now(), g)
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let released = Instant::now();
        g.release().await.unwrap();
        let (took, g) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        handoffs.push(took.duration_since(released));
        g.release().await.unwrap();
    }
    handoffs.sort();
    let median = handoffs[handoffs.len() / 2];
    eprintln!("cluster handoff: median {median:?}, max {:?}", handoffs[8]);
    assert!(
        median < Duration::from_millis(100),
        "median handoff {median:?}"
    );
}
