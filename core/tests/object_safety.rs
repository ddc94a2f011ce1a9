//! `Box<dyn DistributedLock>` and `Arc<dyn DistributedLock>` must keep compiling and working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use distlock_core::memory::MemoryStore;
use distlock_core::{DistributedLock, ErrorKind, LockExt};

#[tokio::test]
async fn boxed_and_arced_trait_objects_lock() {
    let store = MemoryStore::new();
    let boxed: Box<dyn DistributedLock> = Box::new(store.client());
    let arced: Arc<dyn DistributedLock> = Arc::new(store.client());

    let guard = boxed.acquire("shared").await.unwrap();
    assert!(arced.try_acquire("shared").await.unwrap().is_none());
    let err = arced
        .acquire_timeout("shared", std::time::Duration::from_millis(20))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    guard.release().await.unwrap();
    let again = arced.try_acquire("shared").await.unwrap().unwrap();
    assert!(boxed.capabilities().fencing);
    again.release().await.unwrap();

    // A boxed client inside an Arc, as a facade would hand it out.
    let nested: Arc<Box<dyn DistributedLock>> = Arc::new(boxed);
    assert!(nested.try_acquire("shared").await.unwrap().is_some());
}

#[tokio::test]
async fn empty_name_is_an_invalid_name_error() {
    let locks = MemoryStore::new().client();
    let err = locks.try_acquire("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidName);
}
