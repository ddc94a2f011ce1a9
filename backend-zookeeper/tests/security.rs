//! Digest authentication and the creator-only ACL: a client without the credentials can
//! neither see nor delete someone else's lock node; credentials never show.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use distlock_core::{ErrorKind, LockExt, LockName};
use distlock_zookeeper::zookeeper_client::{Client, Error as ZkError};
use distlock_zookeeper::{ZkConfig, ZkLock};

const PASSWORD: &str = "s3cret-Pa55";

fn secure_url(user: &str, password: &str, root: &str) -> String {
    let server = common::server();
    format!(
        "zk://{user}:{password}@{}?session_timeout=3s&acl=creator&root={root}",
        server.connect_string()
    )
}

fn fresh_root() -> String {
    format!(
        "/secure-{}",
        &distlock_core::backend::new_owner_token()[..10]
    )
}

async fn raw_client(auth: Option<&str>) -> Client {
    let mut connector = Client::connector().with_session_timeout(Duration::from_secs(3));
    if let Some(auth) = auth {
        connector = connector.with_auth("digest", auth.as_bytes());
    }
    connector
        .connect(&common::server().connect_string())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creator_only_acl_keeps_others_from_deleting_lock_nodes() {
    let root = fresh_root();
    let alice = ZkLock::from_url(&secure_url("alice", PASSWORD, &root))
        .await
        .unwrap();
    let g = alice.try_acquire("orders/42").await.unwrap().expect("free");
    let parent = alice.lock_path(&LockName::new("orders/42").unwrap());
    let mine = alice.zk_client().await.unwrap();
    let children = mine.list_children(&parent).await.unwrap();
    assert_eq!(children.len(), 1);
    let node = format!("{parent}/{}", children[0]);

    // No credentials, and wrong credentials: no listing, no deleting.
    for auth in [None, Some("mallory:guess"), Some("alice:wrong")] {
        let other = raw_client(auth).await;
        assert_eq!(
            other.list_children(&parent).await.unwrap_err(),
            ZkError::NoAuth,
            "{auth:?} listed the contenders"
        );
        assert_eq!(
            other.delete(&node, None).await.unwrap_err(),
            ZkError::NoAuth,
            "{auth:?} deleted someone else's lock node"
        );
    }
    assert!(g.is_held());

    // A distlock client with other credentials cannot take part at all.
    let mallory = ZkLock::from_url(&secure_url("mallory", "guess", &root))
        .await
        .unwrap();
    let refused = mallory.try_acquire("orders/42").await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Backend, "{refused}");

    // The same credentials on another session contend normally.
    let alice2 = ZkLock::from_url(&secure_url("alice", PASSWORD, &root))
        .await
        .unwrap();
    assert!(alice2.try_acquire("orders/42").await.unwrap().is_none());
    g.release().await.unwrap();
    let g2 = alice2
        .try_acquire("orders/42")
        .await
        .unwrap()
        .expect("free");
    g2.release().await.unwrap();

    // Credentials never show.
    for shown in [
        format!("{alice:?}"),
        format!("{:?}", alice.config()),
        format!("{refused} {refused:?}"),
    ] {
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(!shown.contains("guess"), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_open_acl_a_foreign_delete_is_reported_as_a_loss() {
    let url = format!("{}?root={}", common::server().url(), fresh_root());
    let holder = ZkLock::from_url(&url).await.unwrap();
    let g = holder.try_acquire("job").await.unwrap().expect("free");
    let mut lost = g.lost_signal();
    let parent = holder.lock_path(&LockName::new("job").unwrap());
    let intruder = raw_client(None).await;
    let children = intruder.list_children(&parent).await.unwrap();
    intruder
        .delete(&format!("{parent}/{}", children[0]), None)
        .await
        .expect("an open ACL lets anyone delete");
    let why = tokio::time::timeout(Duration::from_secs(3), lost.wait())
        .await
        .expect("the loss is signalled")
        .expect("a loss, not a release");
    assert_eq!(why.kind(), ErrorKind::Lost);
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
}

#[test]
fn creator_only_without_credentials_is_a_config_error() {
    let e = ZkConfig::from_url("zk://127.0.0.1:1?acl=creator").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = ZkConfig::new("127.0.0.1:1").with_creator_only_acl(true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(ZkLock::connect(e)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
